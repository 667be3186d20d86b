"""The fitted checks follow a budget (nndoctor.doctor.context): the predictability test, then
the best affine map, each run only when its estimated cost fits what is left of
max(FITS_FLOOR, the training run's arithmetic); a skipped one is named, with the reason, in the
bounds and their text. Every catalog and held-out case stays under the floor (see
benchmarks/README.md), so the budget changes nothing there.
"""

from __future__ import annotations

import numpy as np
import pytest

import nndoctor
from nndoctor.backends.engine import ENGINE
from nndoctor.bounds._fits import least_squares_flops
from nndoctor.bounds._signal import predictability_flops
from nndoctor.doctor import context
from nndoctor.doctor.context import PREDICTABILITY_ROWS, compute_bounds
from nndoctor.doctor.schema import CLASSIFICATION, LossSpec
from nndoctor.nn import SGD, CrossEntropy, mlp


def engine_run(model, X, Y, loss, optimizer, epochs, batch_size, shuffle, seed):
    return ENGINE.prepare(
        model, X, Y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
        shuffle=shuffle, seed=seed, options={},
    )  # fmt: skip


def _classes(n: int = 300, d: int = 5, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    labels = np.argmax(X @ rng.normal(size=(d, k)) + rng.gumbel(size=(n, k)), axis=1)
    return X, labels


def _bounds(X, labels, budget):
    spec = LossSpec("cross_entropy")
    return compute_bounds(X, labels, spec, None, CLASSIFICATION, [8], 0, budget=budget)


def test_without_a_budget_or_within_it_every_check_runs_as_before():
    X, labels = _classes()
    free = _bounds(X, labels, None)
    cost = predictability_flops(300, 5, 3, max_samples=PREDICTABILITY_ROWS)
    cost += least_squares_flops(300, 5, 3, CrossEntropy())
    within = _bounds(X, labels, cost)
    assert {"least_squares", "predictability"} <= set(free)
    assert within == free and "skipped" not in within


def test_the_predictability_test_has_the_first_claim_on_the_budget():
    X, labels = _classes()
    test_cost = predictability_flops(300, 5, 3, max_samples=PREDICTABILITY_ROWS)
    fit_cost = least_squares_flops(300, 5, 3, CrossEntropy())
    out = _bounds(X, labels, test_cost + 0.5 * fit_cost)
    assert "predictability" in out and "least_squares" not in out
    assert set(out["skipped"]) == {"least_squares"}
    assert "skipped the best affine map: it would take about" in out["text"]
    # too little for the test, enough for the fit: the fit runs
    out = _bounds(X, labels, min(fit_cost, 0.5 * test_cost))
    assert "least_squares" in out and "predictability" not in out
    assert "skipped the predictability test" in out["text"]
    assert out["baseline"] == _bounds(X, labels, None)["baseline"]


def test_the_budget_is_the_training_runs_arithmetic_or_the_floor(monkeypatch):
    X, labels = _classes(n=200)
    model = mlp([5, 16, 3], seed=0)
    params = 5 * 16 + 16 + 16 * 3 + 3  # counted by hand
    run = engine_run(model, X, labels, CrossEntropy(), SGD(lr=0.1), 7, 20, False, 0)
    assert context.training_flops(run) == 6.0 * params * 200 * 7
    assert context.fits_budget(run) == context.FITS_FLOOR
    monkeypatch.setattr(context, "FITS_FLOOR", 0.0)
    assert context.fits_budget(run) == pytest.approx(6.0 * params * 200 * 7)


def test_diagnose_on_a_run_too_small_for_its_checks_says_what_it_skipped(monkeypatch):
    monkeypatch.setattr(context, "FITS_FLOOR", 0.0)
    monkeypatch.setattr(context, "FITS_SHARE", 1e-6)
    X, labels = _classes(n=200)
    report = nndoctor.diagnose(
        mlp([5, 16, 3], seed=0), X, labels, loss=CrossEntropy(), optimizer=SGD(lr=0.1),
        epochs=5, batch_size=20, trials=False, progress=False,
    )  # fmt: skip
    assert set(report.bounds["skipped"]) == {"least_squares", "predictability"}
    assert "least_squares" not in report.bounds and "predictability" not in report.bounds
    assert "skipped the predictability test" in report.bounds["text"]
    assert report.bounds["baseline"] == pytest.approx(np.log(3), rel=0.05)


@pytest.mark.parametrize(
    ("epochs", "fitted_epochs", "rows"), [(2, 1, 40), (4, 1, 80), (30, 3, 200)]
)
def test_the_zeroed_input_run_takes_a_tenth_of_the_steps(monkeypatch, epochs, fitted_epochs, rows):
    from nndoctor.doctor import preflight

    X, labels = _classes(n=200)
    run = engine_run(mlp([5, 16, 3], seed=0), X, labels, CrossEntropy(), SGD(lr=0.1), epochs, 20,
                     True, 0)  # fmt: skip
    seen = []
    fit = ENGINE.fit

    def spy(r, n_epochs, seed):
        seen.append((len(r.X), n_epochs, bool(np.all(r.X == 0))))
        return fit(r, n_epochs, seed)

    monkeypatch.setattr(ENGINE, "fit", spy)
    out = preflight.zeroed_inputs(run)
    assert seen == [(rows, fitted_epochs, True)]
    assert out["epochs"] == fitted_epochs
    # a sample of the rows is named; the whole data set is not
    assert out.get("rows") == (rows if rows < 200 else None)
    # rows * epochs: a tenth of the run's rows * epochs, rounded up
    assert rows * fitted_epochs >= 0.1 * 200 * epochs


def test_the_loss_at_initialisation_of_large_data_comes_from_a_sample_with_its_error_bar():
    from nndoctor.doctor import preflight

    X, labels = _classes(n=preflight.INIT_ROWS + 3000, seed=1)
    run = engine_run(mlp([5, 16, 3], seed=0), X, labels, CrossEntropy(), SGD(lr=0.1), 3, 64,
                     True, 0)  # fmt: skip
    ctx = context.build_context(run, fits=False)
    out = preflight.init_loss(run, ctx)
    whole = ENGINE.loss_value(run, ENGINE.predict(run.model, run.X), run.Y)
    assert out["rows"] == preflight.INIT_ROWS and 0 < out["stderr"] < 0.05 * whole
    # the sample's mean covers the whole data's within its error bar (4 standard errors)
    assert abs(out["loss"] - whole) <= 4 * out["stderr"]
    assert preflight.init_loss(run, ctx) == out  # seeded: the same sample every time
    small = engine_run(mlp([5, 16, 3], seed=0), X[:500], labels[:500], CrossEntropy(),
                       SGD(lr=0.1), 3, 64, True, 0)  # fmt: skip
    assert set(preflight.init_loss(small, ctx)) == {"loss", "ln_classes"}


def _stop_index(curve: np.ndarray, level: float) -> int:
    return int(np.flatnonzero(curve <= level)[0])


def test_an_engine_fit_told_where_to_stop_is_the_full_fit_cut_after_the_first_epoch_there():
    X, labels = _classes(n=120)
    run = engine_run(mlp([5, 16, 3], seed=0), X, labels, CrossEntropy(), SGD(lr=0.5), 40, 20,
                     True, 0)  # fmt: skip
    full = ENGINE.fit(run, 40, 3).epoch_loss
    level = float(np.median(full))
    stopped = ENGINE.fit(run, 40, 3, stop_below=level).epoch_loss
    k = _stop_index(full, level)
    assert 0 < k < 39
    np.testing.assert_array_equal(stopped, full[: k + 1])


def test_a_torch_fit_told_where_to_stop_is_the_full_fit_cut_after_the_first_epoch_there(torch, nn):
    from nndoctor.backends.torch import TORCH

    X, labels = _classes(n=120)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
    run = TORCH.prepare(
        model, X, labels, loss=nn.CrossEntropyLoss(), optimizer=lambda p: torch.optim.SGD(p, 0.5),
        epochs=40, batch_size=20, shuffle=True, seed=0, options={},
    )  # fmt: skip
    full = TORCH.fit(run, 40, 3).epoch_loss
    level = float(np.median(full))
    stopped = TORCH.fit(run, 40, 3, stop_below=level).epoch_loss
    k = _stop_index(full, level)
    assert 0 < k < 39
    np.testing.assert_array_equal(stopped, full[: k + 1])


def test_the_tiny_batch_fit_stops_once_memorised_and_runs_out_its_steps_when_it_cannot():
    from nndoctor.doctor import preflight
    from nndoctor.nn import Dense, ReLU, Sequential

    X, labels = _classes(n=200)
    run = engine_run(mlp([5, 16, 3], seed=0), X, labels, CrossEntropy(), SGD(lr=0.1), 5, 20,
                     True, 0)  # fmt: skip
    ctx = context.build_context(run, fits=False)
    out = preflight.tiny_batch(run, ctx)
    # the constant baseline of the picked rows, independently: the entropy of their labels
    pick = np.sort(np.random.default_rng(0).permutation(200)[: out["rows"]])
    shares = np.bincount(labels[pick], minlength=3) / out["rows"]
    entropy = -sum(p * np.log(p) for p in shares if p > 0)
    assert out["baseline"] == pytest.approx(entropy, rel=1e-12)
    assert out["steps"] < preflight.TINY_STEPS
    assert out["loss"] <= preflight.TINY_MEMORISED * entropy
    # every ReLU dead (biases of -100): no gradient reaches the first layer, nothing is
    # memorised, and the fit runs all its steps
    dead = Sequential(Dense(5, 16, seed=0), ReLU(), Dense(16, 3, seed=1))
    dead.layers[0].params["b"][...] = -100.0
    run = engine_run(dead, X, labels, CrossEntropy(), SGD(lr=0.1), 5, 20, True, 0)
    out = preflight.tiny_batch(run, context.build_context(run, fits=False))
    assert out["steps"] == preflight.TINY_STEPS
    assert out["loss"] > preflight.TINY_MEMORISED * out["baseline"]
