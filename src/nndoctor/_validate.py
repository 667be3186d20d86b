"""Input checks shared by every entry point: fail early, name what is wrong."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_float_array(a: Any, name: str, ndim: int | tuple[int, ...] | None = 2) -> np.ndarray:
    """Return ``a`` as a float64 array, checking dtype, dimensions and finiteness.

    Raises a ``TypeError`` for non-numeric input and a ``ValueError`` naming the first NaN or
    inf position or the wrong number of dimensions.
    """
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a numeric array: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    check_finite(arr, name)
    return arr


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` naming the first NaN or inf element of ``arr``."""
    if arr.size and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        first = tuple(int(i) for i in bad[0])
        kind = "NaN" if np.isnan(arr[first]) else "inf"
        raise ValueError(
            f"{name} contains {len(bad)} non-finite value(s); first is {kind} at index {first}"
        )


def check_seed(seed: Any, name: str = "seed") -> int:
    """Return ``seed`` as an int, raising unless it is a non-negative integer (what
    ``numpy.random.default_rng`` takes)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"{name} must be a non-negative int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative int, got {seed!r}")
    return int(seed)


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A Generator from an int seed or a Generator (passed through, so its stream is shared)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise ValueError("a seed (int) or numpy.random.Generator is required for reproducibility")
    return np.random.default_rng(check_seed(seed))


def check_instance(value: Any, base: type, name: str, example: str) -> None:
    """Raise ``TypeError`` when ``value`` is the class ``base`` (or a subclass) itself rather
    than an instance: the call's ``()`` is missing."""
    if isinstance(value, type) and issubclass(value, base):
        raise TypeError(
            f"{name} must be an instance, got the class {value.__name__}: write "
            f"{name}={value.__name__}({example}) with parentheses"
        )


def check_rows(X: np.ndarray, Y: np.ndarray, x_name: str = "X", y_name: str = "Y") -> None:
    """Raise ``ValueError`` unless X and Y have the same number of rows (samples)."""
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"{x_name} has {X.shape[0]} samples (rows) but {y_name} has {Y.shape[0]}")


def check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an int, raising ``ValueError`` unless it is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def batch_rows(batch_size: Any, n: int) -> int:
    """Rows per step for ``n`` samples: ``n`` for ``None`` (full batch), else ``batch_size``
    (a positive integer, checked) capped at ``n``."""
    return n if batch_size is None else min(check_positive_int(batch_size, "batch_size"), n)
