"""The best input-independent prediction and the best affine map, in the user's loss units."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nndoctor._numeric import CHUNK_ELEMENTS, column_stats, principal_directions, row_chunks
from nndoctor._progress import ProgressBar
from nndoctor._validate import as_float_array, as_rng, check_rows
from nndoctor.bounds._solvers import conjugate_gradients, lbfgs
from nndoctor.bounds._units import (
    BINARY,
    CATEGORICAL,
    SQUARED,
    bce_terms,
    check_samples,
    loss_kind,
    targets,
    units,
)
from nndoctor.nn.losses import Loss

# the exact logistic and softmax fits take at most this many unknowns, (classes - 1) *
# (inputs + 1) (beyond, the subsampled path, whose sample Hessian is factored)
MAX_NEWTON_PARAMETERS = 4000


def fmt(x: float) -> str:
    """Three significant digits: ``2.66``, ``1230``, ``0.00412``; exponents only outside
    [1e-3, 1e6) (``1.44e-12``)."""
    if x == 0 or 1e-3 <= abs(x) < 1e6:
        return np.format_float_positional(x, precision=3, unique=False, fractional=False, trim="-")
    return f"{x:.3g}"


@dataclass(frozen=True, eq=False)
class ConstantBaseline:
    """The best loss of a prediction that ignores the input.

    Attributes
    ----------
    loss : float
        Mean batch loss, in the units of the loss object.
    constant : ndarray, shape (width,)
        The prediction fed to the loss: the per-output mean (SSE, MSE), the positive rate
        (BCE), or the logits ``log(prior)`` (CrossEntropy; ``-inf`` for a class that never
        occurs).
    loss_name : str
    batch_size : int or None
    """

    loss: float
    constant: np.ndarray
    loss_name: str
    batch_size: int | None

    def __str__(self) -> str:
        return f"best constant: {fmt(self.loss)}"


@dataclass(frozen=True, eq=False)
class LinearFit:
    """The best affine map from inputs to the loss's input (training loss on all the data).

    Attributes
    ----------
    loss : float
        Mean batch loss of the fitted map, in the units of the loss object.
    weights : ndarray, shape (outputs, inputs)
        ``W`` as a ``Dense`` layer stores it.
    bias : ndarray, shape (outputs,)
        ``-inf`` for a CrossEntropy class that never occurs.
    loss_name : str
    batch_size : int or None
    converged : bool
        Closed form (squared error), or the predicted remaining decrease below tolerance.
    n_iter : int
        Iterations (L-BFGS and Newton steps for the exact logistic and softmax fits; 0 for the
        closed form).
    method : str
        ``"exact"`` (closed form; logistic and softmax fits on all rows to within ``EXACT_TOL``
        per row of the optimum by Newton steps), ``"normal equations"`` (squared error
        on many rows: ``X^T X`` accumulated in chunks; exact up to rounding),
        ``"subsampled Newton"`` (logistic and softmax fits on many rows: gradients and losses
        from every row, the curvature from a seeded sample of ``rows_used`` rows) or
        ``"subsampled Newton, top-k components"`` (inputs reduced to their top ``components``
        principal directions first, when the full Hessian is too large to factor).
    approximate : bool
        True when ``loss`` may be above the exact optimum by more than rounding. ``loss`` is
        always the loss of the returned map on every row, so it is never below the optimum:
        an upper bound.
    error_bar : float
        Estimated distance of ``loss`` above the exact optimum, in loss units: half the last
        Newton decrement, or the loss itself when that is smaller (separable classes: the
        optimum is 0); 0 for squared error. For the exact logistic and softmax fits it is at
        most ``EXACT_TOL`` per row. It does not cover the restriction to principal components
        (``components`` set): that loss is an upper bound only.
    rows_used : int
        Rows that set the curvature (all rows for exact fits).
    components : int or None
        Input directions used, when the inputs were reduced.
    """

    loss: float
    weights: np.ndarray
    bias: np.ndarray
    loss_name: str
    batch_size: int | None
    converged: bool
    n_iter: int
    method: str = "exact"
    approximate: bool = False
    error_bar: float = 0.0
    rows_used: int = 0
    components: int | None = None

    def predict(self, X: Any) -> np.ndarray:
        """The map's output ``(n, outputs)``: values (SSE, MSE), probabilities (BCE), logits."""
        X = as_float_array(X, "X", ndim=(1, 2))
        z = X.reshape(len(X), -1) @ self.weights.T + self.bias
        return _sigmoid(z) if self.loss_name == "BCE" else z

    def __str__(self) -> str:
        note = "" if self.converged else " (fit not converged: an upper bound)"
        if self.components is not None:
            note += (
                f" (through the top {self.components} principal components of the inputs: "
                "an upper bound)"
            )
        elif self.approximate:
            note += f" (± {fmt(self.error_bar)}, curvature from {self.rows_used} sampled rows)"
        return f"best affine map: {fmt(self.loss)}{note}"


