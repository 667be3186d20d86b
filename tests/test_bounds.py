"""Bounds checked against closed forms and independent computations (torch, explicit fits)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from nndoctor import bounds
from nndoctor.nn.losses import BCE, MSE, SSE, CrossEntropy, Loss


def seed_rows(n_samples: int, seed: int) -> np.ndarray:
    """The seed's layout: each column of an 8x8 uniform matrix is a sample (a row here)."""
    data = np.random.default_rng(seed).random((n_samples, 8, 8))
    return data.transpose(0, 2, 1).reshape(-1, 8)


def batched(loss: Loss, P: np.ndarray, T: np.ndarray, batch_size: int) -> float:
    """Mean over consecutive batches of the engine's loss object, as ``train`` reports it."""
    values = [
        loss(P[i : i + batch_size], T[i : i + batch_size]) for i in range(0, len(P), batch_size)
    ]
    return float(np.mean(values))


def pca_reconstruction(X: np.ndarray, k: int) -> np.ndarray:
    """Best rank-k affine reconstruction computed directly from an SVD of the centred rows."""
    mean = X.mean(axis=0)
    _, _, Vt = np.linalg.svd(X - mean, full_matrices=False)
    return mean + (X - mean) @ Vt[:k].T @ Vt[:k]


# ---------------------------------------------------------------- linear code


def test_seed_bounds_match_the_issue_and_a_torch_reconstruction(torch):
    X = seed_rows(100, 42)
    code = bounds.linear_code(X, SSE(), batch_size=8)
    assert round(code.at_rank(1), 4) == 2.2712
    assert round(code.at_rank(3), 4) == 1.5391
    # independently: torch SVD, reconstruct, 0.5 * sum of squares per 8x8 sample
    Xt = torch.from_numpy(X)
    centred = Xt - Xt.mean(dim=0)
    _, _, Vh = torch.linalg.svd(centred, full_matrices=False)
    for k in range(9):
        R = centred @ Vh[:k].T @ Vh[:k] - centred
        per_sample = 0.5 * (R**2).reshape(100, 8, 8).sum(dim=(1, 2))
        assert code.at_rank(k) == pytest.approx(per_sample.mean().item(), rel=1e-10, abs=1e-12)


def test_uniform_data_rank_k_bound_is_8_minus_k_over_3():
    X = seed_rows(20_000, 7)  # 160,000 column-samples of variance 1/12 per element
    code = bounds.linear_code(X, SSE(), batch_size=8)
    expected = (8 - np.arange(9)) / 3
    # the sample's discarded eigenvalues are its smallest, so the training bound sits below
    # (8 - k) / 3 by the Marchenko-Pastur spread, which exceeds 1% only for k >= 6 here
    np.testing.assert_allclose(code.loss_at_rank[:6], expected[:6], rtol=0.01)
    edge = (1 - math.sqrt(8 / len(X))) ** 2
    assert np.all(code.loss_at_rank[1:8] >= 0.995 * edge * expected[1:8])
    # the smallest 8 - k of 8 eigenvalues average at most the mean eigenvalue
    assert np.all(code.loss_at_rank <= (8 - np.arange(9)) / 8 * code.loss_at_rank[0] + 1e-12)
    assert code.loss_at_rank[8] == pytest.approx(0.0, abs=1e-9)
    assert code.summary((1, 3)).startswith("best constant: 2.6")
    assert "nearly flat" in code.summary((1, 3))


def test_gaussian_bound_is_the_sum_of_discarded_eigenvalues():
    rng = np.random.default_rng(3)
    eig = np.array([6.0, 3.0, 1.5, 1.0, 0.4, 0.1])
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    X = rng.standard_normal((60_000, 6)) * np.sqrt(eig) @ Q.T + rng.normal(size=6)
    # MSE(sum) per batch of one row: the squared error of one reconstructed row
    code = bounds.linear_code(X, MSE(reduction="sum"), batch_size=1)
    discarded = np.append(np.cumsum(eig[::-1])[::-1], 0.0)
    np.testing.assert_allclose(code.loss_at_rank, discarded, rtol=0.02, atol=1e-9)
    np.testing.assert_allclose(code.explained_variance_ratio, eig / eig.sum(), atol=0.01)
    assert code.rank_for(0.9) == 4  # 10.5 of 12 = 87.5% at rank 3, 11.5 of 12 at rank 4
    assert abs(code.components[0] @ Q[:, 0]) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("loss", [SSE(), MSE(), MSE(reduction="sum")], ids=repr)
