"""Face-identity CNN trained with a focal-style angular loss written by hand.

Rebuilt from https://github.com/clcarwin/sphereface_pytorch/issues/24: the loss takes
F.log_softmax(output) without dim on a (batch, classes) output, which normalises over dim 0,
the batch, so each sample's probability depends on the other samples in its batch; the answer:
it should be log_softmax(output, 1).
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

IDENTITIES, N = 8, 2400
FACES = rng.standard_normal((IDENTITIES, 1, 12, 12)).astype(np.float32)  # one template each


def make_faces(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = rng.integers(0, IDENTITIES, size=n)
    shift = rng.integers(-1, 2, size=(n, 2))
    images = np.empty((n, 1, 12, 12), dtype=np.float32)
    for i, c in enumerate(labels):
        images[i] = np.roll(FACES[c], tuple(shift[i]), axis=(1, 2))
    images += 0.8 * rng.standard_normal(images.shape).astype(np.float32)
    return torch.as_tensor(images), torch.as_tensor(labels)


class FaceNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.PReLU(32), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.PReLU(64), nn.MaxPool2d(2),
        )  # fmt: skip
        self.embed = nn.Linear(64 * 3 * 3, 64)
        self.classifier = nn.Linear(64, IDENTITIES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(self.features(x).flatten(1)))


class AngleLoss(nn.Module):
    def __init__(self, gamma: float = 0.0) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logpt = F.log_softmax(output, 0)
        logpt = logpt.gather(1, target.view(-1, 1)).view(-1)
        pt = logpt.detach().exp()
        return (-1 * (1 - pt) ** self.gamma * logpt).mean()


X, y = make_faces(N)
model = FaceNet()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
criterion = AngleLoss()
for epoch in range(6):
    perm = torch.randperm(N)
    for start in range(0, N, 64):
        idx = perm[start : start + 64]
        optimizer.zero_grad()
        loss = criterion(model(X[idx]), y[idx])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        acc = (model(X).argmax(1) == y).float().mean().item()
    print(f"epoch {epoch}: loss {loss.item():.4f} accuracy {acc:.3f}")
