"""Policy distillation into a recurrent student (GRU memory + MLP actor), regression on actions.

Rebuilt from https://github.com/leggedrobotics/rsl_rl/pull/94: the distillation optimizer was
built from the student actor's parameters only, so the student's recurrent memory (an RNN module
of the same policy) is trained by nothing and keeps its random weights; the PR adds the RNN
parameters to the optimizer.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

OBS, ACT, STEPS, N = 6, 2, 16, 1024
# the teacher acts on what it saw over the last steps (a decaying trace of the observations)
mixing = rng.standard_normal((OBS, ACT)).astype(np.float32) / np.sqrt(OBS)
obs = rng.standard_normal((N, STEPS, OBS)).astype(np.float32)
trace = np.zeros((N, OBS), dtype=np.float32)
actions = np.empty((N, STEPS, ACT), dtype=np.float32)
for t in range(STEPS):
    trace = 0.7 * trace + obs[:, t]
    actions[:, t] = np.tanh(trace @ mixing)
obs_t, act_t = torch.as_tensor(obs), torch.as_tensor(actions)


class Student(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.memory_s = nn.GRU(OBS, 32, batch_first=True)
        self.actor = nn.Sequential(nn.Linear(32, 64), nn.ELU(), nn.Linear(64, ACT))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.memory_s(observations)  # (batch, time, 32)
        return self.actor(hidden)


student = Student()
optimizer = torch.optim.Adam(student.parameters(), lr=2e-3)  # the fix: the memory too
for epoch in range(30):
    perm = torch.randperm(N)
    for start in range(0, N, 64):
        idx = perm[start : start + 64]
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(student(obs_t[idx]), act_t[idx])
        loss.backward()
        optimizer.step()
    if epoch % 5 == 4:
        with torch.no_grad():
            full = nn.functional.mse_loss(student(obs_t), act_t).item()
        print(f"epoch {epoch}: distillation loss {full:.4f} (action variance {act_t.var():.3f})")
