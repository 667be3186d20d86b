"""STGCN-style traffic forecaster (gated temporal convolutions around a graph convolution over a
road network), MSE on the next speed of every sensor, Adam with StepLR.

Rebuilt from https://github.com/hazdzz/stgcn/issues/18: scheduler.step() sits inside the
mini-batch loop next to optimizer.step(), while StepLR's step_size=10, gamma=0.95 were chosen
in epochs; the learning rate decays far too fast and training stalls; the answer: step the
scheduler once per epoch, outside the batch loop.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

NODES, HISTORY, T = 10, 8, 3000
# a ring road with a few shortcuts; speeds diffuse along it and follow a daily rhythm
adj = np.zeros((NODES, NODES))
for i in range(NODES):
    adj[i, (i + 1) % NODES] = adj[(i + 1) % NODES, i] = 1
adj[0, 5] = adj[5, 0] = adj[2, 7] = adj[7, 2] = 1
a_hat = adj + np.eye(NODES)
a_hat = a_hat / a_hat.sum(1, keepdims=True)
speed = np.zeros((T, NODES))
speed[0] = rng.standard_normal(NODES)
for t in range(1, T):
    daily = np.sin(2 * np.pi * t / 96 + np.arange(NODES) / 3)
    speed[t] = 0.8 * a_hat @ speed[t - 1] + 0.5 * daily + 0.2 * rng.standard_normal(NODES)
windows = np.stack([speed[t - HISTORY : t] for t in range(HISTORY, T)])  # (samples, time, nodes)
X = torch.as_tensor(windows[:, None], dtype=torch.float32)  # (samples, 1, time, nodes)
y = torch.as_tensor(speed[HISTORY:], dtype=torch.float32)  # (samples, nodes)
A = torch.as_tensor(a_hat, dtype=torch.float32)


class TemporalGLU(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, 2 * c_out, (3, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, q = self.conv(x).chunk(2, dim=1)
        return p * torch.sigmoid(q)  # (batch, c_out, time - 2, nodes)


class STGCN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.t1 = TemporalGLU(1, 16)
        self.theta = nn.Linear(16, 16)
        self.t2 = TemporalGLU(16, 16)
        self.norm = nn.LayerNorm([NODES, 16])
        self.out = nn.Linear(16 * (HISTORY - 4), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.t1(x)  # (batch, 16, time, nodes)
        h = torch.einsum("nm,bctm->bctn", A, h)  # graph convolution over the road network
        h = F.relu(self.theta(h.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        h = self.t2(h)  # (batch, 16, time - 4, nodes)
        h = self.norm(h.permute(0, 2, 3, 1))  # (batch, time, nodes, channels)
        h = h.permute(0, 2, 1, 3).flatten(2)  # (batch, nodes, time * channels)
        return self.out(h).squeeze(-1)  # (batch, nodes)


split = int(0.8 * len(X))
model = STGCN()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.95)
for epoch in range(25):
    perm = torch.randperm(split)
    for start in range(0, split, 32):
        idx = perm[start : start + 32]
        optimizer.zero_grad()
        loss = F.mse_loss(model(X[idx]), y[idx])
        loss.backward()
        optimizer.step()
    scheduler.step()  # the fix: once per epoch
    if epoch % 5 == 4:
        with torch.no_grad():
            val = F.mse_loss(model(X[split:]), y[split:]).item()
        lr = optimizer.param_groups[0]["lr"]
        print(f"epoch {epoch}: train {loss.item():.4f} val {val:.4f} lr {lr:.2e}")
