"""Many-to-one LSTM binary sequence classifier: ``LSTM(128)`` over binary feature sequences
(batch, 31, 1), the last hidden state through ``Dense(1, activation='softmax')``, trained with
binary cross-entropy and Adam, batch size 200.

Rebuilt from https://stackoverflow.com/questions/47241622: a Keras ``LSTM(128)`` followed by
``model.add(Dense(1, activation='softmax'))`` and ``loss='binary_crossentropy'`` on 50,000
binary samples gave "bad accuracy, not more than 55%. I tried to change the activation function
along with the loss function ... nothing works", while an MLP on the same data reached 97%.
Accepted answer: "You cannot use softmax as an output when you have only a single output unit as
it will always output you a constant value of 1. You need to either change output activation to
sigmoid or set output units number to 2 and loss to categorical_crossentropy" (asker: "Thank
you"). The fix: sigmoid instead of softmax on the single output unit.

Departures: PyTorch instead of Keras (``nn.LSTM`` + ``nn.Linear(128, 1)`` + ``torch.softmax``
over the unit axis + ``nn.BCELoss``); synthetic data: 4000 binary sequences of length 31 (the
asker had 128 binary features), labelled 1 when more than half the bits are set (a task an LSTM
learns); labels 0/1 instead of the asker's 1/-1; 5 epochs instead of 1; ``stateful=True`` (state
carried between batches) left out, it is not the cause.
Measured: sick: every output exactly 1.000, train loss 50.40 in all 5 epochs (PyTorch's
BCELoss clamps log(0) to -100, so the loss is 100 x the fraction of 0 labels), test accuracy
0.506 (= the fraction of 1 labels) in all 5 epochs; the gradient through a one-unit softmax is
exactly zero, so the weights never change; fixed: loss 0.68 -> 0.20, test accuracy 0.653 ->
0.978. About 6.5 CPU seconds each.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SEQ_LEN, N_TRAIN, N_TEST, BATCH, EPOCHS = 31, 4000, 1000, 200, 5


def make_split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    p = rng.uniform(0.3, 0.7, size=(n, 1))  # each sample has its own density of ones
    bits = (rng.uniform(size=(n, SEQ_LEN)) < p).astype(np.float32)
    labels = (bits.sum(1) > SEQ_LEN / 2).astype(np.float32)
    return torch.as_tensor(bits).unsqueeze(2), torch.as_tensor(labels).unsqueeze(1)


tr_C, tr_r = make_split(N_TRAIN)
ts_C, ts_r = make_split(N_TEST)


class LSTMClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(input_size=1, hidden_size=128, batch_first=True)
        self.dense = nn.Linear(128, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        out = self.dense(out[:, -1, :])  # return_sequences=False
        return torch.softmax(out, dim=1)  # Dense(1, activation='softmax')


model = LSTMClassifier()
criterion = nn.BCELoss()  # loss='binary_crossentropy'
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(N_TRAIN)  # shuffle=True
    total = 0.0
    for i in range(0, N_TRAIN, BATCH):
        idx = perm[i : i + BATCH]
        optimizer.zero_grad()
        pred = model(tr_C[idx])
        loss = criterion(pred, tr_r[idx])
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    model.eval()
    with torch.no_grad():
        prob = model(ts_C)
    acc = ((prob > 0.5).float() == ts_r).float().mean().item()
    print(f"epoch {epoch}: train loss {total / N_TRAIN:.4f} test accuracy {acc:.3f} "
          f"output min {prob.min().item():.3f} max {prob.max().item():.3f}")  # fmt: skip
