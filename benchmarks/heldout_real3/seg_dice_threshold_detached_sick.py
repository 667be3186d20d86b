"""Binary segmentation U-Net (two Conv-BN-ReLU per level, skip connections, one logit per pixel)
trained with the Dice loss of segmentation_models.pytorch's ``utils`` module (``DiceLoss`` =
1 - ``f_score`` of the sigmoid output) and its ``TrainEpoch.batch_update`` loop, with Adam.

Rebuilt from https://github.com/qubvel-org/segmentation_models.pytorch/pull/611 ("Threshold for
Dice loss"): the author added a ``threshold`` argument to ``DiceLoss``; "the ``_threshold``
function in ``utils/functional.py`` causes the following error ``element 0 of tensors does not
require grad and does not have a grad_fn``", and "fixed that by making the function return a
tensor that requires grad": ``torch.tensor((x > threshold).type(x.dtype), requires_grad=True)``.
That new tensor is a leaf cut from the network: ``loss.backward()`` runs, but no gradient reaches
the model, which never trains. The PR was closed unmerged; the Dice loss of the library keeps
``threshold=None`` (a soft, differentiable Dice), which is the fix here.

Departures: synthetic 3x32x32 images (bright squares and discs on noise, mask = the shapes)
instead of the author's data; a 3-level U-Net (8/16/32 filters) instead of ``smp.Unet`` with a
ResNet encoder; ``TrainEpoch`` reduced to its ``batch_update`` step; 448 training images, 6
epochs.
Measured: sick: train dice_loss flat at 0.731 for all 6 epochs (no parameter gets a gradient),
test IoU 0.11-0.15 (only the BatchNorm running statistics move); fixed: dice_loss 0.633 -> 0.470,
test IoU 0.69 -> 0.95.
"""

import numpy as np
import torch
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
    x = (x - 0.5) / 0.5
    y = torch.as_tensor(masks).unsqueeze(1).float() / 255  # {0, 1}
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


class Activation(nn.Module):
    def __init__(self, name):
        super().__init__()
        self.activation = nn.Sigmoid() if name == "sigmoid" else nn.Identity()

    def forward(self, x):
        return self.activation(x)


def _threshold(x, threshold=None):
    if threshold is not None:
        return torch.tensor((x > threshold).type(x.dtype), requires_grad=True)
    else:
        return x


def f_score(pr, gt, beta=1, eps=1e-7, threshold=None):
    pr = _threshold(pr, threshold=threshold)
    tp = torch.sum(gt * pr)
    fp = torch.sum(pr) - tp
    fn = torch.sum(gt) - tp
    score = ((1 + beta**2) * tp + eps) / ((1 + beta**2) * tp + beta**2 * fn + fp + eps)
    return score


class DiceLoss(nn.Module):
    def __init__(self, eps=1.0, beta=1.0, activation=None, threshold=None):
        super().__init__()
        self.eps = eps
        self.beta = beta
        self.activation = Activation(activation)
        self.threshold = threshold

    def forward(self, y_pr, y_gt):
        y_pr = self.activation(y_pr)
        return 1 - f_score(y_pr, y_gt, beta=self.beta, eps=self.eps, threshold=self.threshold)


model = U_Net(3, 1)
loss = DiceLoss(activation="sigmoid", threshold=0.5)
optimizer = torch.optim.Adam([dict(params=model.parameters(), lr=0.001)])


def batch_update(x, y):
    optimizer.zero_grad()
    prediction = model.forward(x)
    loss_value = loss(prediction, y)
    loss_value.backward()
    optimizer.step()
    return loss_value, prediction


for i in range(EPOCHS):
    model.train()
    logs = []
    perm = torch.randperm(len(train_x))
    for b in range(0, len(train_x), BATCH):
        idx = perm[b : b + BATCH]
        loss_value, _ = batch_update(train_x[idx], train_y[idx])
        logs.append(loss_value.item())

    model.eval()
    with torch.no_grad():
        pr = (torch.sigmoid(model(test_x)) > 0.5).float()
    inter = (pr * test_y).sum()
    iou = (inter / (pr.sum() + test_y.sum() - inter)).item()
    print(f"epoch {i + 1}: train dice_loss {np.mean(logs):.4f} test iou_score {iou:.3f}")
