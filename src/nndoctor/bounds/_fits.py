"""The best input-independent prediction and the best affine map, in the user's loss units."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndoctor._validate import as_float_array, check_rows
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

# Newton's Hessian has (classes - 1) * (inputs + 1) rows; beyond this it is too big to factor.
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
        Closed form (squared error) or Newton's decrement below tolerance.
    n_iter : int
        Newton iterations (0 for the closed form).
    """

    loss: float
    weights: np.ndarray
    bias: np.ndarray
    loss_name: str
    batch_size: int | None
    converged: bool
    n_iter: int

    def predict(self, X: Any) -> np.ndarray:
        """The map's output ``(n, outputs)``: values (SSE, MSE), probabilities (BCE), logits."""
        X = as_float_array(X, "X", ndim=(1, 2))
        z = X.reshape(len(X), -1) @ self.weights.T + self.bias
        return _sigmoid(z) if self.loss_name == "BCE" else z

    def __str__(self) -> str:
        note = "" if self.converged else " (fit not converged: an upper bound)"
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
        q = ((T - P) ** 2).sum(axis=1) if kind == SQUARED else bce_terms(P, T)
        width = T.shape[1]
    u = units(loss, len(T), width, batch_size)
    return ConstantBaseline(u.of_rows(q), constant, type(loss).__name__, batch_size)


def least_squares(X: Any, Y: Any, loss: Loss, batch_size: int | None = None) -> LinearFit:
    """Training loss of the best affine map ``X @ W.T + b`` from inputs to the loss's input.

    Squared error (SSE, MSE): the closed-form least-squares fit. BCE: a logistic regression per
    output column; CrossEntropy: a softmax regression. Both are convex and fitted by damped
    Newton iterations to convergence (the infimum, approached as weights grow, when classes are
    separable).

    Parameters
    ----------
    X : array_like, shape (n, p) or (n,)
    Y : array_like, shape (n, q) or (n,)
        Targets; integer labels ``(n,)`` for CrossEntropy, values in [0, 1] for BCE.
    loss : SSE, MSE, BCE or CrossEntropy from ``nndoctor.nn``
    batch_size : int or None
        As in :func:`constant_baseline`. The map is fitted on all rows at once.

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
    mu = X.mean(axis=0)
    sd = X.std(axis=0)
    # Standardised inputs keep Newton's damping term scale-free; constant columns stay as is.
    sd[sd == 0] = 1.0
    Xs = (X - mu) / sd
    n_iter, converged = 0, True
    if kind == SQUARED:
        t_mean = T.mean(axis=0)
        coef = np.linalg.lstsq(Xs, T - t_mean, rcond=None)[0]  # (p, q)
        Ws, bs = coef.T, t_mean
        q = ((Xs @ coef + t_mean - T) ** 2).sum(axis=1)
        width = T.shape[1]
    elif kind == BINARY:
        Ws, bs, q = np.zeros((T.shape[1], X.shape[1])), np.zeros(T.shape[1]), 0.0
        for j, y in enumerate(T.T):
            # BCE on one column is two-class cross-entropy with soft targets (y, 1 - y).
            theta, qj, ok, it = _softmax_regression(Xs, np.column_stack([y, 1.0 - y]))
            Ws[j], bs[j] = theta[0, :-1], theta[0, -1]
            q = q + qj
            converged, n_iter = converged and ok, max(n_iter, it)
        width = T.shape[1]
    else:
        width = int(T.max()) + 1
        present = np.flatnonzero(np.bincount(T, minlength=width))
        Ws, bs = np.zeros((width, X.shape[1])), np.full(width, -np.inf)
        onehot = (T[:, None] == present[None, :]).astype(np.float64)
        theta, q, converged, n_iter = _softmax_regression(Xs, onehot)
        Ws[present[:-1]], bs[present[:-1]] = theta[:, :-1], theta[:, -1]
        bs[present[-1]] = 0.0
    W = Ws / sd
    b = bs - W @ mu
    u = units(loss, len(X), width, batch_size)
    return LinearFit(u.of_rows(q), W, b, type(loss).__name__, batch_size, converged, n_iter)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def _softmax_regression(Xs: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, int]:
    """Minimise sum_i [logsumexp(z_i) - T_i . z_i] over affine logits, the last class at 0.

    ``T`` is ``(n, K)`` with rows summing to 1 (one-hot or soft). Returns ``theta`` of shape
    ``(K - 1, p + 1)`` (bias last), the per-row terms ``(n,)``, converged, iterations.
    """
    n, p = Xs.shape
    K = T.shape[1]
    if K == 1:  # one class only: predicting it with certainty costs nothing
        return np.zeros((0, p + 1)), np.zeros(n), True, 0
    A = np.column_stack([Xs, np.ones(n)])  # (n, p + 1)
    D = (K - 1) * (p + 1)
    if D > MAX_NEWTON_PARAMETERS:
        raise ValueError(
            f"the linear classifier bound fits {D} parameters by Newton's method, more than "
            f"{MAX_NEWTON_PARAMETERS}: reduce the inputs (e.g. to their top principal components)"
        )

    def rows(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Z = np.column_stack([A @ theta.reshape(K - 1, p + 1).T, np.zeros(n)])  # (n, K)
        lse = np.logaddexp.reduce(Z, axis=1)
        return lse - (T * Z).sum(axis=1), np.exp(Z - lse[:, None])

    def derivatives(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        P = rows(theta)[1][:, :-1]  # (n, K - 1)
        g = ((P - T[:, :-1]).T @ A).ravel()
        H = np.zeros((K - 1, p + 1, K - 1, p + 1))
        for a in range(K - 1):
            H[a, :, a, :] = A.T @ (A * P[:, a : a + 1])
        # minus sum_i (P_i kron a_i)(P_i kron a_i)^T, in row chunks to bound memory
        step = max(1, 2_000_000 // D)
        for lo in range(0, n, step):
            B = (P[lo : lo + step, :, None] * A[lo : lo + step, None, :]).reshape(-1, D)
            H -= (B.T @ B).reshape(H.shape)
        return g, H.reshape(D, D)

    theta, converged, it = _newton(lambda t: float(rows(t)[0].sum()), derivatives, np.zeros(D), n)
    return theta.reshape(K - 1, p + 1), rows(theta)[0], converged, it


def _newton(
    value: Callable[[np.ndarray], float],
    derivatives: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    theta: np.ndarray,
    n: int,
    tol: float = 1e-12,
    max_iter: int = 200,
) -> tuple[np.ndarray, bool, int]:
    """Damped Newton with backtracking for a smooth convex sum of ``n`` terms.

    Stops after the step at which half the squared Newton decrement (the predicted remaining
    decrease) falls below ``tol`` per row.
    """
    f = value(theta)
    for it in range(max_iter):
        g, H = derivatives(theta)
        # A tiny Levenberg term keeps the step defined where H is singular (separable classes,
        # collinear inputs); it is negligible along every well-determined direction.
        damping = 1e-10 * max(np.trace(H) / len(theta), 1e-12)
        step = np.linalg.solve(H + damping * np.eye(len(theta)), g)
        decrement = float(g @ step)
        if decrement / 2 <= tol * n:
            # this close to the optimum a full step squares the remaining error
            return theta - step, True, it + 1
        t = 1.0
        while t > 1e-10:
            candidate = theta - t * step
            f_new = value(candidate)
            if f_new <= f - 0.25 * t * decrement:
                break
            t *= 0.5
        else:
            return theta, False, it
        theta, f = candidate, f_new
    return theta, False, max_iter
