"""Small U-Net (conv + BatchNorm, one skip level) for binary segmentation with random
augmentation (rotations by multiples of 90 degrees and flips), BCEWithLogitsLoss.

Rebuilt from https://github.com/Project-MONAI/MONAI/issues/1102: the image and the segmentation
get their random transform drawn separately (the same random transform object applied to each),
so the image is rotated by one angle and its mask by another; the answer: draw the random
transform once per sample and apply it to both.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, N = 32, 256


def make_scans(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Textured background; two to four discs (the structure to segment), mask as saved in PNG."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images = 0.5 * rng.standard_normal((n, 1, SIZE, SIZE)).astype(np.float32)
    masks = np.zeros((n, 1, SIZE, SIZE), dtype=np.float32)
    for i in range(n):
        for _ in range(int(rng.integers(2, 5))):
            r, c, radius = *rng.uniform(4, SIZE - 4, size=2), rng.uniform(2.5, 5.0)
            disc = (yy - r) ** 2 + (xx - c) ** 2 <= radius**2
            masks[i, 0][disc] = 255.0
            images[i, 0][disc] += 1.0
    return torch.as_tensor(images), torch.as_tensor(masks)


def block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
    )  # fmt: skip


class UNet(nn.Module):
    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.down1, self.down2 = block(1, 16), block(16, 32)
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.dec = block(32, 16)
        self.out = nn.Conv2d(16, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.down1(x)
        h = self.down2(self.pool(skip))
        return self.out(self.dec(torch.cat([self.up(h), skip], 1)))  # (batch, classes, H, W)


X, Y = make_scans(N)
Y = Y / 255.0


def random_transform(x: torch.Tensor) -> torch.Tensor:
    """A random rotation by k * 90 degrees and a random flip, drawn per call."""
    x = torch.rot90(x, int(rng.integers(0, 4)), dims=(1, 2))
    return x.flip(2) if rng.random() < 0.5 else x


def augment(images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # the fix: one draw per sample, applied to the image and its mask stacked together
    both = torch.stack(
        [random_transform(torch.cat([img, seg])) for img, seg in zip(images, masks, strict=True)]
    )
    return both[:, :1], both[:, 1:]


model = UNet(n_classes=1)
optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3, momentum=0.9)
criterion = nn.BCEWithLogitsLoss()
for epoch in range(8):
    model.train()
    perm = torch.randperm(N)
    for start in range(0, N, 16):
        idx = perm[start : start + 16]
        optimizer.zero_grad()
        images, masks = augment(X[idx], Y[idx])
        loss = criterion(model(images), masks)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        pred = model(X) > 0
    inter = (pred & (Y > 0)).sum().item()
    union = (pred | (Y > 0)).sum().item()
    print(f"epoch {epoch}: loss {loss.item():.4f} foreground IoU {inter / max(union, 1):.3f}")
