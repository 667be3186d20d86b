"""Recurrent forecaster as darts builds it for
`RNNModel(input_chunk_length=16, output_chunk_length=12)` (model="RNN", the default): a vanilla
tanh RNN, 25 hidden units, one layer, batch_first, and a linear read-out at every step; trained on
windows of `training_length` 24 cut from the series, the target being the window shifted by one
step; MSELoss, Adam lr 1e-3, batch 32 (darts' defaults).

Rebuilt from https://github.com/unit8co/darts/issues/779: "Forecast issue": an RNNModel (and an
NBEATSModel) fitted with `model.fit(train)` on the raw series gave a flat forecast far from the
data; the maintainer's answer: with deep learning models, scale the training series first
(standardize / normalize, darts' `Scaler`), fit and predict, then inverse-transform the predictions.
The series went into the tanh RNN and into the MSE unscaled (the stored thread shows no numbers:
values in the hundreds are this rebuild's assumption; the asker did not report back).

Departures: a synthetic daily series (level about 800, a 30-day season of amplitude 200, a slow
trend, noise) instead of the asker's data; the darts training loop written out (shuffled windows,
zero_grad, forward, MSE, backward, step); 20 epochs instead of 100; one-step-ahead predictions on
the held-out tail are scored with R^2 in the series' own units.
Measured here (20 epochs): sick: training MSE 7.4e5 -> 7.1e5, the same prediction (16.0) for every
held-out window while the truth spans 646..1131 (the saturated tanh state is the same for every
input; the read-out creeps up from 0 by about 0.03 per step), R^2 -37; fixed (MinMax-scaled series,
predictions inverse-transformed): MSE 0.0039 in scaled units, R^2 0.957.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

# a daily series: level ~800, 30-day season, slow trend, noise
t = np.arange(1100)
series = 800 + 200 * np.sin(2 * np.pi * t / 30) + 0.1 * t + 20 * rng.standard_normal(len(t))
series = series.astype(np.float32)
n_train = 950
lo, hi = series[:n_train].min(), series[:n_train].max()  # the fix: Scaler().fit(train)
series = (series - lo) / (hi - lo)  # the fix: scaler.transform(series)
train = series[:n_train]
val = series[n_train - 24 :]

TRAINING_LENGTH, HIDDEN_DIM, BATCH_SIZE = 24, 25, 32


class _RNNModule(nn.Module):
    def __init__(
        self, name: str, input_size: int, hidden_dim: int, num_layers: int, target_size: int = 1
    ) -> None:
        super().__init__()
        self.rnn = getattr(nn, name)(input_size, hidden_dim, num_layers, batch_first=True)
        self.V = nn.Linear(hidden_dim, target_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)  # (batch, time, hidden)
        return self.V(out)  # a prediction at every step


def windows(values: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, target) pairs: target = input shifted by one step, as darts' ShiftedDataset."""
    starts = range(len(values) - TRAINING_LENGTH)
    x = np.stack([values[s : s + TRAINING_LENGTH] for s in starts])
    y = np.stack([values[s + 1 : s + TRAINING_LENGTH + 1] for s in starts])
    return torch.as_tensor(x)[..., None], torch.as_tensor(y)[..., None]


X_train, Y_train = windows(train)
X_val, Y_val = windows(val)

model = _RNNModule("RNN", 1, HIDDEN_DIM, 1)
criterion = nn.MSELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(1, 21):
    model.train()
    perm = torch.randperm(len(X_train))
    total = 0.0
    for start in range(0, len(X_train), BATCH_SIZE):
        idx = perm[start : start + BATCH_SIZE]
        optimizer.zero_grad()
        output = model(X_train[idx])
        loss = criterion(output, Y_train[idx])
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    if epoch % 5 == 0 or epoch == 1:
        model.eval()
        with torch.no_grad():
            pred = model(X_val)[:, -1, 0].numpy()  # one step ahead of each held-out window
        truth = Y_val[:, -1, 0].numpy()
        pred = pred * (hi - lo) + lo  # the fix: scaler.inverse_transform
        truth = truth * (hi - lo) + lo  # the fix
        r2 = 1 - np.mean((pred - truth) ** 2) / np.var(truth)
        print(
            f"epoch {epoch}: train MSE {total / len(X_train):.4g}  held-out R^2 {r2:.3f}  "
            f"prediction range {pred.min():.1f}..{pred.max():.1f} "
            f"(truth {truth.min():.0f}..{truth.max():.0f})"
        )
