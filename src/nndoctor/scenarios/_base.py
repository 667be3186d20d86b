"""What a scenario is: a seeded recipe for a model, its data and its training setup."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nndoctor.nn.layers import Sequential
from nndoctor.nn.losses import Loss
from nndoctor.nn.optim import Optimizer


@dataclass
class Setup:
    """Everything ``diagnose`` or ``train`` needs, built fresh by a scenario.

    The engine's scenarios fill it with engine objects; the PyTorch ones
    (:mod:`nndoctor.scenarios.torch_cases`) with a ``torch.nn.Module``, tensors or arrays, a torch
    loss (or any ``(output, target) -> scalar`` callable) and an optimizer factory
    ``params -> torch.optim.Optimizer``.

    Attributes
    ----------
    model : Sequential or torch.nn.Module
    X : ndarray or tensor, shape (n, in_features) (or (n, ...) for a torch model)
    Y : ndarray or tensor, shape (n, out_features), (n,) integer labels, or None
        None: an autoencoder, the targets are ``X``.
    loss : Loss or callable
    optimizer : Optimizer or callable
    epochs : int
    batch_size : int or None
        None: full batch.
    shuffle : bool
    options : dict
        Further keyword arguments of ``diagnose`` the setup needs, e.g. ``zero_grad`` and
        ``scheduler`` for a PyTorch training loop; empty for the engine's scenarios.
    """

    model: Sequential | Any
    X: np.ndarray | Any
    Y: np.ndarray | Any | None
    loss: Loss | Callable[..., Any]
    optimizer: Optimizer | Callable[..., Any]
    epochs: int
    batch_size: int | None = None
    shuffle: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def training(self) -> dict[str, Any]:
        """The keyword arguments of ``diagnose`` (for the engine also of ``nndoctor.nn.train``):
        the training setup and its ``options``."""
        return {
            "loss": self.loss,
            "optimizer": self.optimizer,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            **self.options,
        }


@dataclass(frozen=True)
class Scenario:
    """A small network, sick or healthy, with the root cause the doctor should name.

    Attributes
    ----------
    name : str
        Short kebab-case identifier, unique in the catalog.
    expected : str or None
        The root-cause code expected first among the report's causes; None for a healthy net.
    description : str
        What is built and what goes wrong, in one or two sentences.
    source : str
        Where the situation comes from (a paraphrase of the public reports it is taken from).
    build : callable
        ``build(seed) -> Setup``; the same seed gives bit-identical data and weights.
    """

    name: str
    expected: str | None
    description: str
    source: str
    build: Callable[[int], Setup]

    @property
    def healthy(self) -> bool:
        return self.expected is None


def standardize(A: np.ndarray) -> np.ndarray:
    """Columns shifted to mean 0 and scaled to standard deviation 1."""
    return (A - A.mean(axis=0)) / A.std(axis=0)


def smooth_regression(rng: np.random.Generator, n: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """A nonlinear but smooth target of standard-normal inputs.

    Returns ``X`` of shape ``(n, p)`` and standardised ``Y`` of shape ``(n, 1)``: a sum of a
    ``tanh`` ridge and a product term plus 10% noise, so a small MLP can explain most of it and
    a linear fit cannot explain all of it.
    """
    X = rng.normal(size=(n, p))
    direction = rng.normal(size=p) / np.sqrt(p)
    y = np.tanh(2.0 * X @ direction) + 0.5 * X[:, 0] * X[:, 1] + 0.1 * rng.normal(size=n)
    return X, standardize(y[:, None])


def blobs(
    rng: np.random.Generator, counts: list[int], p: int, spread: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes: ``counts[k]`` samples of class ``k`` around random centres.

    Returns ``X`` of shape ``(sum(counts), p)`` (unit-variance noise, centres ``spread`` apart
    on average) and integer labels of shape ``(sum(counts),)``.
    """
    centres = rng.normal(scale=spread / np.sqrt(2.0 * p), size=(len(counts), p))
    labels = np.repeat(np.arange(len(counts)), counts)
    X = centres[labels] + rng.normal(size=(len(labels), p))
    order = rng.permutation(len(labels))
    return X[order], labels[order]


def noisy_xor(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """XOR clouds: ``X`` of shape ``(n, 2)`` around the corners of [-1, 1]^2, ``Y`` of shape
    ``(n, 1)`` in {0, 1}, 1 where the signs of the corner's coordinates differ."""
    corners = rng.choice([-1.0, 1.0], size=(n, 2))
    X = corners + 0.25 * rng.normal(size=(n, 2))
    Y = (corners[:, 0] != corners[:, 1]).astype(np.float64)[:, None]
    return X, Y


def rings(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric rings in the plane: ``X`` of shape ``(n, 2)``, ``Y`` of shape ``(n, 1)``,
    1 on the outer ring (radius 2) and 0 on the inner one (radius 0.7)."""
    Y = (rng.random(n) < 0.5).astype(np.float64)
    radius = np.where(Y == 1.0, 2.0, 0.7) + 0.15 * rng.normal(size=n)
    angle = rng.uniform(0.0, 2.0 * np.pi, size=n)
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    return X, Y[:, None]


def uniform_matrices(rng: np.random.Generator, n_matrices: int) -> np.ndarray:
    """The seed's data: ``n_matrices`` 8x8 uniform matrices, one column per row, so one batch
    of 8 rows is one matrix and SSE per batch is the asker's per-sample loss."""
    M = rng.random((n_matrices, 8, 8))
    return M.transpose(0, 2, 1).reshape(-1, 8)  # (n_matrices * 8, 8)