@pytest.mark.parametrize("shape", [(103, 5), (13, 30)], ids=["tall", "wide"])
def test_partial_last_batch_matches_the_engine_loss_batch_by_batch(loss, shape):
    X = np.random.default_rng(1).standard_normal(shape) @ np.diag(np.linspace(2, 0.5, shape[1]))
    code = bounds.linear_code(X, loss, batch_size=10)  # the last batch has 3 rows
    assert code.max_rank == min(shape[0] - 1, shape[1])
    for k in range(code.max_rank + 1):
        expected = batched(loss, pca_reconstruction(X, k), X, 10)
        assert code.at_rank(k) == pytest.approx(expected, rel=1e-9, abs=1e-10)
    full = bounds.linear_code(X, loss)
    assert full.at_rank(2) == pytest.approx(loss(pca_reconstruction(X, 2), X), rel=1e-9)


def test_no_rank_k_affine_code_beats_the_bound():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((200, 6)) @ rng.standard_normal((6, 6))
    code = bounds.linear_code(X, MSE())
    for _ in range(50):
        k = int(rng.integers(1, 6))
        V, _ = np.linalg.qr(rng.standard_normal((6, k)))  # any k-dimensional subspace
        centre = X.mean(axis=0) + 0.1 * rng.standard_normal(6)
        R = centre + (X - centre) @ V @ V.T
        assert MSE()(R, X) >= code.at_rank(k) - 1e-12


# ---------------------------------------------------------------- constant baseline


def test_constant_baseline_closed_forms():
    labels = np.repeat([0, 1], 50)
    ce = bounds.constant_baseline(labels, CrossEntropy())
    assert ce.loss == pytest.approx(math.log(2), rel=1e-14)
    skewed = bounds.constant_baseline(np.repeat([0, 2], [30, 10]), CrossEntropy(reduction="sum"))
    assert skewed.loss == pytest.approx(-(30 * math.log(0.75) + 10 * math.log(0.25)), rel=1e-12)
    assert skewed.constant[1] == -np.inf  # class 1 never occurs

    T = (np.random.default_rng(0).random((400, 3)) < [0.1, 0.5, 0.8]).astype(float)
    rate = T.mean(axis=0)
    entropy = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))
    bce = bounds.constant_baseline(T, BCE())
    assert bce.loss == pytest.approx(entropy.mean(), rel=1e-12)
    np.testing.assert_array_equal(bce.constant, rate)

    Y = np.random.default_rng(1).normal(size=(50, 4)) * [1, 2, 3, 4]
    assert bounds.constant_baseline(Y, MSE()).loss == pytest.approx(Y.var(axis=0).mean())
    assert bounds.constant_baseline(Y, SSE()).loss == pytest.approx(25 * Y.var(axis=0).sum())
    assert bounds.constant_baseline(Y[:, 0], MSE(reduction="sum"), batch_size=7).loss == (
        pytest.approx(batched(MSE(reduction="sum"), np.full((50, 1), Y[:, 0].mean()), Y[:, :1], 7))
    )


def test_constant_baseline_in_torch_units(torch):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 37)
    base = bounds.constant_baseline(labels, CrossEntropy(), batch_size=8)
    logits = torch.from_numpy(np.tile(base.constant, (37, 1)))
    target = torch.from_numpy(labels)
    ce = torch.nn.CrossEntropyLoss()
    per_batch = [ce(logits[i : i + 8], target[i : i + 8]).item() for i in range(0, 37, 8)]
    assert base.loss == pytest.approx(np.mean(per_batch), rel=1e-12)
    # no other constant does better (the prior is the minimiser)
    for _ in range(20):
        other = torch.from_numpy(np.tile(rng.normal(size=4), (37, 1)))
        assert ce(other, target).item() >= bounds.constant_baseline(labels, CrossEntropy()).loss


