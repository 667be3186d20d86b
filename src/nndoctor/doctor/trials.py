"""Trials: re-run training from scratch with ONE change, same seed and budget, and judge the
gain against measured seed-to-seed noise.

The noise is measured, not assumed: the trial runs with two seeds, and so does the original
setup (its layers re-initialised with their own initialisers under another seed) unless a
different seed provably gives the same run (a constant init and no shuffling: spread 0).
A fix is ``confirmed`` only when the worst trial seed beats the best original seed by more
than ``NOISE_FACTOR`` times that noise and by at least ``MIN_GAIN`` of the loss.

Trials are the expensive part, so at most ``MAX_TRIALS`` causes are tried, and all trial runs
together get ``TRIAL_COST`` times the steps of the original run; when that is less than full
budget each, every run (original and trial alike) uses the same shortened budget and the
evidence says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from nndoctor.doctor.backends import Fit
from nndoctor.doctor.changes import (
    Change,
    InsertActivation,
    LearningRate,
    MapTargets,
    Reinit,
    RemoveOutputActivation,
    ReplaceActivations,
    ReplaceLoss,
    ReplaceOutput,
    SetOption,
    Shuffle,
    Standardize,
)
from nndoctor.doctor.report import Finding
from nndoctor.doctor.rules.setup import UNSCALED_MAX
from nndoctor.doctor.schema import Context, Run

MAX_TRIALS = 2
SEEDS = 2
TRIAL_COST = 1.2
NOISE_FACTOR = 2.0
MIN_GAIN = 0.05


def hidden_init(ctx: Context) -> str:
    """He for ReLU nets, Xavier otherwise: what an expert re-initialises with."""
    return "he_uniform" if any(s.kind == "relu" for s in ctx.layers) else "xavier_uniform"


# --- the fixes: each proposes one change for a finding, or None when none applies ---

Fix = Callable[[Finding, Context], Change | None]


def _fix_reinit(f: Finding, ctx: Context) -> Change | None:
    return Reinit(hidden_init(ctx))


def _fix_lr(f: Finding, ctx: Context) -> Change | None:
    # the rate the finding suggests, so the report's fix and its trial are the same change
    lr = f.evidence.get("suggested_lr")
    return LearningRate(lr) if lr is not None and lr > 0 else None


def _fix_identity_output(f: Finding, ctx: Context) -> Change | None:
    out = ctx.output_activation
    return None if out == "identity" else ReplaceOutput("identity", replaced=out)


def _fix_loss(f: Finding, ctx: Context) -> Change | None:
    case = f.evidence.get("case")
    out = ctx.output_activation
    if case == "softmax-before-cross-entropy" and out == "softmax":
        return RemoveOutputActivation("Softmax")
    if case == "softmax-one-output" and out == "softmax":
        return ReplaceOutput("sigmoid", replaced="softmax")
    if case == "bce-two-labels-outside-unit-interval":
        return MapTargets(float(ctx.data.y_min.min()), float(ctx.data.y_max.max()))
    if case == "bce-targets-outside-unit-interval":
        return ReplaceLoss("mse")
    if case == "bce-without-sigmoid":
        return ReplaceOutput("sigmoid")
    return None


def _fix_unsquash(f: Finding, ctx: Context) -> Change | None:
    if f.evidence.get("small_init"):
        # not the activation's derivative: weights too small shrink the signal
        return _fix_reinit(f, ctx)
    kinds = [s.kind for s in ctx.layers]
    last_dense = max(i for i, k in enumerate(kinds) if k == "dense")
    if not any(k in ("sigmoid", "tanh") for k in kinds[:last_dense]):
        return _fix_reinit(f, ctx)
    return ReplaceActivations()


def _fix_saturated(f: Finding, ctx: Context) -> Change | None:
    # inputs the unscaled-inputs rule calls unscaled (pixels 0-255 too, whose max is only a
    # few stds) saturate any init: scale them; unit-scale inputs saturate a too-large init
    if ctx.data.x_absmax > UNSCALED_MAX:
        return Standardize("inputs")
    return _fix_reinit(f, ctx)


FIXES: dict[str, Fix] = {
    "unshuffled-data": lambda f, ctx: Shuffle(),
    "symmetric-units": _fix_reinit,
    "dead-units": _fix_reinit,
    "saturated-units": _fix_saturated,
    "vanishing-gradients": _fix_unsquash,
    "exploding-gradients": _fix_reinit,
    "lr-too-high": _fix_lr,
    "lr-too-low": _fix_lr,
    "unscaled-inputs": lambda f, ctx: Standardize("inputs"),
    "unscaled-targets": lambda f, ctx: Standardize("targets"),
    "targets-out-of-range": _fix_identity_output,
    "wrong-loss-for-targets": _fix_loss,
    "missing-nonlinearity": lambda f, ctx: InsertActivation("relu"),
    # PyTorch loop faults: the backend's loop settings
    "stale-gradients": lambda f, ctx: SetOption("zero_grad", True, "zero the gradients every step"),
    "loss-shape-broadcast": lambda f, ctx: SetOption(
        "reshape_target", True, "give the target the prediction's shape"
    ),
    "eval-mode-training": lambda f, ctx: SetOption("train_mode", True, "train in train() mode"),
    "lr-schedule-collapse": lambda f, ctx: SetOption("scheduler", None, "no LR scheduler"),
    "frozen-parameters": lambda f, ctx: SetOption(
        "unfreeze", True, "train every parameter (requires_grad, in the optimizer)"
    ),
    "double-activation": lambda f, ctx: RemoveOutputActivation(
        str(f.evidence.get("output_activation", "softmax"))
    ),
}


def changed(run: Run, change: Change) -> Run | None:
    """``run`` with ``change`` made by its backend and judged by the change's metric."""
    out = run.backend.apply(run, change)
    return None if out is None else replace(out, metric=change.metric)