def constant_baseline(Y: Any, loss: Loss, batch_size: int | None = None) -> ConstantBaseline:
    """Best loss of an input-independent prediction, in ``loss``'s units.

    Parameters
    ----------
    Y : array_like, shape (n, q) or (n,)
        Targets; integer class labels ``(n,)`` for CrossEntropy.
    loss : SSE, MSE, BCE or CrossEntropy from ``nndoctor.nn``
    batch_size : int or None
        None: one batch of all rows. A number: the mean over consecutive batches of that many
        rows, as ``train`` reports ``History.loss`` with ``shuffle=False``.

    Returns
    -------
    ConstantBaseline
    """
    kind = loss_kind(loss)
    T = targets(Y, loss)
    check_samples(len(T), 1, "constant_baseline")
    if kind == CATEGORICAL:
        prior = np.bincount(T) / len(T)
        with np.errstate(divide="ignore"):
            constant = np.log(prior)
        q = -constant[T]
        width = len(prior)
    else:
        constant = T.mean(axis=0)
        P = np.broadcast_to(constant, T.shape)
        # targets of scale 1e200 have squared errors beyond float64: inf is the honest loss
        with np.errstate(over="ignore", invalid="ignore"):
            q = ((T - P) ** 2).sum(axis=1) if kind == SQUARED else bce_terms(P, T)
        width = T.shape[1]
    u = units(loss, len(T), width, batch_size)
    with np.errstate(over="ignore", invalid="ignore"):
        value = u.of_rows(q)
    return ConstantBaseline(value, constant, type(loss).__name__, batch_size)


def least_squares(
    X: Any,
    Y: Any,
    loss: Loss,
    batch_size: int | None = None,
    *,
    seed: int | np.random.Generator = 0,
    progress: bool | None = None,
) -> LinearFit:
    """Training loss of the best affine map ``X @ W.T + b`` from inputs to the loss's input.

    Squared error (SSE, MSE): the closed-form least-squares fit. BCE: a logistic regression per
    output column; CrossEntropy: a softmax regression. Both are convex and fitted to within
    ``EXACT_TOL`` per row of the optimum (the infimum 0, approached as weights grow, when
    classes are separable) by damped Newton steps: with the dense Hessian for problems of at
    most ``DENSE_UNKNOWNS`` unknowns, beyond from an L-BFGS start and on Hessian-vector
    products.

    Parameters
    ----------
    X : array_like, shape (n, p) or (n,)
    Y : array_like, shape (n, q) or (n,)
        Targets; integer labels ``(n,)`` for CrossEntropy, values in [0, 1] for BCE.
    loss : SSE, MSE, BCE or CrossEntropy from ``nndoctor.nn``
    batch_size : int or None
        As in :func:`constant_baseline`. The map is fitted on all rows at once.
    seed : int or numpy.random.Generator
        Picks the rows whose curvature the large-data fits use (see ``LinearFit.method``).
    progress : bool or None
        A bar on stderr for the passes of the large-data fits; None: only on a terminal, for
        fits longer than about a second.

    Small problems are fitted exactly. Beyond ``EXACT_ELEMENTS`` (squared error) or
    ``EXACT_WORK`` (logistic and softmax), the fit streams over the rows in chunks and never
    copies ``X``: squared error by the normal equations (exact up to rounding), BCE and
    CrossEntropy by subsampled Newton (``approximate=True``, with ``error_bar``); see
    :class:`LinearFit`.

    Returns
    -------
    LinearFit
    """
    kind = loss_kind(loss)
    X = as_float_array(X, "X", ndim=(1, 2))
    X = X.reshape(len(X), -1)
    T = targets(Y, loss)
    check_rows(X, T)
    check_samples(len(X), 1, "least_squares")
    n, p = X.shape
    # targets of scale 1e200 have squared errors beyond float64: inf is the honest loss
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        if kind == SQUARED:
            width = T.shape[1]
            exact = n * p <= EXACT_ELEMENTS
            fit = _squared_exact(X, T) if exact else _squared_chunked(X, T)
        elif kind == BINARY:
            width = T.shape[1]
            fit = _binary(X, T, seed, progress)
        else:
            width = int(T.max()) + 1
            fit = _categorical(X, T, width, seed, progress)
        u = units(loss, n, width, batch_size)
        error_bar = fit.gap * u.average(float(n), float(len(range(n)[u.last]))) / n
        return LinearFit(
            u.of_rows(fit.q),
            fit.W,
            fit.b,
            type(loss).__name__,
            batch_size,
            fit.converged,
            fit.n_iter,
            method=fit.method,
            approximate=fit.method != "exact" and fit.method != "normal equations",
            error_bar=float(error_bar),
            rows_used=fit.rows_used or n,
            components=fit.components,
        )


