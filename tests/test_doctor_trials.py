"""Trials: the confirmation rule against measured noise, the fixes, seed-to-seed determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nndoctor.doctor.backends.engine import ENGINE, reinitialise
from nndoctor.doctor.context import build_context
from nndoctor.doctor.report import Finding
from nndoctor.doctor.schema import Run
from nndoctor.doctor.trials import FIXES, changed, judge
from nndoctor.nn import SGD, SSE, Dense, ReLU, Sequential, Sigmoid


def test_judge_deterministic_original_needs_gain_beyond_trial_spread():
    confirmed, numbers = judge([2.28], [1.538, 1.556])
    assert confirmed
    assert numbers["gap"] == pytest.approx(2.28 - 1.556)
    assert numbers["spread_after"] == pytest.approx(0.018)
    assert numbers["log_spread_before"] == 0.0


def test_judge_rejects_gains_within_noise_or_below_min_gain():
    assert not judge([1.5, 1.2], [1.12, 0.93])[0]  # the originals' own spread is larger
    assert not judge([1.0], [0.97, 0.97])[0]  # 3% better: under MIN_GAIN
    assert not judge([1.0], [0.1, 0.8])[0]  # the fixed runs disagree more than they gain
    assert not judge([1.0], [0.1, math.inf])[0]  # a trial seed diverged
    assert judge([math.inf, 1e30], [0.2, 0.3])[0]  # the original diverged, the fix did not
    # a blowing-up original varies by orders of magnitude: judged as a ratio
    assert judge([1.5e194, 6.2e202], [0.13, 0.72])[0]
    assert judge([0.5], [0.0, 0.01])[0]  # error rate down to zero


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
    high = Finding("lr-too-high", "error", "t", evidence={"suggested_lr": 0.001})
    slower, change = fix("lr-too-high", high)
    assert slower.optimizer.lr == 0.001 and s.optimizer.lr == 0.1 and "0.001" in change
    assert isinstance(model.layers[1], Dense) and not isinstance(model.layers[1], ReLU)
