"""Linear code bound: the best reconstruction loss of any rank-k affine code, every k at once.

By Eckart-Young, the best rank-k affine reconstruction of rows ``x_i`` is the projection of the
centred rows onto the top-k principal directions, and its summed squared error is the sum of
the discarded eigenvalues of the centred scatter matrix ``Xc.T @ Xc``. The scatter matrix is
accumulated in row chunks, so a million rows cost one pass of matrix products and a ``d x d``
eigendecomposition (``n x n`` when there are fewer rows than columns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndoctor._validate import as_float_array
from nndoctor.bounds._fits import fmt
from nndoctor.bounds._units import SQUARED, check_samples, loss_kind, units
from nndoctor.nn.losses import Loss

# rows per chunk of the scatter matrix: about 32 MB of float64 per chunk
_CHUNK_ELEMENTS = 1 << 22
# a spectrum counts as "nearly flat" when its effective rank is this share of all components
_FLAT = 0.9


@dataclass(frozen=True, eq=False)
class LinearCode:
    """Best reconstruction loss of a rank-k affine code, for every k.

    Attributes
    ----------
    loss_at_rank : ndarray, shape (max_rank + 1,)
        Entry k is the best loss of a rank-k code; entry 0 is the constant baseline (predict
        the mean row). ``max_rank = min(n - 1, d)``.
    explained_variance_ratio : ndarray, shape (max_rank,)
        Share of the total variance along each principal direction, largest first (zeros when
        the data has no variance).
    components : ndarray, shape (max_rank, d)
        The principal directions, one per row.
    mean : ndarray, shape (d,)
    loss_name : str
    batch_size : int or None
    """

    loss_at_rank: np.ndarray
    explained_variance_ratio: np.ndarray
    components: np.ndarray
    mean: np.ndarray
    loss_name: str
    batch_size: int | None

    @property
    def max_rank(self) -> int:
        return len(self.explained_variance_ratio)

    def at_rank(self, k: int) -> float:
        """Best loss of a rank-``k`` code; ``ValueError`` outside ``0..max_rank``."""
        if (
            isinstance(k, bool)
            or not isinstance(k, int | np.integer)
            or not (0 <= k <= self.max_rank)
        ):
            raise ValueError(f"rank k must be an integer in 0..{self.max_rank}, got {k!r}")
        return float(self.loss_at_rank[k])

    @property
    def effective_rank(self) -> float:
        """``exp`` of the entropy of the explained variance ratios: ``max_rank`` for a flat
        spectrum, 1 when one direction holds all the variance (Roy and Vetterli, 2007)."""
        p = self.explained_variance_ratio[self.explained_variance_ratio > 0]
        return float(np.exp(-(p * np.log(p)).sum())) if p.size else 0.0

    def rank_for(self, fraction: float) -> int:
        """Fewest components that explain at least ``fraction`` of the variance."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
        cumulative = np.cumsum(self.explained_variance_ratio)
        # the rounding of a cumulative sum may leave the last entry a hair under 1
        return int(min(np.searchsorted(cumulative, fraction - 1e-12) + 1, self.max_rank))

    def spectrum(self, k: int) -> str:
        """One phrase on how compressible the data is, quoting the top ``k`` components."""
        r = self.max_rank
        if not self.explained_variance_ratio.any():
            return "data has no variance"
        k = min(k, r)
        top = f"top {k} of {r} components explain {self.explained_variance_ratio[:k].sum():.0%}"
        if self.effective_rank >= _FLAT * r:
            return f"data spectrum nearly flat ({top})"
        return f"data compressible ({self.rank_for(0.9)} of {r} components explain 90%; {top})"

    def summary(self, ranks: Sequence[int] = (1,)) -> str:
        """``"best constant: 2.66, best rank-1 code: 2.27, ..., data spectrum nearly flat
        (top 1 of 8 components explain 14%)"``."""
        ranks = [k for k in ranks if k > 0]
        parts = [f"best constant: {fmt(self.loss_at_rank[0])}"]
        parts += [f"best rank-{k} code: {fmt(self.at_rank(k))}" for k in ranks]
        parts.append(self.spectrum(max(ranks, default=1)))
        return ", ".join(parts)

    def __str__(self) -> str:
        return self.summary()


def linear_code(X: Any, loss: Loss, batch_size: int | None = None) -> LinearCode:
    """Best reconstruction loss of any rank-k affine code ``x -> mean + V_k V_k^T (x - mean)``.

    Parameters
    ----------
    X : array_like, shape (n, d)
        One sample per row. For the seed's layout (each column of an 8x8 matrix is a sample)
        pass ``data.transpose(0, 2, 1).reshape(-1, 8)`` with ``batch_size=8``.
    loss : SSE or MSE from ``nndoctor.nn``
    batch_size : int or None
        None: one batch of all rows; a number: the mean over consecutive batches of that many
        rows. The code is fitted on all rows at once.

    Returns
    -------
    LinearCode
    """
    if loss_kind(loss) != SQUARED:
        raise ValueError(
            "linear_code bounds squared-error reconstructions (SSE, MSE), "
            f"got {type(loss).__name__}"
        )
    X = as_float_array(X, "X", ndim=2)
    n, d = X.shape
    check_samples(n, 2, "linear_code")
    if d == 0:
        raise ValueError(f"X has shape {X.shape}: no features")
    mean = X.mean(axis=0)
    u = units(loss, n, d, batch_size)
    if d <= n:
        scatter = np.zeros((d, d))
        step = max(1, _CHUNK_ELEMENTS // d)
        for lo in range(0, n, step):
            Xc = X[lo : lo + step] - mean  # (chunk, d)
            scatter += Xc.T @ Xc
        eigvals, V = np.linalg.eigh(scatter)
        eigvals, V = eigvals[::-1], V[:, ::-1]
        scores_last = (X[u.last] - mean) @ V  # (rows of last batch, d)
    else:
        Xc = X - mean
        eigvals, U = np.linalg.eigh(Xc @ Xc.T)  # (n, n): the same non-zero eigenvalues
        eigvals, U = eigvals[::-1], U[:, ::-1]
        scores_last = U[u.last] * np.sqrt(np.clip(eigvals, 0.0, None))
        V = Xc.T @ U
        norms = np.linalg.norm(V, axis=0)
        V = V / np.where(norms > 0, norms, 1.0)
    eigvals = np.clip(eigvals, 0.0, None)  # rounding leaves tiny negatives
    max_rank = min(n - 1, d)

    def discarded(column_energy: np.ndarray) -> np.ndarray:
        # entry k: energy outside the top k directions, summed smallest first for accuracy
        tail = np.cumsum(column_energy[::-1])[::-1]
        return np.append(tail, 0.0)[: max_rank + 1]

    loss_at_rank = u.average(discarded(eigvals), discarded((scores_last**2).sum(axis=0)))
    total = eigvals.sum()
    ratio = eigvals[:max_rank] / total if total > 0 else np.zeros(max_rank)
    return LinearCode(
        loss_at_rank=np.asarray(loss_at_rank, dtype=np.float64),
        explained_variance_ratio=ratio,
        components=V[:, :max_rank].T.copy(),
        mean=mean,
        loss_name=type(loss).__name__,
        batch_size=batch_size,
    )
