"""Small U-Net as in milesial/Pytorch-UNet (DoubleConv with BatchNorm, two down / two up steps
with bilinear upsampling and skip concatenation, 1x1 OutConv) for 5-class semantic
segmentation: nn.CrossEntropyLoss on (batch, classes, H, W) logits against (batch, H, W) class
indices, RMSprop(lr 1e-3, momentum 0.9, weight_decay 1e-8), clip_grad_value_ 0.1.

Rebuilt from https://github.com/milesial/Pytorch-UNet/issues/228 (same report as #133): with
multi-class masks (uint8 class indices 0..18 there) the network predicts class 0 everywhere
and the training cross entropy goes to ~0. The answer: BasicDataset.preprocess, written for
binary masks, divides any array whose max is > 1 by 255, masks included, so the class indices
become 0..0.07 and the cast to long in train.py turns every target pixel into class 0 (the
repository later fixed it by not rescaling masks: preprocess(..., is_mask=True)).

Departures: synthetic 32x32 RGB images with four kinds of coloured shapes (5 classes with
background) instead of KITTI; two down/up levels with 16..64 channels instead of four with
64..1024; in-memory arrays instead of PNG files; 6 epochs.

Measured (OMP_NUM_THREADS=1): sick: loss 0.39 -> 0.0000 by epoch 2 (the targets are all
class 0), every pixel predicted class 0, pixel accuracy 0.765 = the background share, object
mean IoU 0.000; fixed: loss 0.51 -> 0.020, pixel accuracy 0.995, object mean IoU 0.97 after 6
epochs. ~6 s CPU each.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, N, N_CLASSES = 32, 160, 5


def make_scene() -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB image (H, W, 3) and uint8 class-index mask (H, W), as read from PNG files."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    image = rng.normal(90, 25, size=(SIZE, SIZE, 3))
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    colours = {1: (220, 60, 60), 2: (60, 200, 60), 3: (70, 70, 230), 4: (230, 220, 60)}
    for cls in rng.permutation([1, 2, 3, 4])[: rng.integers(2, 5)]:
        r, c = rng.uniform(6, SIZE - 6, size=2)
        size = rng.uniform(3.5, 6.5)
        if cls in (1, 3):  # discs
            region = (yy - r) ** 2 + (xx - c) ** 2 <= size**2
        else:  # squares
            region = (np.abs(yy - r) <= size) & (np.abs(xx - c) <= size)
        mask[region] = cls
        image[region] = np.array(colours[cls]) + rng.normal(0, 25, size=(region.sum(), 3))
    return np.clip(image, 0, 255).astype(np.uint8), mask


def preprocess(img_nd: np.ndarray) -> np.ndarray:
    """BasicDataset.preprocess (scale 1): HWC -> CHW, rescale to [0, 1] when max > 1."""
    if len(img_nd.shape) == 2:
        img_nd = np.expand_dims(img_nd, axis=2)
    img_trans = img_nd.transpose((2, 0, 1))
    if img_trans.max() > 1:
        img_trans = img_trans / 255
    return img_trans


images, masks, label_maps = [], [], []
for _ in range(N):
    img_png, mask_png = make_scene()
    images.append(preprocess(img_png))
    masks.append(mask_png[np.newaxis].astype(np.float64))  # the fix: masks not / 255
    label_maps.append(mask_png.astype(np.int64))
X = torch.as_tensor(np.stack(images)).type(torch.FloatTensor)
Y = torch.as_tensor(np.stack(masks)).type(torch.FloatTensor)  # (N, 1, H, W) as returned
LABELS = torch.as_tensor(np.stack(label_maps))  # the true class indices, only for the metric


class DoubleConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        )  # fmt: skip


def up(t: torch.Tensor) -> torch.Tensor:
    return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True)


class UNet(nn.Module):
    def __init__(self, n_channels: int, n_classes: int) -> None:
        super().__init__()
        self.n_channels, self.n_classes = n_channels, n_classes
        self.inc = DoubleConv(n_channels, 16)
        self.down1 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(16, 32))
        self.down2 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(32, 32))
        self.up1 = DoubleConv(64, 16)
        self.up2 = DoubleConv(32, 16)
        self.outc = nn.Conv2d(16, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x = self.up1(torch.cat([x2, up(x3)], 1))
        x = self.up2(torch.cat([x1, up(x)], 1))
        return self.outc(x)


net = UNet(n_channels=3, n_classes=N_CLASSES)
optimizer = torch.optim.RMSprop(net.parameters(), lr=1e-3, weight_decay=1e-8, momentum=0.9)
criterion = nn.CrossEntropyLoss()
batch_size = 8
for epoch in range(6):
    net.train()
    epoch_loss = 0.0
    perm = torch.randperm(N)
    for start in range(0, N, batch_size):
        idx = perm[start : start + batch_size]
        imgs = X[idx].to(dtype=torch.float32)
        mask_type = torch.float32 if net.n_classes == 1 else torch.long
        true_masks = Y[idx].to(dtype=mask_type)
        true_masks = true_masks.squeeze(1)  # (batch, H, W) for CrossEntropyLoss
        masks_pred = net(imgs)
        loss = criterion(masks_pred, true_masks)
        epoch_loss += loss.item()
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_value_(net.parameters(), 0.1)
        optimizer.step()
    net.eval()
    with torch.no_grad():
        pred = net(X).argmax(1)
    acc = (pred == LABELS).float().mean().item()
    ious = []
    for cls in range(1, N_CLASSES):
        hit, true = pred == cls, LABELS == cls  # noqa: SIM300
        inter = (hit & true).sum().item()
        union = (hit | true).sum().item()
        ious.append(inter / max(union, 1))
    print(
        f"epoch {epoch}: loss {epoch_loss / (N // batch_size):.4f} pixel accuracy {acc:.3f} "
        f"object mean IoU {np.mean(ious):.3f} "
        f"predicted background {(pred == 0).float().mean().item():.2f}"
    )
