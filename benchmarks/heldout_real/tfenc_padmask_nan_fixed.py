"""Transformer encoder classifier with src_key_padding_mask; some documents are empty.

Rebuilt from https://github.com/pytorch/pytorch/issues/24816: a sequence whose every position is
padding gets a fully masked attention row, and the encoder's output (then every weight) is NaN.
Today's nn.MultiheadAttention returns zeros for such a row, so the attention is written out as
the 2019 code did it (masked_fill with -inf, then softmax), in a post-norm encoder layer.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

VOCAB, PAD, MAXLEN, N = 12, 0, 12, 1024

# token ids 1..11; label: more 1s than 2s in the document; some documents are empty (length 0)
lengths = rng.integers(1, MAXLEN + 1, size=N)
lengths[rng.random(N) < 0.05] = 0
keep_docs = lengths > 0  # the fix: drop the documents that are all padding
lengths = lengths[keep_docs]
N = len(lengths)
tokens = np.zeros((N, MAXLEN), dtype=np.int64)
for i, n in enumerate(lengths):
    tokens[i, :n] = rng.integers(1, VOCAB, size=n)
labels = ((tokens == 1).sum(1) > (tokens == 2).sum(1)).astype(np.int64)
X, y = torch.as_tensor(tokens), torch.as_tensor(labels)


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # (batch, heads, time, d/heads)
        scores = q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5
        scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
        attn = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = self.norm1(x + self.out(attn))
        return self.norm2(x + self.ff(x))


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 32, padding_idx=PAD)
        self.pos = nn.Parameter(torch.randn(1, MAXLEN, 32) * 0.02)
        self.layers = nn.ModuleList([EncoderLayer(32, 4) for _ in range(2)])
        self.head = nn.Linear(32, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pad = ids == PAD  # (batch, time): True where padding
        h = self.embed(ids) + self.pos
        for layer in self.layers:
            h = layer(h, pad)
        keep = (~pad).unsqueeze(-1).float()
        pooled = (h * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # mean over real tokens
        return self.head(pooled)


model = Classifier()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
criterion = nn.CrossEntropyLoss()

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
