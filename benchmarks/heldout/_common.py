"""What every held-out case is made of: a ``Setup``, a ``Case``, a ``CaseSet``, and data helpers.

A case replicates one kind of real report ("my network always outputs the same"). Its ``build``
returns the user's whole training setup, which the runner hands to ``nndoctor.diagnose``
unchanged. The data helpers draw from the ``numpy.random.Generator`` they are given, in a fixed
order, so a case rebuilt from the same seed is bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nndoctor.nn import Dense, Layer, Sequential
from nndoctor.nn.losses import Loss
from nndoctor.nn.optim import Optimizer


@dataclass
class Setup:
    """A user's training run, as ``diagnose`` takes it (``Y`` None: an autoencoder)."""

    model: Sequential
    X: np.ndarray
    Y: np.ndarray | None
    loss: Loss
    optimizer: Optimizer
    epochs: int
    batch_size: int | None
    shuffle: bool


@dataclass(frozen=True)
class Case:
    """One held-out case.

    ``expected`` is the root cause a skilled practitioner would name (a finding code), or None
    for a healthy run with nothing to fix. ``build(seed)`` makes the setup that ``diagnose``
    runs with ``seed=seed``, once per seed in ``seeds``.
    """

    name: str
    expected: str | None
    note: str
    build: Callable[[int], Setup]
    seeds: tuple[int, ...]


@dataclass
class CaseSet:
    """A red-team batch of cases and how far the doctor's rules were tuned on it."""

    title: str
    tuning: str
    cases: list[Case] = field(default_factory=list)

    def case(
        self, name: str, expected: str | None, note: str, seeds: Sequence[int] = (0, 1, 2)
    ) -> Callable[[Callable[[int], Setup]], Callable[[int], Setup]]:
        """Register ``build(seed)``: data and weights drawn from the run's seed."""

        def register(build: Callable[[int], Setup]) -> Callable[[int], Setup]:
            self.cases.append(Case(name, expected, note, build, tuple(seeds)))
            return build

        return register

    def fixed_case(
        self, name: str, expected: str | None, note: str, seed: int
    ) -> Callable[[Callable[[], Setup]], Callable[[], Setup]]:
        """Register ``build()``: data and weights fixed by the case; diagnosed at ``seed`` only."""

        def register(build: Callable[[], Setup]) -> Callable[[], Setup]:
            self.cases.append(Case(name, expected, note, lambda _seed: build(), (seed,)))
            return build

        return register


def mlp(
    sizes: Sequence[int],
    act: type[Layer],
    rng: np.random.Generator,
    init: Any = "xavier_uniform",
    bias: float = 0.0,
    out: type[Layer] | None = None,
) -> Sequential:
    """Dense layers of ``sizes`` with ``act`` between them and ``out`` (if any) at the end.

    Every Dense uses ``init`` for its weights; hidden biases start at ``bias``, the output bias
    at 0. Weights are drawn from ``rng`` layer by layer.
    """
    layers: list[Layer] = []
    for k in range(len(sizes) - 1):
        last = k == len(sizes) - 2
        bias_init = 0.0 if last else bias
        layers.append(Dense(sizes[k], sizes[k + 1], init=init, bias_init=bias_init, seed=rng))
        if not last:
            layers.append(act())
        elif out is not None:
            layers.append(out())
    return Sequential(*layers)


def zscore(a: Any) -> np.ndarray:
    """Standardise each column; a constant column is only centred."""
    a = np.asarray(a, float)
    s = a.std(axis=0)
    return (a - a.mean(axis=0)) / np.where(s > 0, s, 1.0)


def column(y: Any) -> np.ndarray:
    """``y`` as a float column, shape (n, 1)."""
    return np.asarray(y, float).reshape(-1, 1)


# ---- data: every helper returns inputs X (n, p) and labels (n,) or targets ----


