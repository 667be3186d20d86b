"""Siamese CNN (shared conv tower with ReflectionPad/Conv/ReLU/BatchNorm, then a small MLP to a
5-d embedding) trained with a hand-written contrastive loss on image pairs (label 1 = the two
images are of different identities), Adam, as in the "Facial Similarity with Siamese Networks
in PyTorch" tutorial.

Rebuilt from
https://github.com/harveyslash/Facial-Similarity-with-Siamese-Networks-in-Pytorch/issues/27:
"A fatal bug!": the loss curve is unstable and the test performance is bad. The contrastive loss
computes ``F.pairwise_distance(output1, output2)``, which (since PyTorch 0.4) has shape (N,),
while the label from the dataset has shape (N, 1); ``(1 - label) * d**2 + label * clamp(m - d)**2``
then broadcasts to (N, N) and pairs every label with every distance, so no pair learns its own
target. The merged fix (PR #29) passes ``keepdim=True``.

Departures: 16x16 synthetic "faces" (10 identities: a smooth template each, plus noise and a
one-pixel jitter) in place of the AT&T faces at 100x100; a narrower tower; pairs drawn with
numpy (half same, half different) instead of the tutorial's random Dataset. Verification
accuracy thresholds the distance at margin / 2.
Measured (1 CPU thread): sick: pair accuracy 0.50-0.52 (chance) through 6 epochs, same and
different pairs at about the same distance (0.81 / 0.87); fixed: accuracy 0.998 after 6 epochs,
distances 0.39 (same) / 2.59 (different).
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

K, S = 10, 16  # identities, image side
yy, xx = np.mgrid[0:S, 0:S] / S
templates = []
for _ in range(K):
    img = np.zeros((S, S))
    for _ in range(3):  # three random blobs/stripes per identity
        fx, fy, ph = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 2 * np.pi)
        img += np.sin(2 * np.pi * (fx * xx + fy * yy) + ph)
    templates.append(img / 3)
templates = np.stack(templates)


def make_images(n):
    ids = rng.integers(0, K, size=n)
    imgs = templates[ids] + 0.35 * rng.standard_normal((n, S, S))
    shifts = rng.integers(-1, 2, size=(n, 2))
    imgs = np.stack(
        [np.roll(im, tuple(s), axis=(0, 1)) for im, s in zip(imgs, shifts, strict=True)]
    )
    return torch.as_tensor(imgs[:, None].astype(np.float32)), ids


X_train, id_train = make_images(1500)
X_test, id_test = make_images(500)


def make_pairs(ids, n):
    a = rng.integers(0, len(ids), size=n)
    same = rng.random(n) < 0.5
    # the partner: same identity for half the pairs, another identity for the rest
    partner_id = np.where(same, ids[a], (ids[a] + rng.integers(1, K, size=n)) % K)
    members = [np.flatnonzero(ids == k) for k in range(K)]
    b = np.array([rng.choice(members[k]) for k in partner_id])
    label = (ids[a] != ids[b]).astype(np.float32)[:, None]  # (n, 1), 1 = dissimilar
    return torch.as_tensor(a), torch.as_tensor(b), torch.as_tensor(label)


class SiameseNetwork(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cnn1 = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(1, 4, kernel_size=3), nn.ReLU(inplace=True),
            nn.BatchNorm2d(4),
            nn.ReflectionPad2d(1), nn.Conv2d(4, 8, kernel_size=3), nn.ReLU(inplace=True),
            nn.BatchNorm2d(8),
            nn.ReflectionPad2d(1), nn.Conv2d(8, 8, kernel_size=3), nn.ReLU(inplace=True),
            nn.BatchNorm2d(8),
        )  # fmt: skip
        self.fc1 = nn.Sequential(
            nn.Linear(8 * S * S, 128), nn.ReLU(inplace=True),
            nn.Linear(128, 128), nn.ReLU(inplace=True),
            nn.Linear(128, 5),
        )  # fmt: skip

    def forward_once(self, x: torch.Tensor) -> torch.Tensor:
        output = self.cnn1(x)
        output = output.view(output.size()[0], -1)
        return self.fc1(output)

    def forward(self, input1: torch.Tensor, input2: torch.Tensor):
        return self.forward_once(input1), self.forward_once(input2)


class ContrastiveLoss(nn.Module):
    def __init__(self, margin: float = 2.0) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, output1, output2, label):
        euclidean_distance = F.pairwise_distance(output1, output2, keepdim=True)  # the fix
        loss_contrastive = torch.mean(
            (1 - label) * torch.pow(euclidean_distance, 2)
            + label * torch.pow(torch.clamp(self.margin - euclidean_distance, min=0.0), 2)
        )
        return loss_contrastive


net = SiameseNetwork()
criterion = ContrastiveLoss()
optimizer = torch.optim.Adam(net.parameters(), lr=0.0005)
test_a, test_b, test_label = make_pairs(id_test, 1000)


def evaluate():
    net.eval()
    with torch.no_grad():
        o1, o2 = net(X_test[test_a], X_test[test_b])
        d = F.pairwise_distance(o1, o2)
    net.train()
    lab = test_label[:, 0]
    acc = ((d > criterion.margin / 2).float() == lab).float().mean().item()
    return acc, d[lab == 0].mean().item(), d[lab == 1].mean().item()


for epoch in range(6):
    pa, pb, plabel = make_pairs(id_train, 2000)
    for start in range(0, len(pa), 64):
        img0, img1 = X_train[pa[start : start + 64]], X_train[pb[start : start + 64]]
        label = plabel[start : start + 64]
        optimizer.zero_grad()
        output1, output2 = net(img0, img1)
        loss_contrastive = criterion(output1, output2, label)
        loss_contrastive.backward()
        optimizer.step()
    if epoch % 2 == 1 or epoch == 0:
        acc, d_same, d_diff = evaluate()
        print(
            f"epoch {epoch}: loss {loss_contrastive.item():.4f} pair accuracy {acc:.3f}"
            f" mean distance same {d_same:.2f} different {d_diff:.2f}"
        )
