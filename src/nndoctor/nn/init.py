"""Weight initialisers, chosen by name and always seeded.

Fan-in and fan-out follow PyTorch for a weight of shape ``(out_features, in_features)``:
``fan_in = in_features``, ``fan_out = out_features``. A zero or constant init is allowed on
purpose: it is one of the causes the doctor names (identical units).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Initializer = Callable[[tuple[int, ...], np.random.Generator], np.ndarray]


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 1:  # a bias: treat it as one row of its own width
        return shape[0], shape[0]
    return shape[1], shape[0]


def zeros(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return np.zeros(shape)


def constant(value: float) -> Initializer:
    """An initialiser that fills every element with ``value``."""

    def init(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return np.full(shape, float(value))

    return init


def uniform(low: float = -0.05, high: float = 0.05) -> Initializer:
    def init(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(low, high, size=shape)

    return init


def normal(std: float = 0.05) -> Initializer:
    def init(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.normal(0.0, std, size=shape)

    return init


def xavier_uniform(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    # Glorot & Bengio 2010: keeps activation variance equal forwards and backwards.
    fan_in, fan_out = _fans(shape)
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape)


def xavier_normal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    fan_in, fan_out = _fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=shape)


def he_uniform(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    # He et al. 2015: ReLU halves the variance, so fan_in gets a factor 2.
    fan_in, _ = _fans(shape)
    bound = np.sqrt(6.0 / fan_in)
    return rng.uniform(-bound, bound, size=shape)


def he_normal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    fan_in, _ = _fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


INITIALIZERS: dict[str, Initializer] = {
    "zeros": zeros,
    "ones": constant(1.0),
    "uniform": uniform(),
    "normal": normal(),
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "glorot_uniform": xavier_uniform,
    "glorot_normal": xavier_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "kaiming_uniform": he_uniform,
    "kaiming_normal": he_normal,
}


def get_initializer(init: str | float | Initializer) -> Initializer:
    """Resolve an initialiser given by name, by a constant value, or as a callable.

    Parameters
    ----------
    init : str, float or callable
        A name from ``INITIALIZERS`` (``"zeros"``, ``"xavier_uniform"``, ``"he_normal"``, ...),
        a number (constant init), or ``f(shape, rng) -> ndarray``.
    """
    if callable(init):
        return init
    if isinstance(init, int | float) and not isinstance(init, bool):
        return constant(init)
    if isinstance(init, str) and init in INITIALIZERS:
        return INITIALIZERS[init]
    names = ", ".join(sorted(INITIALIZERS))
    raise ValueError(f"unknown init {init!r}; choose one of: {names}, a number, or a callable")
