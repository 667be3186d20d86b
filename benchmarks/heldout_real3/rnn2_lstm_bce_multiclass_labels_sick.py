"""Many-to-one LSTM text classifier on word-vector sequences: ``LSTM`` over (batch, 20, 16)
embedded sentences, the last hidden state through ``Dropout(0.5)`` and ``Dense(1)`` with a
sigmoid, trained with binary cross-entropy and Adam, batch size 32; 3 target labels.

Rebuilt from https://github.com/keras-team/keras/issues/2172 ("Accuracy always 1 when using
LSTM"): a simple text classification task with 3 target labels, word2vec inputs to
``LSTM(400)``, ``Dropout(0.5)``, ``Dense(1)``, ``Activation('sigmoid')``,
``loss='binary_crossentropy'``; "y_train is a simple vector of labels like [0,2,1,0,1,0,...]";
training showed "loss: -8.0915 - acc: 1.0000". Answer (NasenSpray): "The model in your has only
one output ... y_train has to be >= 2D, e.g. (n_samples, output_dimsize)", i.e. one-hot targets
over 3 output units with a softmax and categorical cross-entropy; the asker: "that solves it".

Departures: PyTorch instead of Keras: the sigmoid + binary cross-entropy pair is
``nn.BCEWithLogitsLoss`` on the ``Dense(1)`` output (``nn.BCELoss`` would refuse the label 2),
and the fix is ``nn.Linear(hidden, 3)`` + ``nn.CrossEntropyLoss`` (softmax + categorical
cross-entropy on the integer labels); LSTM(64) instead of LSTM(400); synthetic data: 3000
sentences of 20 random 16-d "word vectors", each class marked by two of its own keyword vectors
at random places; 8 epochs instead of 3; accuracy printed as 3-class accuracy (the sick model's
class is round(sigmoid(output)), as Keras predicts) instead of Keras's binary accuracy.
Measured: sick: train loss 0.12 -> -0.88 -> ... -> -11.85 (unbounded below: the label-2
term pushes its logits to +infinity), test accuracy 0.37 -> 0.52 over 8 epochs (chance 0.33,
at most 0.67 with two predictable classes), class 2 never predicted; fixed: loss 1.02 -> 0.026,
test accuracy 0.678 -> 0.983, all 3 classes predicted. About 4.9 CPU seconds each.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SEQ_LEN, DIM, CLASSES, N_TRAIN, N_TEST, BATCH, EPOCHS = 20, 16, 3, 3000, 600, 32, 8
KEYWORDS = rng.standard_normal((CLASSES, 2, DIM)).astype(np.float32)


def make_split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = rng.integers(CLASSES, size=n)
    x = rng.standard_normal((n, SEQ_LEN, DIM)).astype(np.float32)
    for i, c in enumerate(labels):
        pos = rng.choice(SEQ_LEN, size=2, replace=False)
        x[i, pos] = KEYWORDS[c]
    return torch.as_tensor(x), torch.as_tensor(labels)


X_train, y_train = make_split(N_TRAIN)
X_test, y_test = make_split(N_TEST)


class Model(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.lstm = nn.LSTM(DIM, hidden, batch_first=True)
        self.dropout = nn.Dropout(0.5)
        self.dense = nn.Linear(hidden, 1)  # Dense(1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.dense(self.dropout(out[:, -1]))


def predict_classes(out):
    return torch.sigmoid(out).round().squeeze(1).long()  # Activation('sigmoid'), rounded


model = Model()
criterion = nn.BCEWithLogitsLoss()  # sigmoid + binary_crossentropy
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(N_TRAIN)
    total = 0.0
    for i in range(0, N_TRAIN, BATCH):
        idx = perm[i : i + BATCH]
        optimizer.zero_grad()
        out = model(X_train[idx])
        loss = criterion(out, y_train[idx].float().unsqueeze(1))  # labels 0, 1, 2
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    model.eval()
    with torch.no_grad():
        pred = predict_classes(model(X_test))
    acc = (pred == y_test).float().mean().item()
    print(f"epoch {epoch}: train loss {total / N_TRAIN:.4f} test accuracy {acc:.3f} "
          f"classes predicted {pred.unique().tolist()}")  # fmt: skip
