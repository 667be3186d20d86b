"""LSTM classifier reading a 16x16 image row by row (the MNIST-as-sequence tutorial).

Rebuilt from https://github.com/yunjey/pytorch-tutorial/issues/196: with batch_first=False (the
default) the LSTM takes the (batch, rows, pixels) tensor as (time, batch, features): it runs
across the images of the batch, and the loss stays near 2 with accuracy about chance.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)


def make_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stripes at one of 4 orientations (the class), random phase, noise."""
    labels = rng.integers(0, 4, size=n)
    yy, xx = np.mgrid[0:16, 0:16]
    images = np.empty((n, 16, 16), dtype=np.float32)
    for i, c in enumerate(labels):
        angle = c * np.pi / 4
        wave = np.sin(0.9 * (np.cos(angle) * xx + np.sin(angle) * yy) + rng.uniform(0, 2 * np.pi))
        images[i] = wave + 0.3 * rng.standard_normal((16, 16))
    return torch.as_tensor(images), torch.as_tensor(labels)


class RNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(16, 64, 1)
        self.fc = nn.Linear(64, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)  # x: (batch, rows, pixels)
        return self.fc(out[:, -1, :])  # the last row's hidden state


X, y = make_images(2000)
model = RNN()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
criterion = nn.CrossEntropyLoss()
for epoch in range(6):
    perm = torch.randperm(len(X))
    for start in range(0, len(X), 100):
        idx = perm[start : start + 100]
        optimizer.zero_grad()
        loss = criterion(model(X[idx]), y[idx])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        acc = (model(X).argmax(1) == y).float().mean().item()
    print(f"epoch {epoch}: loss {loss.item():.4f} accuracy {acc:.3f}")
