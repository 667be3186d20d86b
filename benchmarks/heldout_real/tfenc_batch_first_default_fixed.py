"""Transformer encoder sequence classifier fed (batch, seq, embed) tensors.

Rebuilt from https://github.com/Exorust/TorchLeet/issues/5: nn.TransformerEncoderLayer defaults
to batch_first=False, so a (batch, seq, embed) input is read as (seq, batch, embed): attention
runs across the samples of the batch, and the training loss stays high.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

VOCAB, LENGTH, N = 16, 12, 2048
tokens = rng.integers(1, VOCAB, size=(N, LENGTH))
labels = (tokens[:, 1:] == tokens[:, :1]).any(1).astype(np.int64)  # first token seen again?
X, y = torch.as_tensor(tokens), torch.as_tensor(labels)


class TransformerClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 32)
        layer = nn.TransformerEncoderLayer(
            d_model=32, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True
        )  # the fix: batch_first=True
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.fc = nn.Linear(32, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(ids))  # (batch, seq, embed)
        return self.fc(h[:, 0])  # the first position's output


model = TransformerClassifier()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
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