# Exact fits when the work is small: lstsq on at most this many elements of X ...
EXACT_ELEMENTS = 1 << 22
# ... Newton on all rows when rows x parameters^2 (one Hessian) stays below this (the
# largest held-out case: 2.7e8, the largest catalog scenario: 3.5e6)
EXACT_WORK = 1e9
# subsampled Newton: the sample's Hessian costs about this (rows x parameters^2) ...
HESSIAN_WORK = 4e9
# ... and its parameters stay below this (inputs reduced to principal components beyond)
MAX_SAMPLED_PARAMETERS = 1000
# ... from at most this many rows (their features are held in memory)
SAMPLE_ROWS = 50000
# rows whose covariance gives the principal components
PCA_ROWS = 5000
# passes over all rows the subsampled Newton may take, after L-BFGS on the sample alone (to
# a gradient below SAMPLE_GTOL per row, at most SAMPLE_ITER iterations)
MAX_PASSES = 15
SAMPLE_GTOL = 1e-4
SAMPLE_ITER = 300
# ... and it stops when the predicted remaining decrease is below this share of the loss
GAP_TOL = 1e-4
# the exact logistic and softmax fits: L-BFGS until every gradient component is below
# LBFGS_GTOL per row, for at most LBFGS_WORK / (rows x unknowns) iterations (within
# [LBFGS_MIN_ITER, LBFGS_MAX_ITER]) ...
LBFGS_GTOL = 1e-11
LBFGS_WORK = 2e9
LBFGS_MIN_ITER = 200
LBFGS_MAX_ITER = 5000
# ... then at most NEWTON_STEPS Newton steps (conjugate gradients to CG_RTOL of the
# gradient, at most CG_MAX_ITER products) until the predicted remaining decrease is below
# EXACT_TOL per row. Problems of at most DENSE_UNKNOWNS unknowns take dense Newton steps
# from zero instead.
NEWTON_STEPS = 50
DENSE_UNKNOWNS = 200
CG_RTOL = 1e-4
CG_MAX_ITER = 200
EXACT_TOL = 1e-10
# for least_squares_flops: Newton steps of a dense exact fit, function evaluations of the
# others (L-BFGS iterations and Hessian-vector products), and of the large path's L-BFGS on
# the sample, Hessians, passes
TYPICAL_NEWTON_STEPS = 25
TYPICAL_EVALUATIONS = 300
TYPICAL_SAMPLE_EVALUATIONS = 50
TYPICAL_HESSIANS = 2
TYPICAL_PASSES = 5


@dataclass
class _Fit:
    """A fitted map in the user's input units and its per-row loss terms."""

    W: np.ndarray
    b: np.ndarray
    q: np.ndarray
    converged: bool = True
    n_iter: int = 0
    method: str = "exact"
    gap: float = 0.0  # estimated excess of sum(q) over the optimum
    rows_used: int = 0
    components: int | None = None


