"""What loss is achievable at all, so that a plateau can be judged.

All numbers are in the user's own loss units (SSE, MSE, BCE, CrossEntropy from ``nndoctor.nn``,
with their reductions), as the mean batch loss over consecutive batches of ``batch_size`` rows,
so they sit directly beside ``History.loss``. The mathematics is in ``docs/bounds.md``.

- :func:`constant_baseline`: the best input-independent prediction.
- :func:`linear_code`: the best rank-k affine code of the data, for every k (autoencoders).
- :func:`least_squares`: the best affine map from inputs to targets (regression, classifiers).
- :func:`predictability`: whether the targets can be predicted from the inputs at all.
- :func:`summarize`: the one-paragraph text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nndoctor.bounds._codes import LinearCode, linear_code
from nndoctor.bounds._fits import (
    ConstantBaseline,
    LinearFit,
    constant_baseline,
    least_squares,
    least_squares_flops,
)
from nndoctor.bounds._signal import Predictability, predictability, predictability_flops
from nndoctor.nn.losses import Loss

__all__ = [
    "ConstantBaseline",
    "LinearCode",
    "LinearFit",
    "Predictability",
    "constant_baseline",
    "least_squares",
    "least_squares_flops",
    "linear_code",
    "predictability",
    "predictability_flops",
    "summarize",
]


def summarize(
    X: Any,
    Y: Any = None,
    *,
    loss: Loss,
    batch_size: int | None = None,
    ranks: Sequence[int] = (1,),
    seed: int | np.random.Generator = 0,
) -> str:
    """One paragraph of bounds for ``X`` (an autoencoder, ``Y=None``) or for ``X -> Y``.

    Parameters
    ----------
    X : array_like, shape (n, p)
    Y : array_like, shape (n, q) or (n,), optional
        None: the targets are ``X`` itself; report the constant and rank-k code bounds.
        Otherwise report the constant, the best affine map and the predictability verdict.
    loss : SSE, MSE, BCE or CrossEntropy from ``nndoctor.nn``
    batch_size : int or None
    ranks : sequence of int
        Code ranks to quote (the bottleneck width of the autoencoder, say).
    seed : int or numpy.random.Generator
        For the predictability test.

    Returns
    -------
    str
        E.g. ``"best constant: 2.66, best rank-1 code: 2.27, best rank-3 code: 1.54, data
        spectrum nearly flat (top 3 of 8 components explain 41%)"``.
    """
    if Y is None:
        return linear_code(X, loss, batch_size).summary(ranks)
    constant = constant_baseline(Y, loss, batch_size)
    fit = least_squares(X, Y, loss, batch_size)
    verdict = predictability(X, Y, seed)
    return f"{constant}, {fit}; {verdict}"
