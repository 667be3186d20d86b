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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nndoctor.doctor.context import Context, is_autoencoder
from nndoctor.doctor.probes import batch_mean_loss
from nndoctor.doctor.report import Finding
from nndoctor.doctor.rules.setup import UNSCALED_MAX
from nndoctor.nn import (
    MSE,
    Dense,
    Identity,
    Layer,
    Loss,
    Optimizer,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    get_initializer,
    train,
)

MAX_TRIALS = 2
SEEDS = 2
TRIAL_COST = 1.2
NOISE_FACTOR = 2.0
MIN_GAIN = 0.05


@dataclass
class Setup:
    """One training run: everything ``train`` needs."""

    model: Sequential
    X: np.ndarray
    Y: np.ndarray
    loss: Loss
    optimizer: Optimizer
    epochs: int
    batch_size: int
    shuffle: bool
    seed: int
    metric: str = "loss"
    # maps the trial model's predictions back to the original targets' units
    unscale: Callable[[np.ndarray], np.ndarray] | None = None


def reinitialise(model: Sequential, seed: int, init: str | None = None) -> Sequential:
    """A copy with every Dense re-drawn from ``init`` (default: its own initialiser)."""
    rng = np.random.default_rng(seed)
    out = model.copy()
    for layer in out.layers:
        if isinstance(layer, Dense):
            w_init = get_initializer(init or layer.init)
            b_init = get_initializer("zeros" if init else layer.bias_init)
            layer.params["W"][...] = w_init(layer.params["W"].shape, rng)
            layer.params["b"][...] = b_init(layer.params["b"].shape, rng)
            if init:
                layer.init, layer.bias_init = init, "zeros"
    return out


def _same_weights(a: Sequential, b: Sequential) -> bool:
    pa, pb = a.named_parameters(), b.named_parameters()
    return all(np.array_equal(pa[k], pb[k]) for k in pa)


def _rebuild(layers: list[Layer]) -> Sequential:
    return Sequential(*layers)


def _hidden_init(model: Sequential) -> str:
    relu = any(isinstance(layer, ReLU) for layer in model.layers)
    return "he_uniform" if relu else "xavier_uniform"


# --- the fixes: each returns (changed setup, description) or None when it does not apply ---


def _fix_reinit(s: Setup, f: Finding, ctx: Context) -> tuple[Setup, str] | None:
    init = _hidden_init(s.model)
    return replace(s, model=reinitialise(s.model, s.seed, init)), f"re-initialise with {init}"


def _with_lr(s: Setup, lr: float) -> tuple[Setup, str]:
    return replace(s, optimizer=s.optimizer.with_lr(lr)), f"learning rate {lr:g}"


def _fix_lr(s: Setup, f: Finding, ctx: Context) -> tuple[Setup, str] | None:
    # the rate the finding suggests, so the report's fix and its trial are the same change
    lr = f.evidence.get("suggested_lr")
    return _with_lr(s, lr) if lr is not None and lr > 0 else None


def _fix_standardise(s: Setup, f: Finding, ctx: Context) -> tuple[Setup, str] | None:
    mean, std = s.X.mean(axis=0), s.X.std(axis=0)
    scale = np.where(std > 0, std, 1.0)
    X = (s.X - mean) / scale
    if is_autoencoder(s.X, s.Y):
        # the targets are the inputs: reconstruct the standardised data, judge in data units
        return replace(s, X=X, Y=X, unscale=lambda P: P * scale + mean), "standardise the inputs"
    return replace(s, X=X), "standardise the inputs"


def _fix_standardise_targets(s: Setup, f: Finding, ctx: Context) -> tuple[Setup, str] | None:
    mean, std = s.Y.mean(axis=0), s.Y.std(axis=0)
    scale = np.where(std > 0, std, 1.0)
    # trained on standardised targets, judged on the original loss in the original units
    return (
        replace(s, Y=(s.Y - mean) / scale, unscale=lambda P: P * scale + mean),
        "standardise the targets",
    )


