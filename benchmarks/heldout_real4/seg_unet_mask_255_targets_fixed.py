"""U-Net for binary segmentation as in milesial/Pytorch-UNet of November 2019 (``DoubleConv``
blocks of conv + BatchNorm + ReLU, max-pool ``Down``, ConvTranspose2d ``Up`` with skip
concatenation, 1x1 ``OutConv`` returning logits), trained with ``nn.BCEWithLogitsLoss`` and
``optim.Adam(lr=0.1)`` (the repository's defaults then), masks read straight from the image files.

Rebuilt from https://github.com/milesial/Pytorch-UNet/issues/84: "the format of my mask is
PNG, yours are GIF, the loss is negative when I was training. When I changed PNG to GIF, the
loss is positive." (loss (batch) -9.27e+5, -4.68e+6, ... -3.4e+7, "Validation Dice Coeff:
1.97" every epoch). The maintainer: the Dice above 1 means the masks as loaded are not 0/1;
the PNG masks hold 0/255 while the Carvana GIFs hold 0/1 and ``BCEWithLogitsLoss`` needs
targets in [0, 1]. The fix scales the masks to 0/1 (as later versions of the repository do).

Departures: synthetic 32x32 RGB images with one bright ellipse (13 % of pixels) and its mask
stored as uint8 0/255, 500 training and 100 validation images instead of the asker's PNG data;
a two-level U-Net with 8/16 channels; batch size 10 and 5 epochs; the validation Dice is
computed against the binarised mask (so it stays in [0, 1]).
Measured: sick: epoch loss -4.4e3, -4.7e4, -1.9e5, -4.4e5, -8.4e5 (ever more negative),
every validation pixel predicted foreground (fraction 1.000 for 0.134 true), Dice 0.236 each
epoch. Fixed: loss 0.081 -> 0.013, validation Dice 0.96-0.99 (0.987 at epoch 5), foreground
fraction 0.125-0.141.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, EPOCHS, BATCH_SIZE, LR = 32, 5, 10, 0.1
yy, xx = np.mgrid[:SIZE, :SIZE]


def make_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8-range floats (HWC -> CHW already) and masks as saved in a PNG: 0/255."""
    imgs = np.empty((n, 3, SIZE, SIZE), dtype=np.float32)
    masks = np.zeros((n, 1, SIZE, SIZE), dtype=np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(8, 24, size=2)
        ry, rx = rng.uniform(4, 9, size=2)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        masks[i, 0][inside] = 255
        img = rng.normal(90, 30, size=(3, SIZE, SIZE))
        img[:, inside] += np.array([70, 40, -20])[:, None]
        imgs[i] = np.clip(img, 0, 255)
    return imgs, masks


def normalize(x):
    return x / 255


def get_imgs_and_masks(imgs, masks):
    """Return all the couples (img, mask)"""
    return zip(map(normalize, imgs), masks)


def batch(iterable, batch_size):
    b = []
    for t in iterable:
        b.append(t)
        if len(b) == batch_size:
            yield b
            b = []


train_imgs, train_masks = make_split(500)
val_imgs, val_masks = make_split(100)


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


class UNet(nn.Module):
    def __init__(self, n_channels, n_classes):
        super().__init__()
        self.n_classes = n_classes
        self.inc = DoubleConv(n_channels, 8)
        self.down1 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(8, 16))
        self.up = nn.ConvTranspose2d(16, 8, kernel_size=2, stride=2)
        self.conv = DoubleConv(16, 8)
        self.outc = nn.Conv2d(8, n_classes, kernel_size=1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x = self.conv(torch.cat([self.up(x2), x1], dim=1))
        logits = self.outc(x)
        return logits


net = UNet(n_channels=3, n_classes=1)
optimizer = torch.optim.Adam(net.parameters(), lr=LR)
if net.n_classes > 1:
    criterion = nn.CrossEntropyLoss()
else:
    criterion = nn.BCEWithLogitsLoss()

for epoch in range(EPOCHS):
    net.train()
    perm = rng.permutation(len(train_imgs))
    train = get_imgs_and_masks(train_imgs[perm], train_masks[perm])
    epoch_loss = 0
    for i, b in enumerate(batch(train, BATCH_SIZE)):
        imgs = np.array([i[0] for i in b]).astype(np.float32)
        true_masks = (np.array([i[1] for i in b]) / 255).astype(np.float32)  # the fix

        imgs = torch.from_numpy(imgs)
        true_masks = torch.from_numpy(true_masks)

        masks_pred = net(imgs)
        loss = criterion(masks_pred, true_masks)
        epoch_loss += loss.item()

        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    net.eval()
    with torch.no_grad():
        probs = torch.sigmoid(net(torch.from_numpy(normalize(val_imgs).astype(np.float32))))
    pred = (probs > 0.5).float()
    truth = torch.from_numpy(val_masks > 0).float()
    dice = 2 * (pred * truth).sum().item() / (pred.sum().item() + truth.sum().item())
    print(f"Epoch {epoch + 1} finished ! Loss: {epoch_loss / (i + 1):.4f}  "
          f"Validation Dice Coeff: {dice:.3f}  foreground fraction predicted "
          f"{pred.mean().item():.3f} (true {truth.mean().item():.3f})")  # fmt: skip
