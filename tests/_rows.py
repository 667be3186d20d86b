"""Counting distinct units independently of the doctor's own grouping."""

from __future__ import annotations

import numpy as np


def distinct_rows(W: np.ndarray, tol: float = 1e-9) -> int:
    """Rows of ``W`` that differ from every earlier kept row by more than ``tol`` times the
    largest entry: rows equal up to rounding count once."""
    scale = float(np.abs(W).max()) or 1.0
    kept: list[np.ndarray] = []
    for row in W:
        if all(np.max(np.abs(row - k)) > tol * scale for k in kept):
            kept.append(row)
    return len(kept)
