"""U-Net for binary segmentation as in bigmb/Unet-Segmentation-Pytorch-Nest-of-Unets: ``U_Net``
(``conv_block`` = two Conv-BN-ReLU, ``up_conv`` = Upsample + Conv-BN-ReLU, skip connections by
concatenation, a 1x1 output conv giving one logit per pixel), trained with the repository's
``calc_loss`` (0.5 * ``F.binary_cross_entropy_with_logits`` + 0.5 * soft dice on ``F.sigmoid``)
and Adam.

Rebuilt from https://github.com/bigmb/Unet-Segmentation-Pytorch-Nest-of-Unets/issues/18: "I train
the Unet and I have found negative number occur in 'Loss' after a few epoches ... negative number
occur because of the bce_withlogitcs is negative". The asker found the cause himself: "Because I
have do the augment to mask, which cause mask'value to [-1, 1]. bce's target should be [0, 1]."
The mask had gone through the same ``Normalize(mean=0.5, std=0.5)`` as the image; the fix is to
keep the mask in {0, 1} (only ``ToTensor``).

Departures: synthetic 3x32x32 images (bright squares and discs on a noisy background, mask = the
shapes) instead of the asker's data; ``ToTensor``/``Normalize`` written out as arithmetic (no
torchvision); a 3-level U_Net with 8/16/32 filters instead of 5 levels with 64..1024; 448 training
images, 6 epochs.
Measured: sick: the loss is negative from epoch 1 and jumps about (-2.1, -16.4, -8.9, -16.2,
-6.6, -15.2: the BCE term is unbounded below for targets of -1 and the soft-dice denominator
crosses zero), test Dice of the thresholded mask 0.00 -> 0.24 (about what marking every pixel
gives); fixed: loss 0.60 -> 0.40, test Dice 0.86 -> 0.99.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, EPOCHS, BATCH = 32, 6, 16


def make_split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = np.zeros((n, SIZE, SIZE, 3), dtype=np.uint8)
    masks = np.zeros((n, SIZE, SIZE), dtype=np.uint8)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for i in range(n):
        img = 90 + 25 * rng.standard_normal((SIZE, SIZE, 3))
        for _ in range(rng.integers(1, 4)):
            cy, cx, r = rng.integers(6, SIZE - 6), rng.integers(6, SIZE - 6), rng.integers(3, 7)
            if rng.random() < 0.5:
                shape = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            else:
                shape = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
            img[shape] = rng.integers(150, 230, size=3) + 20 * rng.standard_normal((shape.sum(), 3))
            masks[i][shape] = 255
        images[i] = np.clip(img, 0, 255)
    x = torch.as_tensor(images).permute(0, 3, 1, 2).float() / 255  # ToTensor
    x = (x - 0.5) / 0.5  # Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
    y = torch.as_tensor(masks).unsqueeze(1).float() / 255  # Grayscale + ToTensor
    y = y  # the fix: no Normalize on the mask, it stays in {0, 1}
    return x, y


train_x, train_y = make_split(448)
test_x, test_y = make_split(128)


class conv_block(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1, padding=1, bias=True),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, kernel_size=3, stride=1, padding=1, bias=True),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.conv(x)


class up_conv(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1, padding=1, bias=True),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.up(x)


class U_Net(nn.Module):
    def __init__(self, in_ch=3, out_ch=1):
        super().__init__()
        filters = [8, 16, 32]
        self.Maxpool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.Maxpool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.Conv1 = conv_block(in_ch, filters[0])
        self.Conv2 = conv_block(filters[0], filters[1])
        self.Conv3 = conv_block(filters[1], filters[2])
        self.Up3 = up_conv(filters[2], filters[1])
        self.Up_conv3 = conv_block(filters[2], filters[1])
        self.Up2 = up_conv(filters[1], filters[0])
        self.Up_conv2 = conv_block(filters[1], filters[0])
        self.Conv = nn.Conv2d(filters[0], out_ch, kernel_size=1, stride=1, padding=0)

    def forward(self, x):
        e1 = self.Conv1(x)
        e2 = self.Conv2(self.Maxpool1(e1))
        e3 = self.Conv3(self.Maxpool2(e2))
        d3 = self.Up_conv3(torch.cat((e2, self.Up3(e3)), dim=1))
        d2 = self.Up_conv2(torch.cat((e1, self.Up2(d3)), dim=1))
        return self.Conv(d2)


def dice_loss(prediction, target):
    smooth = 1.0
    i_flat = prediction.view(-1)
    t_flat = target.view(-1)
    intersection = (i_flat * t_flat).sum()
    return 1 - ((2.0 * intersection + smooth) / (i_flat.sum() + t_flat.sum() + smooth))


def calc_loss(prediction, target, bce_weight=0.5):
    bce = F.binary_cross_entropy_with_logits(prediction, target)
    prediction = F.sigmoid(prediction)
    dice = dice_loss(prediction, target)
    loss = bce * bce_weight + dice * (1 - bce_weight)
    return loss


model_test = U_Net(3, 1)
opt = torch.optim.Adam(model_test.parameters(), lr=1e-3)

for i in range(EPOCHS):
    model_test.train()
    train_loss = 0.0
    perm = torch.randperm(len(train_x))
    for b in range(0, len(train_x), BATCH):
        idx = perm[b : b + BATCH]
        x, y = train_x[idx], train_y[idx]
        opt.zero_grad()
        y_pred = model_test(x)
        lossT = calc_loss(y_pred, y)
        train_loss += lossT.item() * len(idx)
        lossT.backward()
        opt.step()

    model_test.eval()
    with torch.no_grad():
        pred = (torch.sigmoid(model_test(test_x)) > 0.5).float()
    truth = (test_y > 0).float()  # the object pixels, whatever scale the mask was put on
    dice = (2 * (pred * truth).sum() / (pred.sum() + truth.sum())).item()
    print(f"epoch {i + 1}: train loss {train_loss / len(train_x):.4f} test dice {dice:.3f}")
