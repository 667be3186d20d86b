"""Token span model (embedding + transformer encoder) trained under bfloat16 autocast on CPU,
with a consistency term built from log(1 - p).

Rebuilt from https://github.com/fastino-ai/GLiNER2/pull/155: the consistency loss clamps the
probabilities with max=1 - 1e-6 before log1p(-p), but 1 - 1e-6 rounds to exactly 1.0 in
bfloat16, so a saturated probability gives log1p(-1) = -inf; the forward pass stays finite,
and the backward pass puts NaN in every gradient.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

VOCAB, PAD, LENGTH, N = 30, 0, 20, 1024
ENTITY = 20  # tokens 20..29 belong to entity names


def make_sentence() -> tuple[list[int], list[float]]:
    """Words 1..19, with 0 to 2 entity spans (tokens 20..29); label 1 on the span's tokens."""
    n = int(rng.integers(8, LENGTH + 1))
    ids = list(rng.integers(1, ENTITY, size=n))
    for _ in range(int(rng.integers(0, 3))):
        start, width = int(rng.integers(0, n - 3)), int(rng.integers(1, 4))
        ids[start : start + width] = list(rng.integers(ENTITY, VOCAB, size=width))
    starts = [float(t >= ENTITY) for t in ids]
    return ids + [PAD] * (LENGTH - n), starts + [0.0] * (LENGTH - n)


data = [make_sentence() for _ in range(N)]
X = torch.as_tensor([d[0] for d in data])
y = torch.as_tensor([d[1] for d in data])
mask = X != PAD
has_entity = (y.sum(1) > 0).float()


class BoundaryModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 48, padding_idx=PAD)
        self.pos = nn.Parameter(torch.randn(1, LENGTH, 48) * 0.02)
        layer = nn.TransformerEncoderLayer(48, 4, 96, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.boundary = nn.Linear(48, 1)  # the freshly initialised head, prior P(span) = 1%
        nn.init.constant_(self.boundary.bias, -4.6)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(ids) + self.pos, src_key_padding_mask=ids == PAD)
        return self.boundary(h).squeeze(-1)  # (batch, time) logits


def consistency_loss(logits: torch.Tensor, mask: torch.Tensor, target: torch.Tensor):
    """P(at least one span token) = 1 - prod(1 - p) must agree with whether a span exists."""
    probabilities = torch.sigmoid(logits.float())  # the fix: in float32, 1 - 1e-6 < 1
    log_survival = torch.log1p(-probabilities.clamp(max=1.0 - 1e-6))
    log_survival = log_survival.masked_fill(~mask, 0.0).sum(1)
    p_any = (1 - torch.exp(log_survival)).float().clamp(1e-6, 1 - 1e-6)
    return -(target * torch.log(p_any) + (1 - target) * torch.log1p(-p_any)).mean()


model = BoundaryModel()
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)

for epoch in range(12):
    perm = torch.randperm(N)
    for start in range(0, N, 64):
        idx = perm[start : start + 64]
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(X[idx])
            main = F.binary_cross_entropy_with_logits(logits.float()[mask[idx]], y[idx][mask[idx]])
            loss = main + 0.1 * consistency_loss(logits, mask[idx], has_entity[idx])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        pred = model(X) > 0
        acc = (pred[mask] == (y[mask] > 0.5)).float().mean().item()
    print(f"epoch {epoch}: loss {loss.item():.4f} token accuracy {acc:.3f}")
