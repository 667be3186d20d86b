"""diagnose's costly checks follow the need (nndoctor.doctor.lazy): a PyTorch run that clearly
learned skips the fitted bounds and the tiny-batch fit and says so; a stuck one gets them,
bit-identical to running them up front; the engine keeps them up front.

The expected numbers (the constant baseline, the best affine map) are computed here with
NumPy, never read back from the doctor.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import nndoctor
from _torch_cases import mlp, regression
from nndoctor.doctor import lazy
from nndoctor.doctor.context import build_context, compute_bounds, fitted_bounds
from nndoctor.doctor.schema import AUTOENCODER, REGRESSION, LossSpec
from nndoctor.render.terminal import plain_text

COSTLY = {"least_squares", "predictability", "tiny_batch"}


def _diagnose(torch, model, X, y, lr: float):
    return nndoctor.diagnose(
        model, X, y, loss=torch.nn.MSELoss(), optimizer=lambda p: torch.optim.SGD(p, lr=lr),
        epochs=30, batch_size=50, trials=False, progress=False,
    )  # fmt: skip


def _plain(report) -> dict:
    """The report as data, without the timings (which differ from call to call)."""
    d = report.to_dict()
    for key in ("seconds", "train_seconds", "diagnose_seconds"):
        d["summary"].pop(key, None)
    return d


def _up_front(monkeypatch):
    from nndoctor.backends.torch import TORCH

    monkeypatch.setattr(TORCH, "deferred_checks", False)


def test_a_learned_run_skips_the_costly_checks_and_the_report_says_why(torch, nn, monkeypatch):
    X, y = regression()
    report = _diagnose(torch, mlp(torch, nn), X, y, lr=0.1)
    # independently: the constant baseline of MSE is the targets' variance
    baseline = float(np.mean((y - y.mean()) ** 2))
    assert report.bounds["baseline"] == pytest.approx(baseline, rel=1e-9)
    assert report.summary["final_loss"] <= lazy.LEARNED_SHARE * baseline  # it did learn
    assert set(report.summary["skipped"]) == COSTLY
    assert "least_squares" not in report.bounds and "predictability" not in report.bounds
    assert set(report.preflight) == {"init", "zeroed_inputs"}
    # in words, where the bounds are shown (verbose terminal, HTML)
    text = report.bounds["text"]
    assert "skipped the best affine map, the predictability test and the tiny-batch" in text
    assert f"of the constant baseline {baseline:.4g}" in text
    verbose = " ".join(plain_text(report, verbosity=2).split())
    assert "Bounds: best constant" in verbose and "skipped the best affine map" in verbose
    # the checks run up front change no finding here, and they did run there
    _up_front(monkeypatch)
    full = _diagnose(torch, mlp(torch, nn), X, y, lr=0.1)
    assert set(full.bounds) | set(full.preflight) >= COSTLY
    assert "skipped" not in full.summary
    assert [(f.code, f.severity) for f in report.findings] == [
        (f.code, f.severity) for f in full.findings
    ]


def test_a_stuck_run_gets_every_check_bit_identical_to_up_front(torch, nn, monkeypatch):
    X, y = regression()
    report = _diagnose(torch, mlp(torch, nn), X, y, lr=1e-5)
    assert "skipped" not in report.summary
    assert report.preflight["tiny_batch"]["steps"] > 0
    # the best affine map, independently: least squares with an intercept
    A = np.column_stack([X, np.ones(len(X))])
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    assert report.bounds["least_squares"] == pytest.approx(np.mean((A @ coef - y) ** 2), rel=1e-8)
    assert report.bounds["predictability"]["has_signal"] is True
    _up_front(monkeypatch)
    assert _plain(report) == _plain(_diagnose(torch, mlp(torch, nn), X, y, lr=1e-5))


def _recorded(torch, model, X, y):
    from nndoctor.backends.torch import TORCH

    run = TORCH.prepare(
        model, X, y, loss=torch.nn.MSELoss(), optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
        epochs=30, batch_size=50, shuffle=False, seed=0, options={},
    )  # fmt: skip
    probes, _ = TORCH.record(run, False)
    return probes, build_context(run, fits=False)


def test_the_skip_threshold_is_the_learned_share_of_the_baseline(torch, nn):
    X, y = regression()
    probes, ctx = _recorded(torch, mlp(torch, nn), X, y)
    final = float(probes.epoch_loss[-1])
    assert lazy.skip_reason(probes, ctx) is not None
    # a baseline that puts the final loss just above / just at the share
    ctx.bounds["baseline"] = final / lazy.LEARNED_SHARE * 0.999
    assert lazy.skip_reason(probes, ctx) is None
    ctx.bounds["baseline"] = final / lazy.LEARNED_SHARE
    assert lazy.skip_reason(probes, ctx) is not None
    diverged = dataclasses.replace(probes, diverged={"epoch": 3, "step": 9, "loss": np.inf})
    assert lazy.skip_reason(diverged, ctx) is None


def test_a_net_without_a_nonlinearity_keeps_the_affine_map_its_finding_reads(torch, nn):
    X, y = regression()
    torch.manual_seed(0)
    linear = nn.Sequential(nn.Linear(5, 16), nn.Linear(16, 1))
    probes, ctx = _recorded(torch, linear, X, y)
    # it learned (an affine map fits these targets well) yet keeps every check
    assert probes.epoch_loss[-1] <= lazy.LEARNED_SHARE * ctx.bounds["baseline"]
    assert lazy.skip_reason(probes, ctx) is None


def test_the_engine_keeps_every_check_up_front():
    from nndoctor.nn import SGD, mlp

    X, y = regression(100)
    model = mlp([5, 16, 1], seed=0)
    report = nndoctor.diagnose(
        model, X, y, loss="mse", optimizer=SGD(lr=0.1), epochs=30, batch_size=20,
        trials=False, progress=False,
    )  # fmt: skip
    assert report.summary["final_loss"] <= lazy.LEARNED_SHARE * report.bounds["baseline"]
    assert "skipped" not in report.summary
    assert {"least_squares", "predictability"} <= set(report.bounds)
    assert "tiny_batch" in report.preflight


@pytest.mark.parametrize(("n", "d"), [(12, 3), (19, 18), (20, 18), (20, 19), (30, 40)])
def test_fitted_bounds_names_what_compute_bounds_fits(n, d):
    rng = np.random.default_rng(n + d)
    X, Y = rng.normal(size=(n, d)), rng.normal(size=(n, 1))
    got = compute_bounds(X, Y, LossSpec("mse"), None, REGRESSION, [4], seed=0)
    fitted = {"least_squares", "predictability"} & set(got)
    assert set(fitted_bounds(n, d, REGRESSION)) == fitted
    # the affine map needs more rows than its d + 1 parameters; the test 20 rows
    assert ("least_squares" in fitted) == (n > d + 1)
    assert ("predictability" in fitted) == (n >= 20)
    left = compute_bounds(X, Y, LossSpec("mse"), None, REGRESSION, [4], seed=0, fits=False)
    assert left["baseline"] == got["baseline"] and not {"least_squares", "predictability"} & set(
        left
    )
    assert fitted_bounds(n, d, AUTOENCODER) == []