# ---------------------------------------------------------------- least squares


def test_noiseless_linear_target_has_zero_least_squares_loss():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(80, 5)) * [1, 10, 100, 0.01, 1]
    W, b = rng.normal(size=(3, 5)), rng.normal(size=3)
    fit = bounds.least_squares(X, X @ W.T + b, SSE(), batch_size=8)
    assert fit.loss < 1e-18
    np.testing.assert_allclose(fit.weights, W, rtol=1e-8)
    np.testing.assert_allclose(fit.bias, b, rtol=1e-8, atol=1e-10)


def test_least_squares_matches_torch_lstsq(torch):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(90, 4))
    Y = np.sin(X @ rng.normal(size=(4, 2))) + 0.1 * rng.normal(size=(90, 2))
    fit = bounds.least_squares(X, Y, MSE(), batch_size=16)
    A = torch.from_numpy(np.column_stack([X, np.ones(90)]))
    P = A @ torch.linalg.lstsq(A, torch.from_numpy(Y)).solution
    mse = torch.nn.MSELoss()
    Yt = torch.from_numpy(Y)
    expected = np.mean([mse(P[i : i + 16], Yt[i : i + 16]).item() for i in range(0, 90, 16)])
    assert fit.loss == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(fit.predict(X), P.numpy(), atol=1e-10)


def classification_data(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    logits = X @ rng.normal(size=(3, 4)) + rng.normal(size=4)
    labels = (logits + rng.gumbel(size=(n, 4))).argmax(axis=1)  # overlapping classes
    return X, labels


def test_softmax_fit_is_a_stationary_point_under_autograd(torch):
    X, labels = classification_data(0)
    fit = bounds.least_squares(X, labels, CrossEntropy())
    assert fit.converged
    W = torch.tensor(fit.weights, requires_grad=True)
    b = torch.tensor(fit.bias, requires_grad=True)
    value = torch.nn.functional.cross_entropy(
        torch.from_numpy(X) @ W.T + b, torch.from_numpy(labels)
    )
    value.backward()
    # convex: a zero gradient means the global minimum
    assert W.grad.abs().max().item() < 1e-8
    assert b.grad.abs().max().item() < 1e-8
    assert fit.loss == pytest.approx(value.item(), rel=1e-12)
    assert fit.loss < bounds.constant_baseline(labels, CrossEntropy()).loss


def test_logistic_fit_with_soft_targets_is_a_stationary_point(torch):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(200, 2))
    T = np.column_stack([1 / (1 + np.exp(-X @ [2.0, -1.0])), rng.random(200) < 0.3])
    T[:, 0] = np.clip(T[:, 0] + 0.2 * rng.normal(size=200), 0, 1)
    fit = bounds.least_squares(X, T, BCE(reduction="sum"), batch_size=32)
    W = torch.tensor(fit.weights, requires_grad=True)
    b = torch.tensor(fit.bias, requires_grad=True)
    P = torch.sigmoid(torch.from_numpy(X) @ W.T + b)
    bce = torch.nn.BCELoss(reduction="sum")
    bce(P, torch.from_numpy(T)).backward()
    assert max(W.grad.abs().max().item(), b.grad.abs().max().item()) < 1e-8
    Tt = torch.from_numpy(T)
    per_batch = [bce(P[i : i + 32], Tt[i : i + 32]).item() for i in range(0, 200, 32)]
    assert fit.loss == pytest.approx(np.mean(per_batch), rel=1e-10)


def test_separable_classes_reach_zero_loss():
    x = np.linspace(-1, 1, 40)
    fit = bounds.least_squares(x, (x > 0.1).astype(int), CrossEntropy())
    assert fit.loss < 1e-9
    assert np.all(fit.predict(x).argmax(axis=1) == (x > 0.1))


# ---------------------------------------------------------------- predictability


