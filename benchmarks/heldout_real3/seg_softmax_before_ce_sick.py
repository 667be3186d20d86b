"""Multi-class U-Net of milesial/Pytorch-UNet (``DoubleConv`` / ``Down`` / ``Up`` / ``OutConv``,
bilinear upsampling) trained as the repository's ``train.py`` does for ``n_classes > 1``:
``nn.CrossEntropyLoss`` on ``masks_pred = net(imgs)``, RMSprop(lr=0.001, weight_decay=1e-8,
momentum=0.9), the masks holding class indices.

Rebuilt from https://github.com/milesial/Pytorch-UNet/issues/186: "I modify the network output
layer by adding a softmax layer, still I can start the training process, but I got training loss
fixed at 0.5975 after a few epochs". The maintainer's answer (quoted back by the asker): the
softmax "is already used for multiclass" - ``CrossEntropyLoss`` applies log-softmax itself, and
softmax belongs only in ``predict.py``; the network must output raw logits.

Departures: synthetic 3x32x32 images with discs, squares and crosses in seven colours (classes
1-7) on a noisy background (class 0) instead of the asker's 21-class data; a 3-level UNet (8/16/32 channels)
instead of 5 levels with 64..1024; 320 training images, 6 epochs.
Measured: sick: the loss stalls at 1.37 -> 1.32 from epoch 2 (its floor with softmax before
CrossEntropyLoss is ln(1 + 7/e) = 1.28), test mIoU 0.10 -> 0.64, 4-6 of 8 classes predicted;
fixed: loss 1.16 -> 0.036, mIoU 0.15 -> 0.93, all 8 classes predicted.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, CLASSES, EPOCHS, BATCH = 32, 8, 6, 16
COLORS = np.array(
    [
        [200, 70, 70],
        [70, 200, 70],
        [70, 70, 200],
        [200, 200, 70],
        [200, 70, 200],
        [70, 200, 200],
        [220, 220, 220],
    ]
)


def to_tensor(pic: np.ndarray) -> torch.Tensor:
    """torchvision.transforms.ToTensor for a uint8 HxW or HxWxC array: CxHxW float in [0, 1]."""
    t = torch.as_tensor(pic)
    if t.dim() == 2:
        t = t.unsqueeze(-1)
    return t.permute(2, 0, 1).float().div(255)


def make_sample() -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    img = 110 + 25 * rng.standard_normal((SIZE, SIZE, 3))
    label = np.zeros((SIZE, SIZE), dtype=np.uint8)
    for _ in range(rng.integers(1, 4)):
        k = int(rng.integers(1, CLASSES))
        cy, cx, r = rng.integers(6, SIZE - 6), rng.integers(6, SIZE - 6), rng.integers(3, 7)
        if k % 3 == 1:
            shape = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        elif k % 3 == 2:
            shape = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
        else:
            shape = ((abs(yy - cy) <= 1) & (abs(xx - cx) <= r)) | (
                (abs(xx - cx) <= 1) & (abs(yy - cy) <= r)
            )
        img[shape] = COLORS[k - 1] + 20 * rng.standard_normal((shape.sum(), 3))
        label[shape] = k
    return np.clip(img, 0, 255).astype(np.uint8), label


class SegDataset(torch.utils.data.Dataset):
    def __init__(self, n: int):
        self.samples = [make_sample() for _ in range(n)]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        image, label = self.samples[i]
        image = (to_tensor(image) - 0.5) / 0.25
        mask = torch.as_tensor(np.array(label)).long()
        return image, mask


train_set, test_set = SegDataset(320), SegDataset(96)
train_loader = torch.utils.data.DataLoader(train_set, batch_size=BATCH, shuffle=True)
test_x = torch.stack([to_tensor(im) for im, _ in test_set.samples])
test_x = (test_x - 0.5) / 0.25
test_y = torch.stack([torch.as_tensor(lab).long() for _, lab in test_set.samples])  # true labels


class DoubleConv(nn.Module):
    """(convolution => [BN] => ReLU) * 2"""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        x = torch.cat([x2, x1], dim=1)
        return self.conv(x)


class OutConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, n_channels, n_classes):
        super().__init__()
        self.n_channels = n_channels
        self.n_classes = n_classes
        self.inc = DoubleConv(n_channels, 8)
        self.down1 = Down(8, 16)
        self.down2 = Down(16, 16)
        self.up1 = Up(32, 8)
        self.up2 = Up(16, 8)
        self.outc = OutConv(8, n_classes)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x = self.up1(x3, x2)
        x = self.up2(x, x1)
        logits = self.outc(x)
        return F.softmax(logits, dim=1)


net = UNet(n_channels=3, n_classes=CLASSES)
optimizer = torch.optim.RMSprop(net.parameters(), lr=0.001, weight_decay=1e-8, momentum=0.9)
criterion = nn.CrossEntropyLoss() if net.n_classes > 1 else nn.BCEWithLogitsLoss()

for epoch in range(EPOCHS):
    net.train()
    epoch_loss = 0.0
    for imgs, true_masks in train_loader:
        masks_pred = net(imgs)
        loss = criterion(masks_pred, true_masks)
        epoch_loss += loss.item() * len(imgs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    net.eval()
    with torch.no_grad():
        pred = net(test_x).argmax(1)
    ious = []
    for k in range(CLASSES):
        inter = ((pred == k) & (test_y == k)).sum().item()
        union = ((pred == k) | (test_y == k)).sum().item()
        ious.append(inter / union if union else 0.0)
    acc = (pred == test_y).float().mean().item()
    print(
        f"epoch {epoch + 1}: train loss {epoch_loss / len(train_set):.4f} test pixel acc {acc:.3f} "
        f"mIoU {np.mean(ious):.3f} classes predicted {len(pred.unique())}"
    )
