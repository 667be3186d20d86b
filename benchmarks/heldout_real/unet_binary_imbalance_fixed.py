"""Small U-Net (conv + BatchNorm, one skip level) for binary segmentation, 2-channel output with
per-pixel class targets (N, H, W) into CrossEntropyLoss.

Rebuilt from https://github.com/NVIDIA/DeepLearningExamples/issues/263: the target class covers
about 4% of the pixels and the network predicts every pixel as background; the answer: a class
imbalance, weight the classes in the loss.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, N = 32, 256


def make_scans(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Textured background; one or two faint small discs (the structure to segment)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images = 0.5 * rng.standard_normal((n, 1, SIZE, SIZE)).astype(np.float32)
    masks = np.zeros((n, SIZE, SIZE), dtype=np.int64)
    for i in range(n):
        for _ in range(int(rng.integers(1, 3))):
            r, c, radius = *rng.uniform(4, SIZE - 4, size=2), rng.uniform(1.8, 2.8)
            disc = (yy - r) ** 2 + (xx - c) ** 2 <= radius**2
            masks[i][disc] = 1
            images[i, 0][disc] += 0.5
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
print(f"foreground pixels: {Y.float().mean():.3f}")
model = UNet(n_classes=2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
criterion = nn.CrossEntropyLoss(weight=torch.tensor([0.05, 0.95]))  # the fix
for epoch in range(8):
    model.train()
    perm = torch.randperm(N)
    for start in range(0, N, 16):
        idx = perm[start : start + 16]
        optimizer.zero_grad()
        loss = criterion(model(X[idx]), Y[idx])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        pred = model(X).argmax(1)
    inter = ((pred == 1) & (Y == 1)).sum().item()
    union = ((pred == 1) | (Y == 1)).sum().item()
    print(f"epoch {epoch}: loss {loss.item():.4f} foreground IoU {inter / max(union, 1):.3f}")