def test_independent_targets_give_no_signal_in_95_of_100_seeds():
    verdicts = []
    for seed in range(100):
        rng = np.random.default_rng(1000 + seed)
        result = bounds.predictability(rng.normal(size=(200, 3)), rng.normal(size=200), seed=seed)
        verdicts.append(result.has_signal)
    assert sum(verdicts) <= 5


def test_sine_targets_give_signal_in_99_of_100_seeds():
    verdicts = []
    for seed in range(100):
        rng = np.random.default_rng(2000 + seed)
        x = rng.uniform(-2, 2, 200)
        y = np.sin(3 * x) + 0.3 * rng.normal(size=200)
        verdicts.append(bounds.predictability(x, y, seed=seed).has_signal)
    assert sum(verdicts) >= 99


def test_classification_predictability_and_its_numbers():
    X, labels = classification_data(1, n=200)
    result = bounds.predictability(X, labels, seed=0)
    assert result.task == "classification"
    assert result.has_signal
    assert result.skill > result.shuffled_quantile > result.shuffled_skill
    assert result.p_value == pytest.approx(1 / 200)
    assert "predictable" in str(result)
    null = [
        bounds.predictability(X, np.random.default_rng(s).permutation(labels), seed=s).has_signal
        for s in range(20)
    ]
    assert sum(null) <= 2


def test_predictability_is_reproducible_and_accepts_a_generator():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(60, 2)), rng.normal(size=60)
    a = bounds.predictability(X, y, seed=11)
    b = bounds.predictability(X, y, seed=np.random.default_rng(11))
    assert (a.skill, a.p_value, a.model_skill) == (b.skill, b.p_value, b.model_skill)


def test_held_out_skill_of_ridge_matches_an_explicit_fit():
    # with one fold structure fixed by the seed, the ridge skill equals refitting by hand
    rng = np.random.default_rng(9)
    X = rng.normal(size=(50, 2))
    y = X @ [1.0, -2.0] + 0.5 * rng.normal(size=50)
    result = bounds.predictability(X, y, seed=4, n_repeats=1, n_permutations=1)
    split_rng = np.random.default_rng(4)
    split_rng.permutation(50)  # the one shuffle drawn before the folds
    folds = np.array_split(split_rng.permutation(50), 5)
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    skills = []
    for i, test in enumerate(folds):
        train = np.concatenate(folds[:i] + folds[i + 1 :])
        A = np.column_stack([Xs[train] - Xs[train].mean(axis=0)])
        beta = np.linalg.solve(
            A.T @ A + 1e-3 * len(train) * np.eye(2), A.T @ (y[train] - y[train].mean())
        )
        pred = y[train].mean() + (Xs[test] - Xs[train].mean(axis=0)) @ beta
        skills.append(1 - np.sum((y[test] - pred) ** 2) / np.sum((y[test] - y[train].mean()) ** 2))
    assert result.model_skill["ridge (lambda=0.001)"] == pytest.approx(np.mean(skills), rel=1e-10)


def test_constant_targets_have_no_signal():
    result = bounds.predictability(np.arange(30.0), np.ones(30), seed=0)
    assert not result.has_signal
    assert result.p_value == 1.0


# ---------------------------------------------------------------- summary and imports


def test_summarize_the_seed_and_a_regression():
    text = bounds.summarize(seed_rows(100, 42), loss=SSE(), batch_size=8, ranks=(1, 3))
    assert text.startswith("best constant: 2.66, best rank-1 code: 2.27, best rank-3 code: 1.54")
    assert "data spectrum nearly flat (top 3 of 8 components explain" in text
    x = np.linspace(-1, 1, 100)
    text = bounds.summarize(x, 2 * x + 1, loss=MSE())
    assert text.startswith("best constant: 1.36, best affine map: ")
    assert "targets are predictable" in text


def test_importing_bounds_does_not_import_torch():
    code = "import sys, nndoctor.bounds; assert 'torch' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


# ---------------------------------------------------------------- bad input