def _standardiser(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd, _ = column_stats(X)
    # Standardised inputs keep Newton's damping term scale-free; constant columns stay as is.
    sd = sd.copy()
    sd[sd == 0] = 1.0
    return mu, sd


def _squared_exact(X: np.ndarray, T: np.ndarray) -> _Fit:
    mu, sd = _standardiser(X)
    Xs = (X - mu) / sd
    t_mean = T.mean(axis=0)
    coef = np.linalg.lstsq(Xs, T - t_mean, rcond=None)[0]  # (p, q)
    q = ((Xs @ coef + t_mean - T) ** 2).sum(axis=1)
    W = coef.T / sd
    return _Fit(W, t_mean - W @ mu, q)


def _squared_chunked(X: np.ndarray, T: np.ndarray) -> _Fit:
    """Least squares from ``X^T X`` and ``X^T T`` accumulated over chunks of rows: one
    ``(chunk, p)`` temporary at a time, never a copy of ``X``."""
    n, p = X.shape
    mu, sd = _standardiser(X)
    t_mean = column_stats(T)[0]
    G = np.zeros((p, p))
    B = np.zeros((p, T.shape[1]))
    step = row_chunks(n, p).step
    for lo in range(0, n, step):
        Xc = X[lo : lo + step] - mu
        Xc /= sd
        G += Xc.T @ Xc
        B += Xc.T @ (T[lo : lo + len(Xc)] - t_mean)
        del Xc  # freed before the next chunk's is made
    w, V = np.linalg.eigh(G)
    # a pseudo-inverse: directions whose eigenvalue is at the rounding level of G (collinear
    # columns) are dropped; the loss is computed from the residuals, so it stays honest
    keep = w > np.finfo(np.float64).eps * max(n, p) * max(float(w.max(initial=0.0)), 0.0)
    Vk = V[:, keep]
    coef = Vk @ ((Vk.T @ B) / w[keep][:, None])  # (p, q)
    q = np.empty(n)
    for lo in range(0, n, step):
        Xc = X[lo : lo + step] - mu
        Xc /= sd
        q[lo : lo + len(Xc)] = ((Xc @ coef + t_mean - T[lo : lo + len(Xc)]) ** 2).sum(axis=1)
        del Xc
    W = coef.T / sd
    return _Fit(W, t_mean - W @ mu, q, method="normal equations")


def _exact_path(n: int, p: int, unknowns: int) -> bool:
    """Whether a logistic or softmax fit of ``unknowns`` parameters on ``n`` rows of ``p``
    inputs is fitted exactly on all rows (else by subsampled Newton, streaming over them)."""
    return (
        unknowns <= MAX_NEWTON_PARAMETERS
        and n * (p + 1) <= EXACT_ELEMENTS
        and n * unknowns**2 <= EXACT_WORK
    )


def least_squares_flops(n: int, p: int, width: int, loss: Loss) -> float:
    """About how many floating-point operations :func:`least_squares` takes on ``n`` rows of
    ``p`` inputs and ``width`` outputs (classes for CrossEntropy): for a caller that budgets
    its checks. Counted from the path the fit takes and the typical number of iterations of
    each (``TYPICAL_EVALUATIONS`` and the like); right within a factor of about 2."""
    kind = loss_kind(loss)
    if kind == SQUARED:
        return 4.0 * n * p * (p + width)  # lstsq, or the normal equations
    columns, free = (width, 1) if kind == BINARY else (1, max(width - 1, 1))
    D = free * (p + 1)
    if _exact_path(n, p, D):
        if D <= DENSE_UNKNOWNS:  # Newton steps, each a dense Hessian built and factored
            return columns * TYPICAL_NEWTON_STEPS * (4.0 * n * D * D + D**3)
        return columns * TYPICAL_EVALUATIONS * 4.0 * n * D
    flops, r = 0.0, p
    if D > MAX_SAMPLED_PARAMETERS:
        r = max(1, MAX_SAMPLED_PARAMETERS // free - 1)
        rows = min(n, PCA_ROWS)
        flops += 2.0 * rows * p * min(rows, p) + 10.0 * min(rows, p) ** 3
        D = free * (r + 1)
    m = min(n, SAMPLE_ROWS, max(4 * D, HESSIAN_WORK // D**2))
    flops += TYPICAL_SAMPLE_EVALUATIONS * 4.0 * m * D  # L-BFGS on the sample
    flops += TYPICAL_HESSIANS * (2.0 * m * D**2 + D**3)  # built and factored
    flops += TYPICAL_PASSES * 4.0 * n * p * free  # loss and gradient on all rows
    return columns * flops


def _binary(
    X: np.ndarray, T: np.ndarray, seed: int | np.random.Generator, progress: bool | None
) -> _Fit:
    n, p = X.shape
    cols = T.shape[1]
    if _exact_path(n, p, p + 1):
        mu, sd = _standardiser(X)
        Xs = (X - mu) / sd
        theta, q, converged, n_iter, gap = _logistic_regressions(Xs, T)
        W = theta[:, :-1] / sd
        return _Fit(W, theta[:, -1] - W @ mu, q, converged, n_iter, gap=gap)
    fits = [
        _large_softmax(
            X,
            lambda lo, hi, j=j: np.column_stack([T[lo:hi, j], 1.0 - T[lo:hi, j]]),
            2,
            seed,
            progress,
        )
        for j in range(cols)
    ]
    W = np.concatenate([f.W for f in fits])
    b = np.concatenate([f.b for f in fits])
    return replace(
        fits[0],
        W=W,
        b=b,
        q=np.sum([f.q for f in fits], axis=0),
        converged=all(f.converged for f in fits),
        n_iter=max(f.n_iter for f in fits),
        gap=float(sum(f.gap for f in fits)),
    )


def _categorical(
    X: np.ndarray,
    T: np.ndarray,
    width: int,
    seed: int | np.random.Generator,
    progress: bool | None,
) -> _Fit:
    n, p = X.shape
    present = np.flatnonzero(np.bincount(T, minlength=width))
    K = len(present)
    D = (K - 1) * (p + 1)
    W, b = np.zeros((width, p)), np.full(width, -np.inf)
    if _exact_path(n, p, D):
        mu, sd = _standardiser(X)
        Xs = (X - mu) / sd
        onehot = (T[:, None] == present[None, :]).astype(np.float64)
        theta, q, converged, n_iter, gap = _softmax_regression(Xs, onehot)
        Ws = theta[:, :-1] / sd
        W[present[:-1]], b[present[:-1]] = Ws, theta[:, -1] - Ws @ mu
        b[present[-1]] = 0.0
        return _Fit(W, b, q, converged, n_iter, gap=gap)
    code = np.full(width, -1)
    code[present] = np.arange(K)
    labels = code[T]

    def chunk_targets(lo: int, hi: int) -> np.ndarray:
        return labels[lo:hi]  # class indices 0..K-1

    fit = _large_softmax(X, chunk_targets, K, seed, progress)
    W[present[:-1]], b[present[:-1]] = fit.W, fit.b
    b[present[-1]] = 0.0
    return replace(fit, W=W, b=b)


def _large_softmax(
    X: np.ndarray,
    chunk_targets: Callable[[int, int], np.ndarray],
    K: int,
    seed: int | np.random.Generator,
    progress: bool | None = None,
) -> _Fit:
    """Softmax regression (the last class at logit 0) on many rows by subsampled Newton.

    Every pass over the data computes the exact loss and gradient over all rows, in chunks;
    the Hessian comes from a seeded sample of rows at the current weights. The loss returned
    is that of the final map on every row (an upper bound of the optimum); ``gap`` is half the
    last Newton decrement, the predicted remaining decrease. When ``(K - 1) (p + 1)`` exceeds
    ``MAX_SAMPLED_PARAMETERS`` the inputs are first reduced to their top principal
    components (from a sample of rows), which makes the fit an upper bound only.
    Returns ``W`` ``(K - 1, p)`` and ``b`` ``(K - 1,)`` in the user's input units.
    """
    rng = as_rng(seed)
    n, p = X.shape
    mu, sd = _standardiser(X)
    proj = None
    r = p
    if (K - 1) * (p + 1) > MAX_SAMPLED_PARAMETERS:
        r = max(1, MAX_SAMPLED_PARAMETERS // (K - 1) - 1)
        rows = np.sort(rng.choice(n, min(n, PCA_ROWS), replace=False))
        proj = principal_directions((X[rows] - mu) / sd, r)  # (p, r), top directions first
    D = (K - 1) * (r + 1)
    m = int(min(n, SAMPLE_ROWS, max(4 * D, HESSIAN_WORK // D**2)))
    sample = np.sort(rng.choice(n, m, replace=False))
    step = max(1, CHUNK_ELEMENTS // p)
    # the sample's features (standardised, projected, a 1 for the bias): only these are
    # materialised; passes over all rows fold the standardisation into the weights instead
    Z_s = (X[sample] - mu) / sd
    if proj is not None:
        Z_s = Z_s @ proj
    A_s = np.column_stack([Z_s, np.ones(m)])  # (m, r + 1)
    T_s = _gather_targets(chunk_targets, sample)

    def probabilities(L: np.ndarray, Tc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-row terms and class probabilities from the free logits ``L`` ``(rows, K-1)``;
        ``Tc`` is ``(rows, K)`` soft targets or ``(rows,)`` class indices."""
        Z = np.column_stack([L, np.zeros(len(L))])  # (rows, K), the last class at 0
        top = Z.max(axis=1, keepdims=True)
        E = np.exp(Z - top)
        total = E.sum(axis=1, keepdims=True)
        lse = (top + np.log(total))[:, 0]
        picked = Z[np.arange(len(Z)), Tc] if Tc.ndim == 1 else (Tc * Z).sum(axis=1)
        return lse - picked, E / total

    def residuals(P: np.ndarray, Tc: np.ndarray) -> np.ndarray:
        """Probabilities minus targets of the free classes, ``(rows, K - 1)``."""
        if Tc.ndim == 2:
            return P[:, :-1] - Tc[:, :-1]
        R = P[:, :-1].copy()
        free = np.flatnonzero(Tc < K - 1)
        R[free, Tc[free]] -= 1.0
        return R

    def in_x_units(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Theta = theta.reshape(K - 1, r + 1)
        Ws = Theta[:, :-1] if proj is None else Theta[:, :-1] @ proj.T  # (K - 1, p)
        W = Ws / sd
        return W, Theta[:, -1] - W @ mu

    def full_pass(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        W, b = in_x_units(theta)
        q = np.empty(n)
        RX = np.zeros((K - 1, p))  # residuals times raw inputs
        Rsum = np.zeros(K - 1)
        for lo in range(0, n, step):
            Xc = X[lo : lo + step]
            Tc = chunk_targets(lo, lo + len(Xc))
            qc, P = probabilities(Xc @ W.T + b, Tc)
            q[lo : lo + len(Xc)] = qc
            R = residuals(P, Tc)
            RX += R.T @ Xc
            Rsum += R.sum(axis=0)
        G = (RX - Rsum[:, None] * mu) / sd  # gradient in standardised inputs
        if proj is not None:
            G = G @ proj
        return float(q.sum()), np.column_stack([G, Rsum]).ravel(), q

    def hessian(theta: np.ndarray) -> np.ndarray:
        L = A_s @ theta.reshape(K - 1, r + 1).T
        P = probabilities(L, T_s)[1][:, :-1]  # (m, K - 1)
        H = np.zeros((K - 1, r + 1, K - 1, r + 1))
        for a in range(K - 1):
            H[a, :, a, :] = A_s.T @ (A_s * P[:, a : a + 1])
        B = (P[:, :, None] * A_s[:, None, :]).reshape(m, D)
        H -= (B.T @ B).reshape(H.shape)
        return H.reshape(D, D) * (n / m)

    def sample_value_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The sample's mean loss and its gradient."""
        q_s, P = probabilities(A_s @ theta.reshape(K - 1, r + 1).T, T_s)
        return float(q_s.sum()) / m, (residuals(P, T_s).T @ A_s).ravel() / m

    # start from the sample's own optimum (no pass over all rows), unless it is worse on all
    # rows than all-zero weights (the uniform prediction, n log K): a sample that happens to be
    # separable sends its weights off to infinity
    theta = np.zeros(D)
    # the loss of all-zero weights is log K for every row (targets sum to 1): no pass needed
    f = n * math.log(K)
    start = np.zeros(D)
    if m < n:
        # the sample's optimum is only as good as the sample: solve it loosely, by L-BFGS (no
        # Hessian)
        start = lbfgs(sample_value_and_gradient, start, SAMPLE_GTOL, SAMPLE_ITER)[0]
    f_start, g, q = full_pass(start)
    if f_start < f or m == n:
        theta, f = start, f_start
    else:
        f, g, q = full_pass(theta)
    converged, it, gap = False, 0, math.inf
    # one Hessian for all passes: near the optimum it changes little, and each pass over all
    # rows then costs two products with X; it is recomputed when a full step is refused
    H, fresh = None, False
    # passes over all rows take seconds at a million rows: a bar on a terminal (None: only
    # when the fit takes longer than about a second)
    bar = ProgressBar(MAX_PASSES, "affine bound (passes over the rows)", enabled=progress)
    for it in range(1, MAX_PASSES + 1):
        bar.update(it - 1)
        if H is None:
            H = hessian(theta)
            H = H + 1e-10 * max(np.trace(H) / D, 1e-12) * np.eye(D)
            fresh = True
        direction = np.linalg.solve(H, g)
        decrement = float(g @ direction)
        gap = max(decrement / 2, 0.0)
        if gap <= max(1e-12 * n, GAP_TOL * abs(f)):
            converged = True
            break
        t = 1.0
        while t > 1e-4:
            candidate = theta - t * direction
            f_new, g_new, q_new = full_pass(candidate)
            if f_new <= f - 0.25 * t * decrement:
                break
            t *= 0.5
        else:
            if fresh:
                break
            H = None  # the old curvature misled the step: measure it again here
            continue
        if t < 1.0:
            H = None
        fresh = False
        theta, f, g, q = candidate, f_new, g_new, q_new
    bar.close()
    W, b = in_x_units(theta)
    method = "subsampled Newton" if proj is None else "subsampled Newton, top-k components"
    return _Fit(
        W,
        b,
        q,
        converged,
        it,
        method,
        gap if math.isfinite(gap) else 0.0,
        m,
        None if proj is None else r,
    )


def _gather_targets(
    chunk_targets: Callable[[int, int], np.ndarray], rows: np.ndarray
) -> np.ndarray:
    """Targets of the given sorted rows, read chunk by chunk."""
    out = []
    for lo in range(0, int(rows[-1]) + 1, 1 << 16):
        hi = lo + (1 << 16)
        inside = rows[(rows >= lo) & (rows < hi)]
        if inside.size:
            out.append(chunk_targets(lo, min(hi, int(rows[-1]) + 1))[inside - lo])
    return np.concatenate(out)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def _softmax_regression(
    Xs: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, bool, int, float]:
    """Minimise sum_i [logsumexp(z_i) - T_i . z_i] over affine logits, the last class at 0.

    ``T`` is ``(n, K)`` with rows summing to 1 (one-hot or soft); fitted by
    :func:`_fit_logits`. Returns ``theta`` of shape ``(K - 1, p + 1)`` (bias last), the per-row
    terms ``(n,)``, converged, iterations and the predicted remaining decrease (summed over
    rows).
    """
    n, p = Xs.shape
    if T.shape[1] == 1:  # one class only: predicting it with certainty costs nothing
        return np.zeros((0, p + 1)), np.zeros(n), True, 0, 0.0

    def rows(L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-row terms ``(n, 1)`` and the free classes' probabilities ``(n, K - 1)`` from
        their logits ``L`` (the last class's logit is 0)."""
        top = np.maximum(L.max(axis=1), 0.0)
        E = np.exp(L - top[:, None])
        total = E.sum(axis=1) + np.exp(-top)  # the last class's term
        lse = top + np.log(total)
        return (lse - (T[:, :-1] * L).sum(axis=1))[:, None], E / total[:, None]

    def curvature(P: np.ndarray, L: np.ndarray) -> np.ndarray:
        M = P * L
        M -= P * M.sum(axis=1, keepdims=True)  # (diag(P_i) - P_i P_i^T) L_i per row
        return M

    return _fit_logits(Xs, T[:, :-1], rows, curvature, independent=False)


def _logistic_regressions(
    Xs: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, bool, int, float]:
    """One logistic regression per column of soft targets ``T`` ``(n, q)`` in ``[0, 1]``, all
    fitted at once: minimise sum_ij [log(1 + e^z_ij) - T_ij z_ij] (BCE) over affine ``z``.

    The columns are independent problems; one fit of their sum takes one product with the
    inputs per iteration for all of them. Returns as :func:`_softmax_regression`, ``theta``
    ``(q, p + 1)``.
    """

    def rows(L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.logaddexp(0.0, L) - T * L, _sigmoid(L)  # (n, q) each

    def curvature(P: np.ndarray, L: np.ndarray) -> np.ndarray:
        return P * (1.0 - P) * L

    return _fit_logits(Xs, T, rows, curvature, independent=True)


def _fit_logits(
    Xs: np.ndarray,
    R: np.ndarray,
    rows: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    curvature: Callable[[np.ndarray, np.ndarray], np.ndarray],
    independent: bool,
) -> tuple[np.ndarray, np.ndarray, bool, int, float]:
    """Minimise the sum of ``rows(L)[0]`` over affine logits ``L = A Theta^T`` (``A``: ``Xs``
    and a column of ones), for a loss whose gradient in ``L`` is ``P - R``, ``P = rows(L)[1]``,
    and whose Hessian times a logit direction ``V`` is ``curvature(P, V)``. ``rows(L)[0]`` is
    ``(n, 1)`` for one problem (softmax) or, ``independent``, ``(n, free)`` for ``free``
    independent problems, one per column of logits (logistic regressions): each is then judged
    converged on its own.

    Damped Newton steps until the predicted remaining decrease ``min(decrement / 2, loss)``
    (summed over the problems) is at most ``EXACT_TOL`` per row: half the Newton decrement
    near an optimum, the loss itself on separable classes (whose infimum 0 is approached as the
    weights grow). A problem of at most ``DENSE_UNKNOWNS`` unknowns starts from zero and solves
    with its dense Hessian; a larger one starts from L-BFGS (one pass over the rows per
    iteration) and takes its Newton directions from conjugate gradients on Hessian-vector
    products. Returns ``Theta`` ``(free, p + 1)`` (bias last), the per-row terms ``(n,)``,
    converged, iterations (L-BFGS and Newton) and that predicted remaining decrease.
    """
    n, p = Xs.shape
    free = R.shape[1]
    A = np.column_stack([Xs, np.ones(n)])  # (n, p + 1)
    D = free * (p + 1)

    def terms(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rows(A @ theta.reshape(free, p + 1).T)

    def value_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        q, P = terms(theta)
        return float(q.sum()) / n, ((P - R).T @ A).ravel() / n

    start, lbfgs_iter = np.zeros(D), 0
    dense = (p + 1 if independent else D) <= DENSE_UNKNOWNS
    if not dense:
        # per-row units keep L-BFGS's tolerances independent of n
        budget = int(np.clip(LBFGS_WORK / (n * D), LBFGS_MIN_ITER, LBFGS_MAX_ITER))
        start, lbfgs_iter = lbfgs(value_and_gradient, start, LBFGS_GTOL, budget)
    theta, converged, it, gap = _newton(terms, curvature, A, R, start, dense, independent)
    return theta.reshape(free, p + 1), terms(theta)[0].sum(axis=1), converged, lbfgs_iter + it, gap


def _newton(
    terms: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    curvature: Callable[[np.ndarray, np.ndarray], np.ndarray],
    A: np.ndarray,
    R: np.ndarray,
    theta: np.ndarray,
    dense: bool,
    independent: bool,
) -> tuple[np.ndarray, bool, int, float]:
    """Damped Newton steps from ``theta`` for the fit of :func:`_fit_logits`, until the
    predicted remaining decrease, summed over its independent problems of
    ``min(decrement / 2, loss)``, is at most ``EXACT_TOL * n``.

    The direction solves ``H d = g``: with the dense Hessian (``dense``; built from ``p + 1``
    Hessian-vector products for independent problems, ``D`` for one, and a tiny Levenberg term
    ``1e-10 * trace(H) / dim`` that keeps it defined where ``H`` is singular), or by conjugate
    gradients on Hessian-vector products (two products with ``A`` each). Backtracking with
    Armijo constant 1/4. Returns ``theta``, converged, steps taken and the last predicted
    remaining decrease.
    """
    n, width = A.shape
    free = R.shape[1]
    q, P = terms(theta)
    f = float(q.sum())
    gap = math.inf
    for it in range(NEWTON_STEPS + 1):
        losses = q.sum(axis=0)  # per problem
        if losses.sum() <= EXACT_TOL * n:  # separable classes: no curvature needed to say so
            return theta, True, it, float(losses.sum())
        g = ((P - R).T @ A).ravel()

        def hessian_times(v: np.ndarray, P: np.ndarray = P) -> np.ndarray:
            return (curvature(P, A @ v.reshape(free, width).T).T @ A).ravel()

        if dense:
            direction = _dense_direction(hessian_times, g, free, width, independent)
        else:
            direction = conjugate_gradients(hessian_times, g, CG_RTOL, CG_MAX_ITER)
        decrement = max(float(g @ direction), 0.0)
        # per problem (the Hessian is block diagonal across independent ones); the loss is at
        # least 0, so it bounds the remaining decrease on separable classes
        per_problem = (g * direction).reshape(free, width).sum(axis=1)
        if not independent:
            per_problem = per_problem.sum(keepdims=True)
        gap = float(np.minimum(np.maximum(per_problem, 0.0) / 2, losses).sum())
        if gap <= EXACT_TOL * n:
            # this close to the optimum a full step squares the remaining error (and takes the
            # gradient from the rounding level of the loss to that of the gradient); far out on
            # separable classes, where H is nearly singular, it can overshoot: kept only when
            # it does not raise the loss
            last = theta - direction
            return (last if float(terms(last)[0].sum()) <= f else theta), True, it + 1, gap
        if it == NEWTON_STEPS:
            break
        t = 1.0
        while t > 1e-10:
            candidate = theta - t * direction
            q_new, P_new = terms(candidate)
            f_new = float(q_new.sum())
            if f_new <= f - 0.25 * t * decrement:
                break
            t *= 0.5
        else:
            break
        theta, f, q, P = candidate, f_new, q_new, P_new
    return theta, False, it, gap


def _dense_direction(
    hessian_times: Callable[[np.ndarray], np.ndarray],
    g: np.ndarray,
    free: int,
    width: int,
    independent: bool,
) -> np.ndarray:
    """``H^-1 g`` with ``H`` built column by column from ``hessian_times``: one product per
    unknown of one problem, or ``width`` products for ``free`` independent problems of
    ``width`` unknowns each (a product with the same basis vector in every block gives every
    block's column at once)."""
    if independent:
        E = np.zeros((free, width))
        H = np.empty((free, width, width))
        for k in range(width):
            E[:, k] = 1.0
            H[:, :, k] = hessian_times(E.ravel()).reshape(free, width)
            E[:, k] = 0.0
        G = g.reshape(free, width, 1)
    else:
        D = free * width
        H = np.stack([hessian_times(e) for e in np.eye(D)], axis=1)[None]  # (1, D, D)
        G = g.reshape(1, D, 1)
    H = 0.5 * (H + H.transpose(0, 2, 1))  # symmetric to rounding
    trace = np.trace(H, axis1=1, axis2=2) / H.shape[1]
    H += (1e-10 * np.maximum(trace, 1e-12))[:, None, None] * np.eye(H.shape[1])
    return np.linalg.solve(H, G)[..., 0].ravel()
