"""Image-embedding CNN (VGG-style 3x3 conv + ReLU + max-pool blocks, a Linear to a 128-d
embedding) trained with the batch-hard triplet loss of omoindrot/tensorflow-triplet-loss
(``batch_hard_triplet_loss``: pairwise distances, the hardest positive and hardest negative of
every anchor in the batch, ``max(hardest_pos - hardest_neg + margin, 0)``), margin 0.5, Adam.

Rebuilt from https://github.com/omoindrot/tensorflow-triplet-loss/issues/38 ("pairwise_dist
drops to 0, loss is near the margin and can't go down ... visualize the training set and
discover that they are all together"; VGG16, 128-d output, batch hard, learning rate 0.001). The
maintainer: "It looks like training is collapsing, so you may want to decrease your learning
rate" (the same advice as in issues #6 and #37 of that repository: "If the loss is equal to the
margin, this means that training is collapsing (all embeddings are collapsing into a single
point), so you may want to reduce the learning rate").

Departures: PyTorch instead of TensorFlow; a 4-conv VGG-style net on synthetic 16x16 grey
"identities" (20 classes, each a fixed random stroke template shifted by up to 1 pixel, with
noise; batches of 10 classes x 4 images) instead of VGG16 on the asker's images; Adam at 1e-2 in
the sick script and 3e-4 as the "decreased" learning rate of the fix; nearest-neighbour accuracy
on held-out images printed as the quality measure.
Measured: sick: triplet loss 0.518 in the first epoch, then 0.500-0.501 (= the margin) for
every later epoch, mean pairwise test distance 0.001-0.011 (collapsed; 81-95% of the channels of
the last three ReLUs are dead at the end), 1-NN test accuracy 0.26-0.73 (chance 0.05); fixed:
triplet loss 0.510 -> 0.106, mean pairwise distance 0.08 -> 2.80, 1-NN test accuracy 0.66 ->
0.96.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, CLASSES, PER_CLASS, P, K, STEPS, EPOCHS, MARGIN = 16, 20, 60, 10, 4, 30, 8, 0.5


def make_templates() -> np.ndarray:
    templates = np.zeros((CLASSES, SIZE, SIZE), dtype=np.float32)
    for c in range(CLASSES):
        y, x = rng.integers(4, 12, size=2)
        for _ in range(14):
            templates[c, y - 1 : y + 1, x - 1 : x + 1] = 1.0
            y = int(np.clip(y + rng.integers(-1, 2), 3, 12))
            x = int(np.clip(x + rng.integers(-1, 2), 3, 12))
    return templates


TEMPLATES = make_templates()


def make_split(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = np.repeat(np.arange(CLASSES), per_class)
    images = np.empty((len(labels), 1, SIZE, SIZE), dtype=np.float32)
    for i, c in enumerate(labels):
        dy, dx = rng.integers(-1, 2, size=2)
        images[i, 0] = np.roll(TEMPLATES[c], (dy, dx), axis=(0, 1)) + 0.3 * rng.standard_normal(
            (SIZE, SIZE)
        )
    return (torch.as_tensor(images) - 0.2) / 0.5, torch.as_tensor(labels)


train_x, train_y = make_split(PER_CLASS)
test_x, test_y = make_split(10)


class EmbeddingNet(nn.Module):
    def __init__(self, embedding_size: int = 128):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )  # fmt: skip
        self.fc = nn.Linear(64 * 4 * 4, embedding_size)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


def pairwise_distances(embeddings):
    dot = embeddings @ embeddings.t()
    sq = torch.diagonal(dot)
    dist = (sq.unsqueeze(0) - 2.0 * dot + sq.unsqueeze(1)).clamp(min=0.0)
    mask = (dist == 0.0).float()
    return torch.sqrt(dist + mask * 1e-16) * (1.0 - mask)


def batch_hard_triplet_loss(labels, embeddings, margin):
    dist = pairwise_distances(embeddings)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool)
    hardest_positive = (dist * (same & ~eye).float()).max(dim=1, keepdim=True).values
    max_dist = dist.max(dim=1, keepdim=True).values
    hardest_negative = (dist + max_dist * same.float()).min(dim=1, keepdim=True).values
    return torch.clamp(hardest_positive - hardest_negative + margin, min=0.0).mean()


def sample_batch():
    classes = rng.choice(CLASSES, size=P, replace=False)
    idx = np.concatenate(
        [rng.choice(np.where(train_y.numpy() == c)[0], K, replace=False) for c in classes]
    )
    return train_x[idx], train_y[idx]


model = EmbeddingNet()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)  # the fix

for epoch in range(EPOCHS):
    model.train()
    total = 0.0
    for step in range(STEPS):
        images, labels = sample_batch()
        optimizer.zero_grad()
        loss = batch_hard_triplet_loss(labels, model(images), MARGIN)
        loss.backward()
        optimizer.step()
        total += loss.item()

    model.eval()
    with torch.no_grad():
        emb_test, emb_train = model(test_x), model(train_x)
        nearest = torch.cdist(emb_test, emb_train).argmin(dim=1)
        acc = (train_y[nearest] == test_y).float().mean().item()
        mean_dist = torch.pdist(emb_test).mean().item()
    print(f"epoch {epoch}: triplet loss {total / STEPS:.4f} mean pairwise distance {mean_dist:.4f} "
          f"1-NN test accuracy {acc:.3f}")  # fmt: skip
