"""The minimisers behind the affine bounds, against closed forms, SciPy and a dense Newton fit.

The exact softmax fit (L-BFGS, then Newton steps on Hessian-vector products) is checked against
an independent dense Newton iteration written here (its own gradient and Hessian), against
scikit-learn's unpenalised logistic regression, and on separable classes against the infimum 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from nndoctor._numeric import principal_directions
from nndoctor.bounds import _fits, least_squares
from nndoctor.bounds._solvers import conjugate_gradients, lbfgs
from nndoctor.nn import BCE, CrossEntropy


def _quadratic(d: int, seed: int, condition: float):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    H = Q @ np.diag(np.geomspace(1.0, condition, d)) @ Q.T
    b = rng.normal(size=d)
    return H, b


@pytest.mark.parametrize("condition", [1.0, 1e2, 1e4])
def test_lbfgs_reaches_the_minimum_of_a_quadratic(condition):
    H, b = _quadratic(30, 0, condition)
    x, iterations = lbfgs(lambda x: (0.5 * x @ H @ x - b @ x, H @ x - b), np.zeros(30), 1e-10, 2000)
    exact = np.linalg.solve(H, b)
    # f(x) - f* = (x - x*)' H (x - x*) / 2, computed without cancellation
    excess = 0.5 * (x - exact) @ H @ (x - exact)
    assert excess <= 1e-12 * (0.5 * b @ exact)
    assert iterations < 2000  # it stops once f's rounding hides any progress


def test_lbfgs_matches_scipy_on_a_smooth_convex_function():
    optimize = pytest.importorskip("scipy.optimize")

    # a convex function that is not quadratic: log-sum-exp of affine pieces plus a quadratic
    rng = np.random.default_rng(1)
    A, c = rng.normal(size=(40, 5)), rng.normal(size=40)

    def fg(x):
        z = A @ x + c
        top = z.max()
        e = np.exp(z - top)
        return top + np.log(e.sum()) + 0.05 * x @ x, A.T @ (e / e.sum()) + 0.1 * x

    x, _ = lbfgs(fg, np.zeros(5), 1e-12, 1000)
    ref = optimize.minimize(fg, np.zeros(5), jac=True, method="BFGS", options={"gtol": 1e-12})
    assert fg(x)[0] == pytest.approx(ref.fun, rel=1e-12)
    np.testing.assert_allclose(x, ref.x, atol=1e-6)


def test_conjugate_gradients_solve_a_positive_definite_system():
    H, b = _quadratic(25, 2, 1e4)
    x = conjugate_gradients(lambda v: H @ v, b, 1e-12, 200)
    np.testing.assert_allclose(x, np.linalg.solve(H, b), rtol=1e-7)


def test_conjugate_gradients_on_a_singular_system_stay_in_its_range():
    rng = np.random.default_rng(3)
    B = rng.normal(size=(10, 4))
    H = B @ B.T  # rank 4
    b = H @ rng.normal(size=10)  # in the range
    x = conjugate_gradients(lambda v: H @ v, b, 1e-12, 100)
    np.testing.assert_allclose(H @ x, b, atol=1e-9 * np.abs(b).max())
    np.testing.assert_allclose(x, np.linalg.pinv(H) @ b, atol=1e-8)


def _newton(value, derivatives, theta, n, tol=1e-12):
    """Damped Newton with a dense Hessian and backtracking, to half a Newton decrement of
    ``tol`` per row: the reference iteration the library's dense fit used before L-BFGS."""
    f = value(theta)
    for _ in range(200):
        g, H = derivatives(theta)
        step = np.linalg.solve(
            H + 1e-10 * max(np.trace(H) / len(theta), 1e-12) * np.eye(len(theta)), g
        )
        decrement = float(g @ step)
        if decrement / 2 <= tol * n:
            return theta
        t = 1.0
        while value(theta - t * step) > f - 0.25 * t * decrement:
            t *= 0.5
        theta = theta - t * step
        f = value(theta)
    raise AssertionError("the reference Newton iteration did not converge")


