"""Minimisers of the smooth convex losses behind the affine bounds: L-BFGS and conjugate
gradients.

They are written here in a few lines of NumPy rather than taken from SciPy because SciPy's
optimiser module alone takes about 0.4 s to import, more than a whole bound on data of a
thousand rows costs with them. Each works on a flat parameter vector and is tested against
closed forms and against SciPy (``tests/test_bounds_solvers.py``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

# Armijo's sufficient-decrease constant for the backtracking line searches
ARMIJO = 1e-4
# a decrease below this share of |f| is lost to rounding
ROUNDING = 4 * float(np.finfo(np.float64).eps)
# ... and L-BFGS stops after this many steps in a row that decreased f by less
STALLED = 5


def lbfgs(
    value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    gtol: float,
    max_iter: int,
    memory: int = 20,
) -> tuple[np.ndarray, int]:
    """Limited-memory BFGS with a backtracking line search, for a smooth convex function.

    Parameters
    ----------
    value_and_gradient : callable
        ``x (d,) -> (f, g (d,))``.
    x : ndarray, shape (d,)
        Starting point (not modified).
    gtol : float
        Stops when every gradient component is at most this in magnitude.
    max_iter : int
        Iterations at most (each evaluates ``value_and_gradient`` once when the full step is
        accepted, as it nearly always is).
    memory : int
        Curvature pairs kept.

    Returns
    -------
    x : ndarray, shape (d,)
    iterations : int

    Notes
    -----
    On a convex function every curvature pair has ``s.y >= 0``, so the Armijo condition alone
    keeps the quasi-Newton matrix positive definite (pairs with ``s.y`` at the rounding level
    are skipped). The search stops early when a step of ``1e-10`` of the direction no longer
    decreases ``f``, when the decrease the quasi-Newton model predicts is below the rounding
    of ``f``, or after ``STALLED`` steps in a row whose decrease was below it: ``f`` can then
    no longer tell better points from worse (the gradient may still be above ``gtol``).
    """
    x = np.array(x, dtype=np.float64)
    f, g = value_and_gradient(x)
    pairs: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=memory)
    stalled = 0  # consecutive steps whose decrease was lost in f's rounding
    for it in range(max_iter):
        if not np.max(np.abs(g), initial=0.0) > gtol:
            return x, it
        # two-loop recursion: d = -H g with the inverse-Hessian estimate of the pairs
        q = g.copy()
        alphas = []
        for s, y, rho in reversed(pairs):
            a = rho * float(s @ q)
            q -= a * y
            alphas.append(a)
        if pairs:
            s, y, _ = pairs[-1]
            q *= float(s @ y) / float(y @ y)
        else:
            q /= max(float(np.linalg.norm(g)), 1.0)  # a first step of length at most 1
        for (s, y, rho), a in zip(pairs, reversed(alphas), strict=True):
            q += (a - rho * float(y @ q)) * s
        slope = -float(g @ q)
        if not slope < 0:  # rounding spoilt the estimate: start again from the gradient
            pairs.clear()
            q, slope = g / max(float(np.linalg.norm(g)), 1.0), -float(g @ g)
        if -slope <= ROUNDING * abs(f):  # the predicted decrease is below f's rounding
            return x, it
        t = 1.0
        while True:
            x_new = x - t * q
            f_new, g_new = value_and_gradient(x_new)
            if f_new <= f + ARMIJO * t * slope:
                break
            t *= 0.5
            if t < 1e-10:
                return x, it
        s, y = x_new - x, g_new - g
        sy = float(s @ y)
        if sy > 1e-12 * float(y @ y):
            pairs.append((s, y, 1.0 / sy))
        stalled = stalled + 1 if f_new >= f - ROUNDING * abs(f) else 0
        x, f, g = x_new, f_new, g_new
        if stalled >= STALLED:
            return x, it + 1
    return x, max_iter


def conjugate_gradients(
    matvec: Callable[[np.ndarray], np.ndarray], b: np.ndarray, rtol: float, max_iter: int
) -> np.ndarray:
    """Solve ``H x = b`` for a symmetric positive semi-definite ``H`` given as ``matvec``.

    Stops when the residual is at most ``rtol`` of ``|b|``, after ``max_iter`` products, or at
    a direction of zero curvature (``b`` outside the range of a singular ``H``: the solution
    found so far lies in it). From ``x = 0`` every iterate's ``b . x`` is at most
    ``b . H^+ b`` and grows toward it.
    """
    x = np.zeros_like(b)
    r = b.copy()
    d = r.copy()
    rr = float(r @ r)
    stop = rtol**2 * rr
    for _ in range(max_iter):
        if rr <= stop:
            break
        Hd = matvec(d)
        curvature = float(d @ Hd)
        if not curvature > 0:
            break
        a = rr / curvature
        x += a * d
        r -= a * Hd
        rr, rr_old = float(r @ r), rr
        d = r + (rr / rr_old) * d
    return x
