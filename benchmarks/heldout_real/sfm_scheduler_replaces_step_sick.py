"""Encoder-decoder CNN (DispNet-like) regressing a disparity map from an image, Adam with a
StepLR scheduler.

Rebuilt from https://github.com/ClementPinard/SfmLearner-Pytorch/issues/5: the asker added a
learning-rate scheduler and wrote `if scheduler: scheduler.step() else: optimizer.step()`; the
loss no longer goes down; the answer: scheduler.step() only changes the learning rate, the
optimizer must still step. (SfmLearner learns depth without labels, from view synthesis; here the
target disparity is given, to keep the rebuild small.)
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

N, H, W = 512, 16, 32


def make_scenes(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A ground plane (disparity grows towards the bottom) with one box at a random depth; the
    image is the disparity seen through a random texture and brightness."""
    rows = np.linspace(0.1, 1.0, H)[:, None] * np.ones((1, W))
    disp = np.repeat(rows[None], n, axis=0)
    for i in range(n):
        r, c = int(rng.integers(0, H - 6)), int(rng.integers(0, W - 8))
        disp[i, r : r + 6, c : c + 8] = rng.uniform(0.3, 1.2)
    texture = 0.2 * rng.standard_normal((n, H, W))
    images = disp * rng.uniform(0.8, 1.2, size=(n, 1, 1)) + texture
    return torch.as_tensor(images[:, None], dtype=torch.float32), torch.as_tensor(
        disp[:, None], dtype=torch.float32
    )


class DispNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1), nn.ReLU())
        self.enc2 = nn.Sequential(nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU())
        self.dec2 = nn.Sequential(nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.ReLU())
        self.dec1 = nn.ConvTranspose2d(32, 1, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        d2 = self.dec2(self.enc2(e1))
        return F.softplus(self.dec1(torch.cat([d2, e1], 1)))  # positive disparity


X, D = make_scenes(N)
model = DispNet()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=200, gamma=0.5)
for epoch in range(10):
    perm = torch.randperm(N)
    for start in range(0, N, 16):
        idx = perm[start : start + 16]
        optimizer.zero_grad()
        loss = F.l1_loss(model(X[idx]), D[idx])
        loss.backward()
        if scheduler:
            scheduler.step()
        else:
            optimizer.step()
    with torch.no_grad():
        full = F.l1_loss(model(X), D).item()
    print(f"epoch {epoch}: L1 {full:.4f}")
