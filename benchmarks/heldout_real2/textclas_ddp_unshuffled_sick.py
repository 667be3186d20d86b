"""fastai-style text classifier on token ids: an embedding, an LSTM encoder and a pooling linear
classifier (concatenated last hidden state, max pool and mean pool over the non-padded tokens)
for two-class sentiment, trained with a one-cycle schedule; the training loader draws through a
DistributedSampler, as fastai's to_distributed() set it up.

Rebuilt from https://github.com/fastai/fastai/issues/2501: the IMDb classifier of lesson3-imdb,
run in distributed mode, stays at accuracy 0.49996 (train loss 0.128, valid loss 2.5) instead
of the 0.92 it reaches on one GPU. The cause found: the distributed sampler that replaced the
text classifier's shuffling sampler was built with shuffle=False, and the IMDb training set is
stored by label (all negative reviews, then all positive), so every epoch walks one class and
then the other and the model ends on whichever came last. The fix (fastai PR #2504): let the
distributed sampler shuffle.

Departures: synthetic reviews (sentiment words of the review's polarity outnumber the others,
among neutral filler, right-padded) stored negative first as IMDb is; a one-layer LSTM trained
from scratch instead of the fine-tuned AWD-LSTM; one process (num_replicas=1) instead of three.
The learning rate is the lesson's 2e-2 for the classifier.
Measured: sick: validation accuracy 0.520 = the share of positive reviews (0.99 to 1.00 of the
reviews called positive, the class seen last in each epoch), valid loss 2.35 after epoch 0 and
0.72 after 4 epochs; fixed: validation accuracy 1.000, valid loss 0.002.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

PAD, T, VOCAB = 0, 32, 60
NEGATIVE, POSITIVE = np.arange(1, 11), np.arange(11, 21)  # sentiment words; 21..59 neutral


def make_review(label: int) -> list[int]:
    length = int(rng.integers(12, T + 1))
    words = list(rng.integers(21, VOCAB, size=length))
    own, other = (POSITIVE, NEGATIVE) if label else (NEGATIVE, POSITIVE)
    n_own = int(rng.integers(2, 5))
    n_other = int(rng.integers(0, n_own - 1))
    for k, pos in enumerate(rng.choice(length, size=n_own + n_other, replace=False)):
        words[pos] = int(rng.choice(own if k < n_own else other))
    return words + [PAD] * (T - length)


def make_set(n: int, sort_by_label: bool) -> TensorDataset:
    y = rng.integers(0, 2, size=n)
    if sort_by_label:
        y = np.sort(y)  # stored as IMDb is: train/neg/* then train/pos/*
    x = torch.as_tensor([make_review(int(label)) for label in y])
    return TensorDataset(x, torch.as_tensor(y))


train_ds, valid_ds = make_set(2048, sort_by_label=True), make_set(512, sort_by_label=False)


class TextClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 32, padding_idx=PAD)
        self.rnn = nn.LSTM(32, 64, batch_first=True)
        self.head = nn.Sequential(
            nn.BatchNorm1d(192), nn.Dropout(0.1), nn.Linear(192, 50), nn.ReLU(),
            nn.BatchNorm1d(50), nn.Dropout(0.1), nn.Linear(50, 2),
        )  # fmt: skip

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != PAD).unsqueeze(-1)
        out, _ = self.rnn(self.embed(ids))
        lengths = mask.sum(1).squeeze(-1)
        last = out[torch.arange(len(ids)), lengths - 1]
        max_pool = out.masked_fill(~mask, -1e4).max(1).values
        mean_pool = (out * mask).sum(1) / lengths.unsqueeze(-1)
        return self.head(torch.cat([last, max_pool, mean_pool], 1))


sampler = DistributedSampler(train_ds, num_replicas=1, rank=0, shuffle=False)
train_dl = DataLoader(train_ds, batch_size=32, sampler=sampler, num_workers=0)
model = TextClassifier()
EPOCHS = 4
optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
scheduler = torch.optim.lr_scheduler.OneCycleLR(
    optimizer, max_lr=2e-2, total_steps=EPOCHS * len(train_dl)
)

for epoch in range(EPOCHS):
    sampler.set_epoch(epoch)
    model.train()
    total = 0.0
    for x, y in train_dl:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item()
    model.eval()
    with torch.no_grad():
        x, y = valid_ds.tensors
        logits = model(x)
        valid_loss = F.cross_entropy(logits, y).item()
        pred = logits.argmax(1)
    accuracy, positive = (pred == y).float().mean().item(), pred.float().mean().item()
    print(f"epoch {epoch}: train_loss {total / len(train_dl):.4f} valid_loss {valid_loss:.4f}"
          f" accuracy {accuracy:.3f} share predicted positive {positive:.2f}")  # fmt: skip