def _dense_newton_softmax(Xs: np.ndarray, T: np.ndarray) -> float:
    """The softmax fit by damped Newton with a dense Hessian, from its own derivatives: the
    mean per-row loss at the optimum (the reference the faster fit must reproduce)."""
    n, p = Xs.shape
    K = T.shape[1]
    A = np.column_stack([Xs, np.ones(n)])

    def logits(theta):
        return np.column_stack([A @ theta.reshape(K - 1, p + 1).T, np.zeros(n)])

    def value(theta):
        Z = logits(theta)
        return float(np.sum(np.logaddexp.reduce(Z, axis=1) - (T * Z).sum(axis=1)))

    def derivatives(theta):
        Z = logits(theta)
        P = np.exp(Z - np.logaddexp.reduce(Z, axis=1)[:, None])[:, :-1]
        g = ((P - T[:, :-1]).T @ A).ravel()
        H = np.zeros((K - 1, p + 1, K - 1, p + 1))
        for a in range(K - 1):
            for c in range(K - 1):
                w = P[:, a] * ((a == c) - P[:, c])
                H[a, :, c, :] = A.T @ (A * w[:, None])
        return g, H.reshape(g.size, g.size)

    theta = _newton(value, derivatives, np.zeros((K - 1) * (p + 1)), n)
    return value(theta) / n


def _overlapping_classes(n: int, p: int, K: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, p)
    labels = np.argmax(X @ rng.normal(size=(p, K)) * 0.5 + rng.gumbel(size=(n, K)), axis=1)
    return X, labels


@pytest.mark.parametrize(
    ("n", "p", "K", "seed"), [(300, 4, 3, 0), (1000, 20, 10, 1), (500, 8, 2, 2)]
)
def test_exact_softmax_fit_matches_dense_newton(n, p, K, seed):
    X, labels = _overlapping_classes(n, p, K, seed)
    fit = least_squares(X, labels, CrossEntropy())
    assert fit.method == "exact" and fit.converged
    mu, sd = _fits._standardiser(X)
    reference = _dense_newton_softmax((X - mu) / sd, np.eye(K)[labels])
    assert fit.loss == pytest.approx(reference, rel=1e-9)
    # its stated error bar is a per-row remaining decrease below EXACT_TOL
    assert 0 <= fit.error_bar <= _fits.EXACT_TOL


def test_exact_softmax_fit_matches_scikit_learn():
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, labels = _overlapping_classes(2000, 12, 6, 4)
    fit = least_squares(X, labels, CrossEntropy(reduction="sum"))
    ref = linear_model.LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, labels)
    P = ref.predict_proba(X)
    exact = float(-np.sum(np.log(P[np.arange(len(X)), labels])))
    assert fit.loss == pytest.approx(exact, rel=1e-7)
    assert fit.loss >= exact * (1 - 1e-9)  # the loss of a real map: never below the optimum


def test_separable_digits_reach_the_infimum_zero():
    """Regression: the dense Newton fit took a last full step from the edge of separability
    and reported 0.29 per row on digits (the infimum is 0)."""
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    X, labels = digits.data / 16.0, digits.target
    fit = least_squares(X, labels, CrossEntropy())
    assert fit.converged and fit.loss <= _fits.EXACT_TOL
    assert np.all(fit.predict(X).argmax(axis=1) == labels)


def test_logistic_columns_match_dense_newton_with_soft_targets():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 5))
    T = 1 / (1 + np.exp(-(X @ rng.normal(size=(5, 3)) + rng.normal(size=(400, 3)))))
    fit = least_squares(X, T, BCE())
    mu, sd = _fits._standardiser(X)
    Xs = (X - mu) / sd
    per_column = [_dense_newton_softmax(Xs, np.column_stack([t, 1 - t])) for t in T.T]
    # BCE's mean is over rows and columns: the mean of the columns' two-class fits
    assert fit.loss == pytest.approx(np.mean(per_column), rel=1e-9)


@pytest.mark.parametrize("shape", [(40, 6), (6, 40)])
def test_principal_directions_match_the_svd(shape):
    A = np.random.default_rng(7).normal(size=shape) * np.geomspace(1, 10, shape[1])
    V = principal_directions(A, 4)
    Vt = np.linalg.svd(A, full_matrices=False)[2][:4]
    # the same directions up to sign
    np.testing.assert_allclose(np.abs(np.sum(V * Vt.T, axis=0)), 1.0, atol=1e-10)
    # more directions than the rank: zero columns beyond it
    rank = min(shape)
    W = principal_directions(A, rank + 2)
    assert W.shape == (shape[1], rank + 2)
    np.testing.assert_allclose(np.abs(np.sum(W[:, :4] * Vt.T, axis=0)), 1.0, atol=1e-10)
    np.testing.assert_array_equal(W[:, rank:], 0.0)
