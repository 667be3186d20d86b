"""TextCNN: token ids into fixed pretrained word vectors, Conv1d widths 3, 4, 5, max-pool.

Rebuilt from https://github.com/pytorch/pytorch/issues/1053: the three Conv1d layers are kept in
a plain Python list, so they are not registered: model.parameters() (hence the optimizer) never
sees them and they keep their random initial filters.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

VOCAB, LENGTH, N = 50, 20, 2000
tokens = rng.integers(4, VOCAB, size=(N, LENGTH))
labels = rng.integers(0, 2, size=N)
for i in range(N):  # class 1: the phrase (1, 2, 3) occurs; class 0: its words occur apart
    at = rng.choice(LENGTH - 3)
    if labels[i]:
        tokens[i, at : at + 3] = [1, 2, 3]
    else:
        tokens[i, rng.choice(LENGTH, size=3, replace=False)] = [3, 1, 2]
X, y = torch.as_tensor(tokens), torch.as_tensor(labels)


class TextCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        # pretrained word vectors, kept fixed (random stand-ins here)
        self.embedding = nn.Embedding.from_pretrained(torch.randn(VOCAB, 32), freeze=True)
        self.conv1d = nn.ModuleList(  # the fix: registered, so optimised
            [nn.Conv1d(32, 16, 3), nn.Conv1d(32, 16, 4), nn.Conv1d(32, 16, 5)]
        )
        self.fc = nn.Linear(48, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids).transpose(1, 2)  # (batch, embed, time)
        pooled = [torch.relu(conv(x)).amax(dim=2) for conv in self.conv1d]
        return self.fc(torch.cat(pooled, dim=1))


model = TextCNN()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
criterion = nn.CrossEntropyLoss()
for epoch in range(8):
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
