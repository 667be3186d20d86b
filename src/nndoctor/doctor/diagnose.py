"""Orchestration: pre-flight, the watched training run, the rules, the trials, the report."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from nndoctor.doctor import preflight
from nndoctor.doctor.context import (
    AUTOENCODER,
    Context,
    compute_bounds,
    data_stats,
    describe_model,
    describe_optimizer,
    is_autoencoder,
    loss_name,
    task_of,
)
from nndoctor.doctor.probes import PROBE_ROWS, Probes, Recorder
from nndoctor.doctor.report import Report, rank
from nndoctor.doctor.rules import run_rules
from nndoctor.doctor.trials import Setup, run_trials
from nndoctor.gradcheck import check_gradients
from nndoctor.nn import BCE, History, Loss, Optimizer, Sequential, TrainState, train
from nndoctor.nn.train import check_run

# rows and parameters for the finite-difference check (its cost grows with their product)
GRADCHECK_ROWS = 16
GRADCHECK_MAX_PARAMETERS = 2000
# rows searched for well-conditioned ones (a forward pass over all of X costs n x width)
GRADCHECK_SCAN_ROWS = 4096
# BCE predictions this close to 0 or 1 are left out of the check (gradcheck's own limit)
GRADCHECK_SATURATED = 1e-8


def build_context(
    model: Sequential,
    X: np.ndarray,
    Y: np.ndarray,
    loss: Loss,
    optimizer: Optimizer,
    batch_size: int | None,
    seed: int,
    shuffle: bool | None = None,
) -> Context:
    """Architecture, data statistics and bounds, as plain data (``shuffle``: None when the
    training loop does not say)."""
    task = task_of(loss, is_autoencoder(X, Y))
    specs = describe_model(model)
    widths = [s.out_features for s in specs if s.kind == "dense"]
    return Context(
        layers=specs,
        loss_name=loss_name(loss),
        optimizer=describe_optimizer(optimizer),
        task=task,
        data=data_stats(X, Y, task),
        bounds=compute_bounds(X, Y, loss, batch_size, task, widths[:-1], seed),
        shuffle=shuffle,
    )


def _checkable_rows(model: Sequential, X: np.ndarray, loss: Loss) -> np.ndarray:
    """Rows where the loss is differentiable in floating point: finite predictions, and for
    BCE none within ``GRADCHECK_SATURATED`` of 0 or 1, where the loss is clamped (its slope
    is 0 there while the formula's is not) or computed from ``1 - p`` with few digits."""
    X = X[:GRADCHECK_SCAN_ROWS]  # enough to find GRADCHECK_ROWS good rows; bounds memory
    with np.errstate(all="ignore"):
        P = model.copy().forward(X)  # (n, out)
    ok = np.all(np.isfinite(P), axis=1)
    if isinstance(loss, BCE):
        ok &= np.all(np.minimum(P, 1.0 - P) >= GRADCHECK_SATURATED, axis=1)
    return np.flatnonzero(ok)


def gradient_check(model: Sequential, X: np.ndarray, Y: np.ndarray, loss: Loss) -> dict | None:
    """Finite-difference check of the backward pass on a few well-conditioned rows; None when
    too costly or when no row has a loss with a derivative to check."""
    if model.n_parameters > GRADCHECK_MAX_PARAMETERS:
        return None
    rows = _checkable_rows(model, X, loss)[:GRADCHECK_ROWS]
    if not rows.size:
        return None
    try:
        result = check_gradients(model, X[rows], Y[rows], loss, autograd=False)
    except ValueError:
        # the loss is not finite a step away from the weights (BCE on outputs leaving [0, 1])
        return None
    # The worst *failing* tensor: a passing one can show a larger relative error on elements
    # near 0 that pass on the absolute tolerance.
    candidates = [result.parameters[name] for name in result.failed] or list(
        result.parameters.values()
    )
    worst = max(candidates, key=lambda c: c.max_abs_error)
    return {
        "passed": result.passed,
        "failed": result.failed,
        "worst": worst.name,
        "worst_index": list(worst.worst_index),
        "analytic": worst.analytic,
        "numeric": worst.numeric,
        "max_rel_error": worst.max_rel_error,
    }


class Doctor(Recorder):
    """A training callback that watches a run and reports on it.

    ``train(model, X, Y, ..., callbacks=[doctor])`` then ``doctor.report()``. The callback
    records probes (see :mod:`nndoctor.doctor.probes`); the report adds bounds and the rules.
    Pre-flight checks and trials need extra training runs: use :func:`diagnose` for those.

    Parameters
    ----------
    probe_rows : int
        Rows of the fixed probe batch.
    seed : int
        Picks the probe rows and seeds the predictability test.
    """

    def on_train_begin(self, state: TrainState) -> None:
        super().on_train_begin(state)
        self._state = state
        self._context = build_context(
            state.model,
            state.X,
            state.Y,
            state.loss,
            state.optimizer,
            state.batch_size,
            self.seed,
        )

    def report(self, history: History | None = None) -> Report:
        """The ranked findings of the run watched last."""
        if self.probes is None:
            raise RuntimeError(
                "the Doctor has not watched a training run yet: pass it to "
                "train(..., callbacks=[doctor]) first"
            )
        return _report(self.probes, self._context, history)


def _report(probes: Probes, ctx: Context, history: History | None) -> Report:
    findings = run_rules(probes, ctx)
    summary = {
        "epochs_run": len(probes.epoch_loss),
        "steps": len(probes.step_loss),
        "final_loss": probes.final_loss,
        "loss": ctx.loss_name,
        "optimizer": ctx.optimizer,
        "task": ctx.task,
        "probes": len(probes.steps),
        "probe_every": probes.probe_every,
    }
    if history is not None:
        summary["train_seconds"] = history.wall_time
    return Report(findings, summary, dict(ctx.bounds), dict(ctx.preflight), probes.as_dict())


def diagnose(
    model: Sequential,
    X: Any,
    Y: Any = None,
    *,
    loss: Loss | str,
    optimizer: Optimizer,
    epochs: int,
    batch_size: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
    trials: bool = True,
    progress: bool | None = None,
) -> Report:
    """Train a copy of ``model``, watch it, and say why it does (not) learn.

    Parameters
    ----------
    model : nndoctor.nn.Sequential
        Left untouched: the doctor trains a deep copy.
    X : array_like, shape (n, in_features)
    Y : array_like, shape (n, out_features) or (n,) labels for CrossEntropy; None = X
        (an autoencoder).
    loss : Loss or str
    optimizer : nndoctor.nn optimiser
        Its settings are used on fresh copies; its state is left untouched.
    epochs : int
    batch_size : int or None
        None = full batch.
    shuffle : bool
    seed : int
        Shuffling, the probe batch, re-initialisations in trials.
    trials : bool
        Re-run training with the fix of each top cause (at most two) to confirm it.
    progress : bool or None
        Progress bar of the main run.

    Returns
    -------
    Report

    Raises
    ------
    ValueError, TypeError
        Before any training: data that does not fit the model, NaN or inf in the data,
        ``epochs`` or ``batch_size`` not a positive integer, an unknown loss or optimiser.
    """
    start = time.perf_counter()
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {seed!r}")
    seed = int(seed)
    loss, Xv, Yv, epochs, bs = check_run(
        model, X, Y, loss, optimizer, epochs, batch_size, seed=seed, min_samples=2
    )
    model = model.copy()  # the user's model is never run: its weights and caches stay as given
    if Y is None:
        Yv = Xv
    if not model.named_parameters():
        raise ValueError("the model has no parameters (no Dense layer) to train")

    ctx = build_context(model, Xv, Yv, loss, optimizer, batch_size, seed, shuffle)
    ctx.gradcheck = gradient_check(model, Xv, Yv, loss)
    ctx.preflight = {
        "init": preflight.init_loss(model, Xv, Yv, loss, bs),
        "zeroed_inputs": preflight.zeroed_inputs(
            model, Xv, Yv, loss, optimizer, epochs, bs, shuffle, seed
        ),
        "tiny_batch": preflight.tiny_batch(model, Xv, Yv, loss, seed),
    }
    ctx.preflight["init"]["baseline"] = ctx.bounds.get("baseline", math.nan)

    work = model.copy()
    recorder = Recorder(PROBE_ROWS, seed)
    history = train(
        work,
        Xv,
        Yv,
        loss=loss,
        optimizer=optimizer.fresh(),
        epochs=epochs,
        batch_size=bs,
        shuffle=shuffle,
        seed=seed,
        callbacks=[recorder],
        progress=progress,
    )
    assert recorder.probes is not None
    report = _report(recorder.probes, ctx, history)
    if trials:
        setup = Setup(model, Xv, Yv, loss, optimizer, epochs, bs, shuffle, seed)
        run_trials(report.findings, setup, recorder.probes.epoch_loss, ctx)
        report.findings = rank(report.findings)  # a cause refuted by its trial moves down
    report.summary["autoencoder"] = ctx.task == AUTOENCODER
    report.summary["diagnose_seconds"] = time.perf_counter() - start
    return report
