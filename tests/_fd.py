"""Central finite differences for the engine's tests: the independent reference for gradients."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numeric_gradient(
    f: Callable[[], np.ndarray | float],
    x: np.ndarray,
    weight: np.ndarray | float = 1.0,
    h: float = 1e-5,
) -> np.ndarray:
    """d sum(weight * f()) / dx by central differences, perturbing ``x`` in place.

    ``f`` reads ``x`` (a parameter or input array it closes over). Differencing the outputs
    before weighting them lets untouched elements cancel exactly, so the round-off stays at
    the level of the elements that actually moved.
    """
    grad = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        original = x[idx]
        x[idx] = original + h
        up = np.array(f(), dtype=np.float64)
        x[idx] = original - h
        down = np.array(f(), dtype=np.float64)
        x[idx] = original
        grad[idx] = np.sum(weight * (up - down)) / (2.0 * h)
    return grad


def max_rel_err(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Worst element of ``|a - n| / max(|a|, |n|)``, counting both-zero elements as 0."""
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    err = np.divide(np.abs(analytic - numeric), scale, out=np.zeros_like(scale), where=scale > 0)
    return float(err.max())
