"""The large-data paths of ``least_squares``: chunked normal equations and subsampled Newton.

The paths are forced on small data (by lowering the size limits), so that the exact optimum can
be computed independently: ``np.linalg.lstsq`` for squared error, and for BCE / CrossEntropy
the first-order optimality condition (the loss's gradient, by central differences, is 0 at the
optimum) and scikit-learn's unpenalised logistic regression when installed.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from nndoctor.bounds import _fits, least_squares
from nndoctor.nn import BCE, MSE, CrossEntropy


@pytest.fixture
def large_paths(monkeypatch):
    monkeypatch.setattr(_fits, "EXACT_ELEMENTS", 100)
    monkeypatch.setattr(_fits, "EXACT_WORK", 100.0)
    monkeypatch.setattr(_fits, "HESSIAN_WORK", 1e5)  # a sample smaller than the data
    monkeypatch.setattr(_fits, "MAX_NEWTON_PARAMETERS", 0)


def _data(n=3000, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 4.0, d) + rng.normal(size=d) * 3
    Z = (X - X.mean(axis=0)) / X.std(axis=0) @ rng.normal(size=(d, 3))
    return X, Z, rng


def test_chunked_normal_equations_match_lstsq(large_paths):
    X, Z, rng = _data()
    Y = Z + rng.normal(size=Z.shape)
    fit = least_squares(X, Y, MSE(reduction="sum"), batch_size=None)
    assert fit.method == "normal equations" and not fit.approximate
    A = np.column_stack([X, np.ones(len(X))])
    coef = np.linalg.lstsq(A, Y, rcond=None)[0]
    exact = float(np.sum((A @ coef - Y) ** 2))
    assert fit.loss == pytest.approx(exact, rel=1e-10)
    np.testing.assert_allclose(fit.weights, coef[:-1].T, rtol=1e-8, atol=1e-10)


def _ce(theta_W, theta_b, X, labels):
    Z = X @ theta_W.T + theta_b
    Z = Z - Z.max(axis=1, keepdims=True)
    return float(np.sum(np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(len(X)), labels]))


def test_subsampled_newton_reaches_the_softmax_optimum_within_its_error_bar(large_paths):
    X, Z, rng = _data()
    labels = np.argmax(Z + rng.gumbel(size=Z.shape) * 1.5, axis=1)
    fit = least_squares(X, labels, CrossEntropy(reduction="sum"), seed=3)
    assert fit.method == "subsampled Newton" and fit.approximate and fit.converged
    assert fit.rows_used < len(X)
    # the reported loss is the loss of the reported map, recomputed independently
    assert fit.loss == pytest.approx(_ce(fit.weights, fit.bias, X, labels), rel=1e-12)
    # at the optimum the gradient vanishes: central differences of the loss in every weight
    eps = 1e-5
    grad = np.zeros_like(fit.weights)
    for idx in np.ndindex(fit.weights.shape):
        hi, lo = fit.weights.copy(), fit.weights.copy()
        hi[idx] += eps
        lo[idx] -= eps
        grad[idx] = (_ce(hi, fit.bias, X, labels) - _ce(lo, fit.bias, X, labels)) / (2 * eps)
    scale = np.abs(X).max() * len(X)
    assert np.max(np.abs(grad)) < 1e-3 * scale
    sklearn = pytest.importorskip("sklearn.linear_model")
    ref = sklearn.LogisticRegression(C=np.inf, tol=1e-9, max_iter=10000).fit(X, labels)
    P = ref.predict_proba(X)
    exact = float(-np.sum(np.log(P[np.arange(len(X)), labels])))
    # never below the optimum (it is the loss of a real map), above it by about the error bar
    assert fit.loss >= exact - 1e-6 * exact
    assert fit.loss - exact <= 10 * fit.error_bar + 1e-6 * exact


def test_subsampled_newton_for_bce_matches_the_logistic_optimum(large_paths):
    X, Z, rng = _data()
    y = (Z[:, :1] + rng.logistic(size=(len(X), 1)) > 0).astype(float)
    fit = least_squares(X, y, BCE(reduction="sum"), seed=1)
    assert fit.method == "subsampled Newton"
    sklearn = pytest.importorskip("sklearn.linear_model")
    ref = sklearn.LogisticRegression(C=np.inf, tol=1e-9, max_iter=10000).fit(X, y[:, 0])
    p = ref.predict_proba(X)[:, 1]
    exact = float(-np.sum(y[:, 0] * np.log(p) + (1 - y[:, 0]) * np.log1p(-p)))
    assert fit.loss >= exact - 1e-6 * exact
    assert fit.loss - exact <= 10 * fit.error_bar + 1e-6 * exact


def test_too_many_parameters_reduce_the_inputs_and_say_so(large_paths, monkeypatch):
    monkeypatch.setattr(_fits, "MAX_SAMPLED_PARAMETERS", 3 * 4)  # 3 components for 4 classes
    X, Z, rng = _data(d=8)
    labels = np.argmax(np.column_stack([Z, -Z[:, :1]]) + rng.gumbel(size=(len(X), 4)), axis=1)
    fit = least_squares(X, labels, CrossEntropy(reduction="sum"))
    assert fit.components == 3 and "top 3 principal components" in str(fit)
    # an upper bound: the loss of the map it returns, never below the unrestricted optimum
    assert fit.loss == pytest.approx(_ce(fit.weights, fit.bias, X, labels), rel=1e-12)
    monkeypatch.setattr(_fits, "MAX_SAMPLED_PARAMETERS", 1000)
    full = least_squares(X, labels, CrossEntropy(reduction="sum"))
    assert full.components is None and fit.loss >= full.loss - 1e-9 * full.loss


def test_the_large_squared_path_never_copies_x():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300_000, 25))  # 60 MB, beyond EXACT_ELEMENTS
    y = X[:, 0] + rng.normal(size=len(X))
    tracemalloc.start()
    fit = least_squares(X, y, MSE())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert fit.method == "normal equations"
    assert peak < 0.5 * X.nbytes


def test_the_large_fits_can_show_progress(large_paths, capsys):
    X, Z, rng = _data(n=600)
    labels = np.argmax(Z + rng.gumbel(size=Z.shape), axis=1)
    least_squares(X, labels, CrossEntropy(), progress=True)
    assert "affine bound (passes over the rows)" in capsys.readouterr().err
