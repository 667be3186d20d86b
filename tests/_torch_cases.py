"""A small regression problem and the MLP that fits it, shared by the PyTorch doctor tests."""

from __future__ import annotations

import numpy as np


def regression(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 5))
    y = np.tanh(X @ rng.normal(size=5))[:, None] + 0.1 * rng.normal(size=(n, 1))
    return X, y


def mlp(torch, nn, seed: int = 0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1))
