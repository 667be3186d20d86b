"""Column statistics that neither overflow (values up to 1e308) nor copy a large array, and
the principal directions of a matrix through its smaller Gram matrix.

``np.std`` squares the values, so a column of scale 1e200 gives ``inf`` (and a RuntimeWarning),
and it allocates temporaries as large as the array. :func:`column_stats` divides each column by
its largest magnitude first and works in chunks of rows. Small arrays of moderate scale take
NumPy's own path, so their numbers are bit-for-bit those of ``a.mean(axis=0)`` and
``a.std(axis=0)``.
"""

from __future__ import annotations

import numpy as np

# elements per chunk of rows (16 MB of float64)
CHUNK_ELEMENTS = 1 << 21
# below this magnitude the squares of the values cannot overflow
SAFE_MAGNITUDE = 1e150


def row_chunks(n: int, width: int, elements: int = CHUNK_ELEMENTS) -> range:
    """Start rows of chunks of about ``elements`` elements of an ``(n, width)`` array."""
    return range(0, n, max(1, elements // max(width, 1)))


def column_stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column mean, standard deviation and largest magnitude of ``a`` ``(n, k)``, finite
    for any finite input."""
    n, k = a.shape
    if n == 0:
        return np.zeros(k), np.zeros(k), np.zeros(k)
    step = max(1, CHUNK_ELEMENTS // max(k, 1))
    absmax = np.zeros(k)
    for lo in range(0, n, step):
        np.maximum(absmax, np.max(np.abs(a[lo : lo + step]), axis=0), out=absmax)
    if a.size <= CHUNK_ELEMENTS and np.all(absmax < SAFE_MAGNITUDE):
        return a.mean(axis=0), a.std(axis=0), absmax
    big = bool(np.any(absmax >= SAFE_MAGNITUDE))
    scale = np.where(absmax > 0, absmax, 1.0) if big else np.ones(k)
    total = np.zeros(k)
    for lo in range(0, n, step):
        chunk = a[lo : lo + step]
        total += (chunk / scale if big else chunk).sum(axis=0)
    mean_s = total / n
    sq = np.zeros(k)
    for lo in range(0, n, step):
        dev = a[lo : lo + step] / scale if big else a[lo : lo + step] - mean_s
        if big:
            dev -= mean_s
        dev *= dev  # in place: one chunk-sized temporary
        sq += dev.sum(axis=0)
        del dev  # freed before the next chunk's is made
    return mean_s * scale, np.sqrt(sq / n) * scale, absmax


def principal_directions(A: np.ndarray, k: int) -> np.ndarray:
    """The top ``k`` right singular vectors of ``A`` ``(rows, p)``, as columns ``(p, k)``.

    From the eigendecomposition of the smaller of ``A^T A`` ``(p, p)`` and ``A A^T``
    ``(rows, rows)``: a third of the cost of an SVD of ``A`` and, when the rows are few, far
    less than a ``p x p`` decomposition. Columns beyond ``min(rows, p)`` are zero; those of
    zero singular value are zero (``p > rows``) or unit vectors of the null space: ``A`` times
    them is 0 either way.
    """
    rows, p = A.shape
    V = np.zeros((p, k))
    if p <= rows:
        top = np.linalg.eigh(A.T @ A)[1][:, ::-1][:, :k]
        V[:, : top.shape[1]] = top
        return V
    w, U = np.linalg.eigh(A @ A.T)
    w, U = w[::-1][:k], U[:, ::-1][:, :k]
    s = np.sqrt(np.clip(w, 0.0, None))
    # V = A^T U / s; the rounding-level singular values are dropped
    keep = s > np.finfo(np.float64).eps * max(rows, p) * max(float(s.max(initial=0.0)), 0.0)
    V[:, : len(s)] = (A.T @ U) * np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
    return V
