"""nndoctor.bounds against scikit-learn's own fits (the ``data`` extra): independent code,
the same optima."""

from __future__ import annotations

import numpy as np
import pytest

from nndoctor.bounds import constant_baseline, least_squares, linear_code
from nndoctor.nn import MSE, SSE, CrossEntropy

sklearn = pytest.importorskip("sklearn", reason="the data extra: pip install 'nndoctor[data]'")
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.metrics import log_loss, mean_squared_error  # noqa: E402


def test_least_squares_matches_linear_regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    Y = X @ rng.normal(size=(6, 2)) + rng.normal(size=(300, 2))
    fit = least_squares(X, Y, MSE())
    reference = mean_squared_error(Y, LinearRegression().fit(X, Y).predict(X))
    assert fit.loss == pytest.approx(reference, rel=1e-10)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_rank_k_code_matches_pca_reconstruction(k):
    X = np.random.default_rng(1).random((400, 8))
    pca = PCA(n_components=k, svd_solver="full").fit(X)
    reconstruction = pca.inverse_transform(pca.transform(X))
    reference = 0.5 * float(((X - reconstruction) ** 2).sum())
    assert linear_code(X, SSE()).at_rank(k) == pytest.approx(reference, rel=1e-10)


def test_softmax_fit_matches_unpenalised_logistic_regression():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 4))
    labels = np.argmax(X @ rng.normal(size=(4, 3)) + rng.gumbel(size=(300, 3)), axis=1)
    fit = least_squares(X, labels, CrossEntropy())
    model = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, labels)
    reference = log_loss(labels, model.predict_proba(X))
    assert fit.loss == pytest.approx(reference, rel=1e-6)


def test_constant_baseline_is_the_log_loss_of_the_prior():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    prior = np.bincount(labels) / len(labels)
    reference = log_loss(labels, np.tile(prior, (len(labels), 1)))
    assert constant_baseline(labels, CrossEntropy()).loss == pytest.approx(reference, rel=1e-12)