# --- running and judging ---


def _score(s: Run, fit: Fit, original: Run) -> float:
    """The trial metric for a trained run: the final epoch loss, or, when the fix changes the
    loss or the targets' units, a metric both runs share (on the original data)."""
    if fit.diverged is not None:
        return math.inf
    if s.metric == "loss" and s.unscale is None:
        return fit.final_loss
    with np.errstate(all="ignore"):
        P = s.backend.predict(fit.model, s.X)
    if s.unscale is not None:
        P = s.unscale(P)
    if not np.all(np.isfinite(P)):
        return math.inf
    if s.metric == "error rate":
        labels = original.Y.reshape(len(original.Y), -1)[:, 0].astype(np.intp)
        return float(np.mean(P.argmax(axis=1) != labels))
    if s.metric == "mse":
        return float(np.mean((P - original.Y.reshape(P.shape)) ** 2))
    return original.backend.loss_value(original, P, original.Y)


def _run(s: Run, epochs: int, seed: int, original: Run) -> float:
    return _score(s, s.backend.fit(s, epochs, seed), original)


def _spread(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(max(finite) - min(finite)) if len(finite) > 1 else 0.0


def judge(before: list[float], after: list[float]) -> tuple[bool, dict[str, float]]:
    """Is every trial seed clearly better than every original seed?

    With ``gap = min(before) - max(after)``, confirmed when all three hold:

    - ``gap > MIN_GAIN * min(before)``: a gain worth reporting;
    - ``gap > NOISE_FACTOR * spread(after)``: beyond the fixed runs' own seed-to-seed spread;
    - ``log(min(before) / max(after)) > NOISE_FACTOR * log-spread(before)``: beyond the
      original's spread, measured as a ratio because a blowing-up original varies by orders
      of magnitude between seeds.

    Returns
    -------
    confirmed : bool
    numbers : dict
        ``gap``, ``spread_after``, ``log_gap``, ``log_spread_before``.
    """
    numbers = {"gap": math.nan, "spread_after": _spread(after), "log_gap": math.nan,
               "log_spread_before": math.nan}  # fmt: skip
    if not all(math.isfinite(a) for a in after):
        return False, numbers
    best_before, worst_after = min(before), max(after)
    if not math.isfinite(best_before):
        return True, numbers  # the original diverged at this budget, the fix did not
    tiny = 1e-300
    logs = [math.log(max(b, tiny)) for b in before if math.isfinite(b)]
    numbers["gap"] = gap = best_before - worst_after
    numbers["log_gap"] = log_gap = math.log(max(best_before, tiny)) - math.log(
        max(worst_after, tiny)
    )
    numbers["log_spread_before"] = log_spread = max(logs) - min(logs)
    confirmed = (
        gap > MIN_GAIN * abs(best_before)
        and gap > NOISE_FACTOR * numbers["spread_after"]
        and log_gap > NOISE_FACTOR * log_spread
    )
    return confirmed, numbers


def run_trials(
    findings: list[Finding],
    original: Run,
    original_epoch_loss: np.ndarray,
    ctx: Context,
    *,
    max_trials: int = MAX_TRIALS,
    cost: float = TRIAL_COST,
) -> None:
    """Try the fixes of the top causes; fill ``confirmed`` and ``trial`` in place.

    Seed ``k`` of a trial applies the fix to the original run re-initialised with seed
    ``seed + k`` (``k = 0``: the user's own weights), exactly as the original's seeds are.
    A fix the backend cannot make is named in ``evidence["trial_skipped"]``.
    """
    backend = original.backend
    bases = [original] + [
        replace(backend.reinitialise(original, original.seed + k), seed=original.seed + k)
        for k in range(1, SEEDS)
    ]
    planned: list[tuple[Finding, Change, list[Run]]] = []
    same_fix: list[tuple[Finding, Finding]] = []  # (finding, the planned one with its fix)
    for f in findings:
        if f.kind != "cause" or f.severity == "info" or f.code not in FIXES:
            continue
        change = FIXES[f.code](f, ctx)
        if change is None:
            continue
        runs = [changed(base, change) for base in bases]
        if not all(r is not None for r in runs):
            f.evidence["trial_skipped"] = (
                f"{change.describe()}: the {backend.name} backend cannot make this change"
            )
            continue
        twin = next((p for p, c, _ in planned if c.describe() == change.describe()), None)
        if twin is not None:
            same_fix.append((f, twin))
        elif len(planned) < max_trials:
            planned.append((f, change, runs))  # type: ignore[arg-type]
    if not planned:
        return
    deterministic = not original.shuffle and backend.same_weights(bases[1], original)
    n_runs = SEEDS * len(planned) + (0 if deterministic else SEEDS - 1)
    epochs = max(1, min(original.epochs, math.floor(original.epochs * cost / n_runs)))
    budget = f"{epochs} of {original.epochs} epochs per run"
    before_runs: dict[str, tuple[list[float], str]] = {}
    for f, change, runs in planned:
        metric = change.metric
        if metric not in before_runs:
            before_runs[metric] = _before(bases, epochs, metric, original_epoch_loss, deterministic)
        before, note = before_runs[metric]
        after = [_run(run, epochs, run.seed, original) for run in runs]
        confirmed, numbers = judge(before, after)
        f.confirmed = confirmed
        f.trial = {
            "change": change.describe(),
            "metric": metric,
            "loss_before": float(np.mean(before)),
            "loss_after": float(np.mean(after)),
            "before_seeds": [float(b) for b in before],
            "after_seeds": [float(a) for a in after],
            "noise": max(_spread(before), _spread(after)),
            **numbers,
            "budget": budget,
            "noise_note": note,
        }
    for f, twin in same_fix:
        f.confirmed, f.trial = twin.confirmed, twin.trial


def _before(
    bases: list[Run],
    epochs: int,
    metric: str,
    epoch_loss: np.ndarray,
    deterministic: bool,
) -> tuple[list[float], str]:
    """The original setup's metric at the trial budget for each seed: seed 0 read off the
    main run's curve when the metric is its loss, the others re-run (unless provably equal)."""
    original = bases[0]
    if metric == "loss":
        first = float(epoch_loss[epochs - 1]) if epochs <= len(epoch_loss) else math.inf
    else:
        first = _run(replace(original, metric=metric), epochs, original.seed, original)
    if deterministic:
        return [first], "original run is deterministic (constant init, no shuffling): spread 0"
    others = [_run(replace(b, metric=metric), epochs, b.seed, original) for b in bases[1:]]
    return [first, *others], "original re-initialised with other seeds"