class Hinge(Loss):
    pass


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: bounds.linear_code([[0.0, np.nan], [1.0, 2.0]], MSE()),
            ValueError,
            r"NaN at index \(0, 1\)",
        ),
        (lambda: bounds.linear_code(np.ones((1, 3)), MSE()), ValueError, "at least 2 samples"),
        (lambda: bounds.linear_code(np.ones((5, 3)), BCE()), ValueError, "squared-error"),
        (lambda: bounds.linear_code(np.ones(5), MSE()), ValueError, "2-D"),
        (lambda: bounds.linear_code(np.eye(4), MSE()).at_rank(4), ValueError, r"0\.\.3"),
        (lambda: bounds.linear_code(np.eye(4), MSE()).at_rank(-1), ValueError, "rank k"),
        (
            lambda: bounds.constant_baseline(np.ones(4), Hinge()),
            ValueError,
            "do not know the loss Hinge",
        ),
        (lambda: bounds.constant_baseline(np.ones(4), "mse"), TypeError, "loss object"),
        (lambda: bounds.constant_baseline([0.5, 1.5], BCE()), ValueError, r"\[0, 1\]; Y\[1, 0\]"),
        (lambda: bounds.constant_baseline([0, -1], CrossEntropy()), ValueError, r"Y\[1\] = .*-1"),
        (lambda: bounds.constant_baseline([0.5, 1], CrossEntropy()), ValueError, "whole numbers"),
        (
            lambda: bounds.constant_baseline(np.ones(4), MSE(), batch_size=0),
            ValueError,
            "batch_size",
        ),
        (lambda: bounds.least_squares(np.ones((4, 2)), np.ones(5), MSE()), ValueError, "4 samples"),
        (lambda: bounds.least_squares(np.ones((4, 2)), ["a"] * 4, MSE()), TypeError, "numeric"),
        (lambda: bounds.predictability(np.ones((8, 2)), np.ones(8)), ValueError, "at least 10"),
        (
            lambda: bounds.predictability(np.ones((20, 2)), np.ones(20), n_splits=1),
            ValueError,
            "n_splits",
        ),
        (
            lambda: bounds.predictability(np.ones((20, 2)), np.ones(20), alpha=2),
            ValueError,
            "alpha",
        ),
        (
            lambda: bounds.predictability(np.ones((20, 2)), np.ones(20), task="x"),
            ValueError,
            "task",
        ),
        (
            lambda: bounds.predictability(np.ones((20, 2)), np.ones(20), seed=None),
            ValueError,
            "seed",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_wide_inputs_give_ridge_their_top_principal_components(monkeypatch):
    from nndoctor.bounds import _signal

    monkeypatch.setattr(_signal, "RIDGE_COMPONENTS", 3)
    rng = np.random.default_rng(12)
    X = rng.normal(size=(60, 8)) @ rng.normal(size=(8, 8))
    y = X[:, 0] - X[:, 3] + 0.5 * rng.normal(size=60)
    result = bounds.predictability(X, y, seed=5, n_repeats=1, n_permutations=1)
    assert "ridge (lambda=0.1, top 3 components)" in result.model_skill
    assert "3-NN" in result.model_skill  # k-NN keeps every input column
    # by hand: scores on the top 3 right singular vectors of the standardised inputs
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    scores = Xs @ np.linalg.svd(Xs, full_matrices=False)[2][:3].T
    split_rng = np.random.default_rng(5)
    split_rng.permutation(60)  # the one shuffle drawn before the folds
    folds = np.array_split(split_rng.permutation(60), 5)
    skills = []
    for i, test in enumerate(folds):
        train = np.concatenate(folds[:i] + folds[i + 1 :])
        A = scores[train] - scores[train].mean(axis=0)
        beta = np.linalg.solve(
            A.T @ A + 0.1 * len(train) * np.eye(3), A.T @ (y[train] - y[train].mean())
        )
        pred = y[train].mean() + (scores[test] - scores[train].mean(axis=0)) @ beta
        skills.append(1 - np.sum((y[test] - pred) ** 2) / np.sum((y[test] - y[train].mean()) ** 2))
    assert result.model_skill["ridge (lambda=0.1, top 3 components)"] == pytest.approx(
        np.mean(skills), rel=1e-9
    )
