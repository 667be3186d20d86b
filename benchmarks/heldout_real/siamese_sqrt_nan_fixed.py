"""Siamese CNN embedding trained with a contrastive loss on Euclidean distances.

Rebuilt from https://github.com/adambielski/siamese-triplet/issues/18: the distance is
sqrt(sum((a - b) ** 2)); a pair of identical images (duplicates in the data) has distance 0, the
derivative of sqrt at 0 is infinite, and the gradients (then the weights) become NaN.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)


def make_digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Blob images: the class sets where two Gaussian blobs sit; a few exact duplicates."""
    centres = rng.uniform(3, 13, size=(6, 2, 2))  # 6 classes, 2 blobs, (row, col)
    yy, xx = np.mgrid[0:16, 0:16]
    labels = rng.integers(0, 6, size=n)
    images = np.empty((n, 1, 16, 16), dtype=np.float32)
    for i, c in enumerate(labels):
        img = np.zeros((16, 16))
        for r, q in centres[c] + rng.normal(0, 0.7, size=(2, 2)):
            img += np.exp(-((yy - r) ** 2 + (xx - q) ** 2) / 4.0)
        images[i, 0] = img + 0.1 * rng.standard_normal((16, 16))
    return images, labels


def make_pairs(
    images: np.ndarray, labels: np.ndarray, n_pairs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random pairs; a few images appear twice in the data set (the same file copied), and
    such a copy is paired with its original."""
    n = len(images)
    copies = rng.choice(n, size=(n // 40, 2), replace=False)  # (original, copy)
    images[copies[:, 1]] = images[copies[:, 0]]
    labels[copies[:, 1]] = labels[copies[:, 0]]
    first = rng.integers(0, n, size=n_pairs)
    second = rng.integers(0, n, size=n_pairs)
    first[: len(copies)], second[: len(copies)] = copies[:, 0], copies[:, 1]
    return torch.as_tensor(first), torch.as_tensor(second)


class EmbeddingNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.PReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.PReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.fc = nn.Sequential(nn.Linear(32 * 4 * 4, 64), nn.PReLU(), nn.Linear(64, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(x).flatten(1))


def contrastive_loss(a: torch.Tensor, b: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    distance = ((a - b) ** 2).sum(1).add(1e-8).sqrt()  # the fix: eps keeps sqrt's slope finite
    return (same * distance**2 + (1 - same) * F.relu(1.0 - distance) ** 2).mean() / 2


images, labels = make_digits(1200)
first, second = make_pairs(images, labels, 4000)
X, y = torch.as_tensor(images), torch.as_tensor(labels)
same = (y[first] == y[second]).float()

model = EmbeddingNet()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(8):
    perm = torch.randperm(len(first))
    for start in range(0, len(first), 128):
        idx = perm[start : start + 128]
        optimizer.zero_grad()
        loss = contrastive_loss(model(X[first[idx]]), model(X[second[idx]]), same[idx])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        emb = model(X)
        d = ((emb[first] - emb[second]) ** 2).sum(1).sqrt()
        acc = ((d < 0.5).float() == same).float().mean().item()
    print(f"epoch {epoch}: loss {loss.item():.4f} pair accuracy {acc:.3f}")
