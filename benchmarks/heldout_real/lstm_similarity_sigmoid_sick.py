"""Bidirectional LSTM scoring speaker similarity frame by frame (diarization), per-frame binary
targets (batch, time) into BCEWithLogitsLoss.

Rebuilt from https://github.com/cvqluu/nn-similarity-diarization/issues/4: the asker added the
paper's sigmoid to the model's output (torch.sigmoid(self.fc2(x))) and the error went from
9.7% to 37%; the answer: BCEWithLogitsLoss already applies the sigmoid.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

N, T, DIM = 512, 20, 16
# each row: similarities of one segment's embedding to the other segments of the recording;
# a frame's target is 1 when that other segment has the same speaker
speakers = rng.integers(0, 3, size=(N, T))
voices = rng.standard_normal((N, 3, DIM))
frames = np.take_along_axis(voices, speakers[..., None], axis=1)
frames += 0.3 * rng.standard_normal(frames.shape)
same = (speakers == speakers[:, :1]).astype(np.float32)  # same speaker as the first segment
X = torch.as_tensor(frames, dtype=torch.float32)
Y = torch.as_tensor(same)


class LSTMSimilarity(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(DIM, 32, num_layers=2, bidirectional=True, batch_first=True)
        self.fc1 = nn.Linear(64, 32)
        self.nl = nn.ReLU()
        self.fc2 = nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = self.lstm(x)
        x = self.nl(self.fc1(x))
        return torch.sigmoid(self.fc2(x).squeeze(2))  # (batch, time)


model = LSTMSimilarity()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
criterion = nn.BCEWithLogitsLoss()
for epoch in range(15):
    perm = torch.randperm(N)
    for start in range(0, N, 32):
        idx = perm[start : start + 32]
        optimizer.zero_grad()
        loss = criterion(model(X[idx]), Y[idx])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        out = model(X)
        pred = out > 0.5  # (probabilities)
        error = (pred != (Y > 0.5)).float().mean().item()
    print(f"epoch {epoch}: loss {loss.item():.4f} frame error {error:.3f}")