def _fix_identity_output(s: Setup, f: Finding, ctx: Context) -> tuple[Setup, str] | None:
    layers = list(s.model.copy().layers)
    if isinstance(layers[-1], Dense):
        return None
    return replace(s, model=_rebuild(layers[:-1])), "identity output instead of " + type(
        layers[-1]
    ).__name__.lower()


def _fix_insert_activation(s: Setup, f: Finding, ctx: Context) -> tuple[Setup, str] | None:
    layers = [layer for layer in s.model.copy().layers if not isinstance(layer, Identity)]
    out: list[Layer] = []
    for i, layer in enumerate(layers):
        out.append(layer)
        if isinstance(layer, Dense) and i + 1 < len(layers) and isinstance(layers[i + 1], Dense):
            out.append(ReLU())
    return replace(s, model=_rebuild(out)), "insert ReLU between consecutive Dense layers"


def _fix_loss(s: Setup, f: Finding, ctx: Context) -> tuple[Setup, str] | None:
    case = f.evidence.get("case")
    layers = s.model.copy().layers
    if case == "softmax-before-cross-entropy" and isinstance(layers[-1], Softmax):
        return replace(s, model=_rebuild(layers[:-1]), metric="error rate"), "remove the Softmax"
    if case == "softmax-one-output" and isinstance(layers[-1], Softmax):
        return (
            replace(s, model=_rebuild([*layers[:-1], Sigmoid()]), metric="mse"),
            "sigmoid instead of softmax on the single output",
        )
    if case == "bce-two-labels-outside-unit-interval":
        lo, hi = float(s.Y.min()), float(s.Y.max())
        return (
            replace(
                s,
                Y=(s.Y - lo) / (hi - lo),
                unscale=lambda P: P * (hi - lo) + lo,
                metric="mse",
            ),
            f"labels mapped from {{{lo:g}, {hi:g}}} to {{0, 1}}",
        )
    if case == "bce-targets-outside-unit-interval":
        body = layers[:-1] if not isinstance(layers[-1], Dense) else layers
        return (
            replace(s, model=_rebuild(body), loss=MSE(), metric="mse"),
            "MSE loss with an identity output",
        )
    if case == "bce-without-sigmoid":
        body = layers[:-1] if not isinstance(layers[-1], Dense) else layers
        return replace(s, model=_rebuild([*body, Sigmoid()]), metric="mse"), "sigmoid output"
    return None


def _fix_unsquash(s: Setup, f: Finding, ctx: Context) -> tuple[Setup, str] | None:
    if f.evidence.get("small_init"):
        # not the activation's derivative: weights too small shrink the signal
        return _fix_reinit(s, f, ctx)
    layers = s.model.copy().layers
    last_dense = max(i for i, layer in enumerate(layers) if isinstance(layer, Dense))
    if not any(isinstance(x, Sigmoid | Tanh) for x in layers[:last_dense]):
        return _fix_reinit(s, f, ctx)
    out = [
        ReLU() if isinstance(x, Sigmoid | Tanh) and i < last_dense else x
        for i, x in enumerate(layers)
    ]
    model = reinitialise(_rebuild(out), s.seed, "he_uniform")
    return replace(s, model=model), "ReLU hidden activations with He initialisation"


def _fix_saturated(s: Setup, f: Finding, ctx: Context) -> tuple[Setup, str] | None:
    # inputs the unscaled-inputs rule calls unscaled (pixels 0-255 too, whose max is only a
    # few stds) saturate any init: scale them; unit-scale inputs saturate a too-large init
    if ctx.data.x_absmax > UNSCALED_MAX:
        return _fix_standardise(s, f, ctx)
    return _fix_reinit(s, f, ctx)


def _fix_shuffle(s: Setup, f: Finding, ctx: Context) -> tuple[Setup, str] | None:
    # judged by the end weights' loss on all the data: the epoch loss is what misleads here
    return replace(s, shuffle=True, metric="loss of end weights"), "shuffle every epoch"