def moons(rng: np.random.Generator, n: int, noise: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles in 2-d; integer labels (n,)."""
    lab = (rng.random(n) < 0.5).astype(int)
    t = rng.uniform(0, np.pi, n)
    x = np.where(lab == 0, np.cos(t), 1 - np.cos(t))
    y = np.where(lab == 0, np.sin(t), 0.5 - np.sin(t))
    X = np.column_stack([x, y]) + noise * rng.normal(size=(n, 2))
    return X, lab


def digits(
    rng: np.random.Generator,
    n: int,
    classes: int = 10,
    levels: int = 16,
    counts: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """8x8 binary prototypes with 12% of pixels flipped, grey levels 0..``levels`` (n, 64).

    Labels are uniform over ``classes``, or exactly ``counts[c]`` of class c in random order.
    """
    protos = rng.random((classes, 64)) < 0.35
    if counts is None:
        lab = rng.integers(0, classes, n)
    else:
        lab = rng.permutation(np.repeat(np.arange(classes), counts))
    flip = rng.random((len(lab), 64)) < 0.12
    img = protos[lab] ^ flip
    X = np.round(img * levels * rng.uniform(0.6, 1.0, (len(lab), 64)))
    return X, lab


def gauss_reg(
    rng: np.random.Generator, n: int, p: int, noise: float = 0.2, linear: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inputs (n, p); a standardised target (n, 1), linear or a bent single index."""
    X = rng.normal(size=(n, p))
    w = rng.normal(size=p) / np.sqrt(p)
    y = X @ w if linear else np.sin(1.5 * X @ w) + 0.3 * X[:, 0] ** 2
    y = y + noise * rng.normal(size=n)
    return X, ((y - y.mean()) / y.std())[:, None]


def sine(
    rng: np.random.Generator, n: int, freq: float = 2.0, noise: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """x ~ U(-3, 3) (n, 1) and sin(freq x) plus noise (n, 1)."""
    x = rng.uniform(-3, 3, (n, 1))
    return x, np.sin(freq * x) + noise * rng.normal(size=(n, 1))


def poly(rng: np.random.Generator, n: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inputs (n, p); a standardised quadratic target (n, 1)."""
    X = rng.normal(size=(n, p))
    y = X[:, 0] ** 2 - X[:, 1] * X[:, 2] + 0.5 * X[:, 3 % p] + 0.1 * rng.normal(size=n)
    return X, ((y - y.mean()) / y.std())[:, None]


def lowrank(rng: np.random.Generator, n: int, p: int, rank: int, noise: float = 0.05) -> np.ndarray:
    """Rank-``rank`` Gaussian data in ``p`` dimensions plus a little noise (n, p)."""
    Z = rng.normal(size=(n, rank))
    return Z @ rng.normal(size=(rank, p)) / np.sqrt(rank) + noise * rng.normal(size=(n, p))


def glyphs(
    rng: np.random.Generator, n: int, classes: int = 10, scale: float = 255.0
) -> tuple[np.ndarray, np.ndarray]:
    """8x8 'handwritten' glyphs (n, 64), grey levels 0..``scale``; labels (n,).

    Each class is a smooth three-blob template, jittered; the four corner pixels are always
    blank, as in real digit sets.
    """
    yy, xx = np.mgrid[0:8, 0:8]
    centres = rng.uniform(1.5, 6.5, (classes, 3, 2))
    templates = np.zeros((classes, 64))
    for c in range(classes):
        img = np.zeros((8, 8))
        for cy, cx in centres[c]:
            img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0)
        templates[c] = (img / img.max()).ravel()
    lab = rng.integers(0, classes, n)
    X = np.clip(templates[lab] + 0.25 * rng.normal(size=(n, 64)), 0, 1)
    X[:, [0, 7, 56, 63]] = 0.0
    return np.round(X * scale), lab


def spiral(
    rng: np.random.Generator, n: int, classes: int = 3, noise: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms in 2-d, one per class; labels (n,)."""
    lab = rng.integers(0, classes, n)
    r = rng.uniform(0.1, 1.0, n)
    t = 4.0 * r + 2 * np.pi * lab / classes + noise * rng.normal(size=n)
    return np.column_stack([r * np.cos(t), r * np.sin(t)]), lab


def friedman(
    rng: np.random.Generator, n: int, p: int = 6, noise: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Friedman-1-like regression on U(0, 1)^p inputs (n, p); raw target (n,), about 0..30."""
    X = rng.uniform(0, 1, (n, p))
    y = (
        10 * np.sin(np.pi * X[:, 0] * X[:, 1])
        + 20 * (X[:, 2] - 0.5) ** 2
        + 10 * X[:, 3]
        + 5 * X[:, 4]
    )
    return X, y + noise * rng.normal(size=n)
