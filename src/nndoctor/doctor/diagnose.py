"""Orchestration: pre-flight, the watched training run, the rules, the trials, the report."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from nndoctor.doctor import lazy, preflight
from nndoctor.doctor.backends import backend_for
from nndoctor.doctor.backends.engine import ENGINE, Recorder
from nndoctor.doctor.context import build_context, fitted_bounds, full_bounds
from nndoctor.doctor.report import Report, rank
from nndoctor.doctor.rules import RULES, run_rules
from nndoctor.doctor.schema import AUTOENCODER, Context, Probes, Run
from nndoctor.doctor.trials import run_trials
from nndoctor.nn import History, Loss, Optimizer, Sequential, TrainState
from nndoctor.nn.train import check_run


def engine_run(
    model: Sequential,
    X: Any,
    Y: Any,
    loss: Loss | str,
    optimizer: Optimizer,
    epochs: int,
    batch_size: int | None,
    shuffle: bool,
    seed: int,
) -> Run:
    """The :class:`Run` of an engine model, validated as ``train`` would (``Y=None``: X)."""
    loss, Xv, Yv, epochs, bs = check_run(
        model, X, Y, loss, optimizer, epochs, batch_size, seed=seed, min_samples=2
    )
    if Y is None:
        Yv = Xv
    if not model.named_parameters():
        raise ValueError("the model has no parameters (no Dense layer) to train")
    # a copy: the doctor's forward passes must not touch the user's model
    return Run(ENGINE, model.copy(), Xv, Yv, loss, optimizer, epochs, bs, shuffle, seed)


class Doctor(Recorder):
    """A training callback that watches a run and reports on it.

    ``train(model, X, Y, ..., callbacks=[doctor])`` then ``doctor.report()``. The callback
    records probes (see :mod:`nndoctor.doctor.recorder`); the report adds bounds and the rules.
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
        run = Run(
            ENGINE,
            state.model,
            state.X,
            state.Y,
            state.loss,
            state.optimizer,
            state.epochs,
            state.batch_size,
            shuffle=None,  # type: ignore[arg-type]  # the callback cannot see it
            seed=self.seed,
        )
        self._context = build_context(run)

    def report(self, history: History | None = None) -> Report:
        """The ranked findings of the run watched last."""
        if self.probes is None:
            raise RuntimeError(
                "the Doctor has not watched a training run yet: pass it to "
                "train(..., callbacks=[doctor]) first"
            )
        return make_report(
            self.probes, self._context, None if history is None else history.wall_time
        )


def make_report(
    probes: Probes, ctx: Context, train_seconds: float | None, rules: tuple = RULES
) -> Report:
    """Run ``rules`` on what was recorded and wrap the findings in a :class:`Report`."""
    findings = run_rules(probes, ctx, rules)
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
    if train_seconds is not None:
        summary["train_seconds"] = train_seconds
    return Report(findings, summary, dict(ctx.bounds), dict(ctx.preflight), probes.as_dict())


def deferred_checks(
    run: Run, probes: Probes, ctx: Context, lap: Callable[[str], None]
) -> dict[str, str]:
    """Run the costly checks a recorded run still needs (:mod:`nndoctor.doctor.lazy`) into
    ``ctx``, or skip them: ``{check: why}`` for those skipped, the reason added to the bounds'
    text too. Run, they give what they would have given up front (bit-identical bounds)."""
    reason = lazy.skip_reason(probes, ctx)
    if reason is None:
        ctx.bounds = full_bounds(run, ctx)
        lap("bounds")
        # the same place in the dict as when run up front: after zeroed_inputs
        ctx.preflight = {**ctx.preflight, "tiny_batch": preflight.tiny_batch(run, ctx)}
        lap("preflight")
        return {}
    fitted = fitted_bounds(len(run.X), int(np.prod(run.X.shape[1:])), ctx.task)
    # a loss without a baseline gets no fitted bound either way: nothing was skipped there
    skipped = {
        k: reason
        for k in lazy.SKIPPABLE
        if k == "tiny_batch" or (k in fitted and "baseline" in ctx.bounds)
    }
    names = [lazy.SKIPPABLE[k] for k in skipped]
    words = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
    sentence = f"skipped {words} because {reason}"
    ctx.bounds["text"] = "; ".join(t for t in (ctx.bounds.get("text"), sentence) if t)
    return skipped


def diagnose(
    model: Any,
    X: Any,
    Y: Any = None,
    *,
    loss: Any,
    optimizer: Any,
    epochs: int,
    batch_size: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
    trials: bool = True,
    progress: bool | None = None,
    device: Any = None,
    zero_grad: bool = True,
    scheduler: Any = None,
) -> Report:
    """Train a copy of ``model``, watch it, and say why it does (not) learn.

    Parameters
    ----------
    model : nndoctor.nn.Sequential or torch.nn.Module
        Left untouched: the doctor trains deep copies.
    X : array_like, shape (n, in_features), or a torch DataLoader / iterable of
        ``(inputs, targets)`` batches (then ``Y`` is None)
    Y : array_like, shape (n, out_features) or (n,) labels for CrossEntropy; None = X
        (an autoencoder).
    loss : Loss or str (engine); a torch loss module or a callable
        ``(output, target) -> scalar tensor`` (PyTorch)
    optimizer : nndoctor.nn optimiser (its settings are used on fresh copies); for PyTorch a
        factory ``params -> torch.optim.Optimizer``, e.g. ``lambda p: torch.optim.Adam(p)``
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
    device : str or torch.device, optional
        PyTorch only: where the copies train (default: where the model's parameters are).
    zero_grad : bool
        PyTorch only: False reproduces a loop that never calls ``optimizer.zero_grad()``.
    scheduler : callable, optional
        PyTorch only: a factory ``optimizer -> LR scheduler``, stepped once per epoch.

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
    backend = backend_for(model)
    if backend is ENGINE:
        if zero_grad is not True or scheduler is not None or device is not None:
            raise TypeError("zero_grad, scheduler and device apply to PyTorch models only")
        run = engine_run(model, X, Y, loss, optimizer, epochs, batch_size, shuffle, seed)
    else:
        run = backend.prepare(
            model, X, Y, loss, optimizer, epochs, batch_size, shuffle, seed, device,
            zero_grad=zero_grad, scheduler=scheduler,
        )  # fmt: skip
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(part: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[part], clock = seconds.get(part, 0.0) + now - clock, now

    # a backend that defers the costly checks runs them after the recorded run, when needed
    defer = backend.deferred_checks
    ctx = build_context(run, fits=not defer)  # the bounds (and the data statistics)
    lap("bounds")
    ctx.gradcheck = backend.gradient_check(run)
    lap("gradcheck")
    ctx.preflight = preflight.run_all(run, ctx, tiny=not defer)
    lap("preflight")

    probes, fit = backend.record(run, progress)
    lap("train")
    skipped = deferred_checks(run, probes, ctx, lap) if defer else {}
    report = make_report(probes, ctx, fit.wall_time)
    if skipped:
        report.summary["skipped"] = skipped
    lap("rules")
    if trials:
        run_trials(
            report.findings,
            run,
            probes.epoch_loss,
            ctx,
            run_seconds=fit.wall_time,
            progress=progress,
        )
        report.findings = rank(report.findings)  # trial verdicts outweigh thresholds
        lap("trials")
    report.summary["autoencoder"] = ctx.task == AUTOENCODER
    report.summary["seconds"] = seconds
    report.summary["diagnose_seconds"] = time.perf_counter() - start
    return report