FIXES: dict[str, Callable[[Setup, Finding, Context], tuple[Setup, str] | None]] = {
    "unshuffled-data": _fix_shuffle,
    "symmetric-units": _fix_reinit,
    "dead-units": _fix_reinit,
    "saturated-units": _fix_saturated,
    "vanishing-gradients": _fix_unsquash,
    "exploding-gradients": _fix_reinit,
    "lr-too-high": _fix_lr,
    "lr-too-low": _fix_lr,
    "unscaled-inputs": _fix_standardise,
    "unscaled-targets": _fix_standardise_targets,
    "targets-out-of-range": _fix_identity_output,
    "wrong-loss-for-targets": _fix_loss,
    "missing-nonlinearity": _fix_insert_activation,
}


# --- running and judging ---


def _score(s: Setup, model: Sequential, history: Any, original: Setup) -> float:
    """The trial metric for a trained ``model``: the final epoch loss, or, when the fix
    changes the loss or the targets' units, a metric both runs share (on the original data)."""
    if history.diverged is not None:
        return math.inf
    if s.metric == "loss" and s.unscale is None:
        return history.final_loss
    with np.errstate(all="ignore"):
        P = model.forward(s.X)
    if s.unscale is not None:
        P = s.unscale(P)
    if not np.all(np.isfinite(P)):
        return math.inf
    if s.metric == "error rate":
        return float(np.mean(P.argmax(axis=1) != original.Y.astype(np.intp)))
    if s.metric == "mse":
        return float(np.mean((P - original.Y.reshape(P.shape)) ** 2))
    return batch_mean_loss(original.loss, P, original.Y, original.batch_size)


def _run(s: Setup, epochs: int, seed: int, original: Setup) -> float:
    model = s.model.copy()
    history = train(
        model,
        s.X,
        s.Y,
        loss=s.loss,
        optimizer=s.optimizer.fresh(),
        epochs=epochs,
        batch_size=s.batch_size,
        shuffle=s.shuffle,
        seed=seed,
        progress=False,
    )
    return _score(s, model, history, original)


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
    original: Setup,
    original_epoch_loss: np.ndarray,
    ctx: Context,
    *,
    max_trials: int = MAX_TRIALS,
    cost: float = TRIAL_COST,
) -> None:
    """Try the fixes of the top causes; fill ``confirmed`` and ``trial`` in place.

    Seed ``k`` of a trial applies the fix to the original setup re-initialised with seed
    ``seed + k`` (``k = 0``: the user's own weights), exactly as the original's seeds are.
    """
    bases = [original] + [
        replace(original, model=reinitialise(original.model, original.seed + k),
                seed=original.seed + k)
        for k in range(1, SEEDS)
    ]  # fmt: skip
    planned: list[tuple[Finding, list]] = []
    same_fix: list[tuple[Finding, Finding]] = []  # (finding, the planned one with its fix)
    for f in findings:
        if f.kind != "cause" or f.severity == "info" or f.code not in FIXES:
            continue
        changes = [FIXES[f.code](base, f, ctx) for base in bases]
        if not all(c is not None for c in changes):
            continue
        twin = next((p for p, c in planned if c[0][1] == changes[0][1]), None)
        if twin is not None:
            same_fix.append((f, twin))
        elif len(planned) < max_trials:
            planned.append((f, changes))
    if not planned:
        return
    deterministic = not original.shuffle and _same_weights(bases[1].model, original.model)
    runs = SEEDS * len(planned) + (0 if deterministic else SEEDS - 1)
    epochs = max(1, min(original.epochs, math.floor(original.epochs * cost / runs)))
    budget = f"{epochs} of {original.epochs} epochs per run"
    before_runs: dict[str, tuple[list[float], str]] = {}
    for f, changes in planned:
        metric = changes[0][0].metric
        if metric not in before_runs:
            before_runs[metric] = _before(bases, epochs, metric, original_epoch_loss, deterministic)
        before, note = before_runs[metric]
        after = [_run(changed, epochs, changed.seed, original) for changed, _ in changes]
        confirmed, numbers = judge(before, after)
        f.confirmed = confirmed
        f.trial = {
            "change": changes[0][1],
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
    bases: list[Setup],
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
