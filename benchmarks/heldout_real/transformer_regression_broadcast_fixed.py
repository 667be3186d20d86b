"""Transformer text regressor (small DistilBERT-like encoder, first-token pooling, regression
head), MSELoss.

Rebuilt from https://github.com/deepset-ai/FARM/issues/229: the regression head's logits are
squeezed to (batch,) while the labels are (batch, 1); MSELoss broadcasts them to (batch, batch)
("Using a target size (torch.Size([32, 1])) that is different to the input size
(torch.Size([32]))") and the model learns the mean; the fix stops squeezing the logits.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

VOCAB, LENGTH, N = 30, 16, 2048
CLS = 1
tokens = rng.integers(2, VOCAB, size=(N, LENGTH))
tokens[:, 0] = CLS
scores = rng.uniform(0, 16, size=(N, 1))  # document scores 0..16, as in the report
# the score shows in the text: how many "strong" tokens (2..5) the document holds
for i, s in enumerate(scores[:, 0]):
    slots = rng.choice(np.arange(1, LENGTH), size=int(np.rint(s * 0.6)), replace=False)
    tokens[i, slots] = rng.integers(2, 6, size=len(slots))
labels = np.array([[((t >= 2) & (t < 6)).sum() / 0.6] for t in tokens], dtype=np.float32)
X, y = torch.as_tensor(tokens), torch.as_tensor(labels)  # y: (N, 1)


class Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 32)
        self.pos = nn.Parameter(torch.randn(1, LENGTH, 32) * 0.02)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(ids) + self.pos)
        return self.head(h[:, 0])  # the fix: (batch, 1), the shape of the labels


model = Regressor()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
criterion = nn.MSELoss()
for epoch in range(8):
    perm = torch.randperm(N)
    for start in range(0, N, 32):
        idx = perm[start : start + 32]
        optimizer.zero_grad()
        loss = criterion(model(X[idx]), y[idx])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        mse = ((model(X) - y) ** 2).mean().item()
    print(
        f"epoch {epoch}: loss {loss.item():.3f} true MSE {mse:.3f} (label variance {y.var():.3f})"
    )
