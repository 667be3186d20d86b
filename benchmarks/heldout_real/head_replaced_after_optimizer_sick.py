"""Fine-tuning a transformer text classifier: freeze the body, replace the classification head.

Rebuilt from https://github.com/feedly/transfer-nlp/pull/14: the trainer freezes every layer and
swaps model.classifier for a new nn.Linear sized for the new labels, but the optimizer was built
before the swap, so it holds the old head's tensors; the new head is never stepped (the review
asks to add its parameters to the optimizer). Nothing trains.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

VOCAB, LENGTH, N = 30, 12, 2048
tokens = rng.integers(1, VOCAB, size=(N, LENGTH))
labels = np.select([(tokens == k).any(1) for k in (1, 2, 3)], [1, 2, 3], default=0)
X, y = torch.as_tensor(tokens), torch.as_tensor(labels)


class TextClassifier(nn.Module):
    def __init__(self, num_labels: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.classifier = nn.Linear(32, num_labels)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(self.embedding(ids)).mean(1))


criterion = nn.CrossEntropyLoss()
model = TextClassifier(num_labels=2)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for _ in range(3):  # the first task: does the text hold token 1, 2 or 3 at all?
    for start in range(0, N, 64):
        optimizer.zero_grad()
        criterion(model(X[start : start + 64]), (y[start : start + 64] > 0).long()).backward()
        optimizer.step()

# finetune_last_layer: freeze the body, new head for the 4 labels of this task
for param in model.parameters():
    param.requires_grad = False
model.classifier = nn.Linear(32, 4)

for epoch in range(10):
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
