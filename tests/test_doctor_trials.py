"""Trials: the confirmation rule against measured noise, the fixes, seed-to-seed determinism."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from nndoctor import diagnose
from nndoctor.backends.engine.backend import ENGINE, reinitialise
from nndoctor.doctor.codes import CODES
from nndoctor.doctor.context import build_context
from nndoctor.doctor.schema import Run
from nndoctor.doctor.trials import (
    CONFIRMED,
    FIXES,
    MIN_PAIRS,
    REFUTED,
    SKILL_FLOOR,
    UNDECIDED,
    _run_jobs,
    changed,
    judge,
    run_trials,
    skill,
)
from nndoctor.nn import BCE, MSE, SGD, SSE, Dense, ReLU, Sequential, Sigmoid


def test_skill_is_one_minus_metric_over_baseline_floored():
    assert skill(0.25, 2.0) == pytest.approx(0.875)
    assert skill(2.0, 2.0) == 0.0
    assert skill(7.0, 2.0) == SKILL_FLOOR  # 1 - 3.5 = -2.5, floored
    assert skill(math.inf, 2.0) == skill(math.nan, 2.0) == SKILL_FLOOR


def test_judge_an_infinite_loss_that_improves_to_1e25_proves_nothing():
    # both at the floor: no gain on a comparable measure (issue 10, "a confirmed trial that
    # proves nothing")
    verdict, numbers = judge([math.inf, math.inf], [1e25, 3e24], 1.0)
    assert verdict == REFUTED
    assert numbers["gains"] == [0.0, 0.0]


def test_judge_a_diverged_original_fixed_to_a_finite_good_loss_is_confirmed():
    verdict, numbers = judge([math.inf, 1e30], [0.2, 0.3], 1.0)
    assert verdict == CONFIRMED
    # the floor -1 against 1 - 0.2 and 1 - 0.3
    assert numbers["gains"] == pytest.approx([1.8, 1.7])


def test_judge_pairs_cancel_seed_noise():
    # seed 0 ends near 1.5 with or without the fix' gain, seed 1 near 1.2: unpaired, the seeds
    # overlap (1.3 > 1.2); paired, every seed gains 0.2 of a baseline of 2
    verdict, numbers = judge([1.5, 1.2], [1.3, 1.0], 2.0)
    assert verdict == CONFIRMED
    assert numbers["gains"] == pytest.approx([0.1, 0.1])
    assert numbers["sem"] == pytest.approx(0.0, abs=1e-12)


def test_judge_no_change_is_refuted_and_disagreement_is_undecided():
    assert judge([0.679, 0.681], [0.679, 0.681], 1.0)[0] == REFUTED  # loss before = after
    assert judge([1.0], [0.97, 0.98], 1.0)[0] == REFUTED  # 2-3% of the baseline: too small
    assert judge([1.0], [0.1, math.inf], 1.0)[0] == REFUTED  # a changed run diverged
    # gains of 0.9 and 0.02: the mean is worth reporting, one pair is not: add pairs
    verdict, numbers = judge([1.0, 1.0], [0.1, 0.98], 1.0)
    assert verdict == UNDECIDED
    assert numbers["sem"] == pytest.approx(np.std([0.9, 0.02], ddof=1) / math.sqrt(2))
    # a deterministic original pairs with every changed seed
    assert judge([2.28], [1.538, 1.556], 2.28)[0] == CONFIRMED


def test_parallel_trial_runs_equal_the_serial_ones():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    Y = np.tanh(X @ rng.normal(size=(3, 1)))
    model = Sequential(Dense(3, 8, seed=1), ReLU(), Dense(8, 1, seed=2))
    run = Run(ENGINE, model, X, Y, MSE(), SGD(lr=0.05), 5, 8, True, 0)
    jobs = [(replace(run, seed=k), 5, run) for k in range(3)]
    serial = _run_jobs(jobs, 1)
    assert _run_jobs(jobs, 2) == serial  # bit-identical
    assert len({metric for metric, _ in serial}) == 3  # and the seeds differ


def test_trials_stop_at_two_pairs_when_the_verdict_is_clear_and_run_in_full():
    # a zero-initialised ReLU net only learns its output bias; He weights learn the function
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 3))
    Y = np.sin(X @ np.array([[1.0], [-1.0], [0.5]]))
    model = Sequential(Dense(3, 8, init="zeros"), ReLU(), Dense(8, 1, init="zeros"))
    run = Run(ENGINE, model, X, Y, MSE(), SGD(lr=0.1), 40, 10, False, 0)
    ctx = build_context(run)
    curve = ENGINE.fit(run, run.epochs, run.seed).epoch_loss
    f = CODES["symmetric-units"].finding("error", "t")
    run_trials([f], run, curve, ctx, run_seconds=0.01)
    assert f.confirmed and f.trial["verdict"] == CONFIRMED
    assert f.trial["pairs"] == MIN_PAIRS and f.trial["budget"] == "40 of 40 epochs per run"
    # deterministic original: its curve's last epoch is the single "before"
    assert f.trial["before_seeds"] == [curve[-1]]
    base = float(np.mean((Y - Y.mean()) ** 2))
    assert f.trial["skill_before"][0] == pytest.approx(1 - curve[-1] / base, rel=1e-6)


def test_reinitialise_zero_init_is_seed_independent_and_xavier_is_not():
    zero = Sequential(Dense(4, 3, init="zeros"), Sigmoid(), Dense(3, 2, init="zeros"))
    a, b = reinitialise(zero, 1), reinitialise(zero, 2)
    assert all(
        np.array_equal(a.named_parameters()[k], b.named_parameters()[k])
        for k in a.named_parameters()
    )
    x1, x2 = reinitialise(zero, 1, "xavier_uniform"), reinitialise(zero, 2, "xavier_uniform")
    W = x1.named_parameters()["0.W"]
    bound = math.sqrt(6 / (4 + 3))
    assert np.all(np.abs(W) <= bound) and W.std() > 0.1 * bound
    assert not np.array_equal(W, x2.named_parameters()["0.W"])
    assert np.array_equal(zero.named_parameters()["0.W"], np.zeros((3, 4)))  # untouched


def test_fixes_change_one_thing():
    X = np.random.default_rng(0).normal(5.0, 30.0, size=(20, 4))
    Y = X[:, :2] / 30
    model = Sequential(Dense(4, 3), Dense(3, 2), Sigmoid())
    s = Run(ENGINE, model, X, Y, SSE(), SGD(lr=0.1), 10, 5, False, 0)
    ctx = build_context(s)

    def fix(code, finding=None):
        change = FIXES[code](finding, ctx)
        return changed(s, change), change.describe()

    inserted, _ = fix("missing-nonlinearity")
    assert [type(x).__name__ for x in inserted.model.layers] == [
        "Dense",
        "ReLU",
        "Dense",
        "Sigmoid",
    ]
    scaled, _ = fix("unscaled-inputs")
    assert np.allclose(scaled.X.mean(axis=0), 0) and np.allclose(scaled.X.std(axis=0), 1)
    assert scaled.Y is Y and scaled.model is model
    ident, _ = fix("targets-out-of-range")
    assert isinstance(ident.model.layers[-1], Dense)
    # the trial tries the rate the finding suggests, so report and trial name one change
    high = CODES["lr-too-high"].finding("error", "t", evidence={"suggested_lr": 0.001})
    slower, change = fix("lr-too-high", high)
    assert slower.optimizer.lr == 0.001 and s.optimizer.lr == 0.1 and "0.001" in change
    assert isinstance(model.layers[1], Dense) and not isinstance(model.layers[1], ReLU)


def test_bce_on_labels_0_to_9_is_tried_as_crossentropy_with_10_outputs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    labels = np.arange(50) % 10
    model = Sequential(Dense(4, 6, seed=1), ReLU(), Dense(6, 1, seed=2), Sigmoid())
    run = Run(ENGINE, model, X, labels[:, None].astype(float), BCE(), SGD(lr=0.1), 5, 10, True, 0)
    ctx = build_context(run)
    f = CODES["wrong-loss-for-targets"].finding(
        "error",
        "t",
        evidence={"case": "bce-targets-outside-unit-interval"},
    )
    change = FIXES[f.code](f, ctx)
    assert change.describe() == "CrossEntropy loss with 10 outputs"
    tried = changed(run, change)
    assert tried.model.layers[-1].out_features == 10 and type(tried.loss).__name__ == "CrossEntropy"
    assert np.array_equal(tried.Y, labels) and tried.metric == "error rate"
    # real-valued targets outside [0, 1] stay a regression
    run.Y = run.Y + 0.5
    assert FIXES[f.code](f, build_context(run)).describe() == "MSE loss with an identity output"


def test_units_killed_by_the_steps_are_tried_with_a_lower_rate_not_new_weights():
    ctx = build_context(
        Run(
            ENGINE,
            Sequential(Dense(2, 3), ReLU(), Dense(3, 1)),
            np.ones((4, 2)),
            np.ones((4, 1)),
            MSE(),
            SGD(lr=0.1),
            1,
            4,
            False,
            0,
        )
    )
    killed = CODES["dead-units"].finding(
        "error", "t", evidence={"dead_from_start": False, "suggested_lr": 0.01}
    )
    assert FIXES["dead-units"](killed, ctx).describe() == "learning rate 0.01"
    born = CODES["dead-units"].finding("error", "t", evidence={"dead_from_start": True})
    assert FIXES["dead-units"](born, ctx).describe() == "re-initialise with he_uniform"


def test_the_report_says_where_the_time_went():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    model = Sequential(Dense(2, 4, seed=1), ReLU(), Dense(4, 1, seed=2))
    report = diagnose(model, X, X[:, :1], loss=MSE(), optimizer=SGD(lr=0.05), epochs=3)
    seconds = report.summary["seconds"]
    assert set(seconds) == {"bounds", "gradcheck", "preflight", "train", "rules", "trials"}
    assert all(v >= 0 for v in seconds.values())
    assert sum(seconds.values()) <= report.summary["diagnose_seconds"]
