"""The user's loss units: which loss, how it reduces a batch, and the mean over batches.

Every bound is first computed as per-row terms ``q_i`` (the squared error summed over a row's
columns, the BCE terms summed over a row's columns, or ``-log p(y_i)`` for CrossEntropy). The
loss of one batch ``B`` is then ``c * sum_B q_i``, divided by ``|B|`` for a "mean" reduction,
with ``c = 0.5`` for SSE and ``c = 1 / columns`` for a mean-reduced MSE or BCE (PyTorch averages
over elements). The reported bound is the mean of that over consecutive batches, exactly as the
engine's ``train`` reports ``History.loss`` with ``shuffle=False``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nndoctor._validate import as_float_array, batch_rows
from nndoctor.nn.losses import BCE, MSE, SSE, CrossEntropy, Loss

SQUARED = "squared"
BINARY = "binary"
CATEGORICAL = "categorical"


def loss_kind(loss: Any) -> str:
    """``"squared"``, ``"binary"`` or ``"categorical"`` for a loss object of ``nndoctor.nn``."""
    # SSE and MSE share one kind: their bounds differ only in the scale factor.
    for cls, kind in ((SSE, SQUARED), (MSE, SQUARED), (BCE, BINARY), (CrossEntropy, CATEGORICAL)):
        if isinstance(loss, cls):
            return kind
    if isinstance(loss, Loss):
        raise ValueError(
            f"bounds do not know the loss {type(loss).__name__}; "
            "supported: SSE, MSE, BCE, CrossEntropy from nndoctor.nn"
        )
    raise TypeError(
        "loss must be a loss object from nndoctor.nn (SSE(), MSE(), BCE(), CrossEntropy()), "
        f"got {type(loss).__name__}"
    )


@dataclass(frozen=True)
class Units:
    """How one loss object turns per-row terms into the mean batch loss.

    Attributes
    ----------
    n : int
        Number of rows.
    batch : int
        Rows per batch (``n`` for ``batch_size=None`` or one larger than ``n``).
    factor : float
        ``c`` above.
    per_row_mean : bool
        True for a "mean" reduction (divide each batch by its number of rows).
    """

    n: int
    batch: int
    factor: float
    per_row_mean: bool

    @property
    def n_batches(self) -> int:
        return -(-self.n // self.batch)

    @property
    def last(self) -> slice:
        """The rows of the last batch, the only one that may be shorter."""
        return slice((self.n_batches - 1) * self.batch, self.n)

    def average(self, total: Any, last: Any) -> Any:
        """Mean batch loss from the sum of ``q_i`` over all rows and over the last batch.

        Works elementwise, so ``total`` and ``last`` may be arrays (one entry per rank).
        """
        m = self.n_batches
        if not self.per_row_mean:
            return self.factor * total / m
        r = self.n - (m - 1) * self.batch
        return self.factor / m * ((total - last) / self.batch + last / r)

    def of_rows(self, q: np.ndarray) -> float:
        """Mean batch loss of per-row terms ``q`` (shape ``(n,)``); ``inf`` when a term
        overflowed (targets of scale 1e200 under a squared error)."""
        total = q.sum()
        if np.isinf(total):
            return float(total)  # inf - inf inside the average would say NaN
        return float(self.average(total, q[self.last].sum()))


def units(loss: Loss, n: int, width: int, batch_size: int | None) -> Units:
    """Units of ``loss`` for ``n`` rows of ``width`` outputs, in batches of ``batch_size``."""
    kind = loss_kind(loss)
    batch = batch_rows(batch_size, n)
    mean = loss.reduction == "mean"
    if isinstance(loss, SSE):
        factor = 0.5
    elif mean and kind != CATEGORICAL:
        factor = 1.0 / width
    else:
        factor = 1.0
    return Units(n=n, batch=batch, factor=factor, per_row_mean=mean)


def check_samples(n: int, needed: int, what: str) -> None:
    """Raise ``ValueError`` unless there are at least ``needed`` samples."""
    if n < needed:
        raise ValueError(f"{what} needs at least {needed} samples (rows), got {n}")


def targets(Y: Any, loss: Loss, name: str = "Y") -> np.ndarray:
    """Targets in the form each kind works with, validated.

    Squared and binary losses: float64 ``(n, q)`` (a vector ``(n,)`` is one column; BCE targets
    must lie in [0, 1]). CrossEntropy: integer labels ``(n,)``, non-negative.
    """
    kind = loss_kind(loss)
    if kind == CATEGORICAL:
        labels = loss.check_targets(Y, None, name)
        negative = np.flatnonzero(labels < 0)
        if negative.size:
            i = int(negative[0])
            raise ValueError(f"CrossEntropy labels must be >= 0; {name}[{i}] = {labels[i]:g}")
        return labels.astype(np.intp)
    T = as_float_array(Y, name, ndim=(1, 2))
    T = T.reshape(len(T), -1)
    if T.shape[1] == 0:
        raise ValueError(f"{name} has shape {T.shape}: no target columns")
    if kind == BINARY:
        outside = np.argwhere((T < 0) | (T > 1))
        if outside.size:
            pos = tuple(int(i) for i in outside[0])
            raise ValueError(f"BCE targets must lie in [0, 1]; {name}{list(pos)} = {T[pos]!r}")
    return T


def bce_terms(P: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per-row BCE terms summed over columns, with the engine's (and torch's) log clamp at -100."""
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(P), -100.0)
        log_q = np.maximum(np.log1p(-P), -100.0)
    return -(T * log_p + (1.0 - T) * log_q).sum(axis=1)
