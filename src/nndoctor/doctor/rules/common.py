"""Helpers shared by the rule families (and by the checks that read a run the way the rules do)."""

from __future__ import annotations

import math

import numpy as np

from nndoctor.doctor.changes import Change, Reinit
from nndoctor.doctor.finding import Finding
from nndoctor.doctor.schema import Context, Probes


def nanmedian(a: np.ndarray) -> float:
    """Median of the finite entries, NaN when there are none (no warning)."""
    a = np.asarray(a, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else math.nan


def baseline(ctx: Context) -> float:
    return float(ctx.bounds.get("baseline", math.nan))


def rms(norm: np.ndarray, size: int) -> np.ndarray:
    """Root-mean-square entry from a Frobenius norm over ``size`` entries."""
    return np.asarray(norm) / math.sqrt(max(size, 1))


def improvement(probes: Probes) -> float:
    """Share of the first epoch's loss that training removed (1 = down to 0)."""
    curve = probes.finite_epoch_loss
    if curve.size == 0 or curve[0] == 0:
        return math.nan
    return float((curve[0] - probes.final_loss) / abs(curve[0]))


def units(indices: np.ndarray | list[int], limit: int = 8) -> str:
    idx = [int(i) for i in indices]
    shown = ", ".join(str(i) for i in idx[:limit])
    return shown + (f", ... ({len(idx)} in all)" if len(idx) > limit else "")


# a net whose loss is above this share of the constant baseline has learned (almost) nothing
STUCK_SHARE = 0.9


def stuck(probes: Probes, ctx: Context) -> bool:
    """True when training got (almost) nowhere: near the baseline, or barely below its start."""
    L0 = baseline(ctx)
    if math.isfinite(L0) and L0 > 0:
        return not probes.final_loss < STUCK_SHARE * L0
    return not improvement(probes) >= 1 - STUCK_SHARE


def hidden_init(ctx: Context) -> str:
    """He for ReLU nets, Xavier otherwise: what an expert re-initialises with."""
    return "he_uniform" if any(s.kind == "relu" for s in ctx.layers) else "xavier_uniform"


def reinit(f: Finding, ctx: Context) -> Change:
    """The trial of a cause that new weights fix: every weight re-drawn (:func:`hidden_init`)."""
    return Reinit(hidden_init(ctx))


def curve_noise(probes: Probes) -> np.ndarray:
    """The standard error of each point of ``finite_epoch_loss`` from the spread of the steps'
    losses it averages (minibatch noise): about ``std / sqrt(steps)``; 0 for a point of one
    step or of full-batch steps (the same batch every step: no noise)."""
    curve = probes.epoch_loss
    out = np.zeros(len(curve))
    if len(curve) and probes.steps_per_epoch > 1 and len(probes.step_loss) >= len(curve):
        for i, chunk in enumerate(np.array_split(probes.step_loss, len(curve))):
            chunk = chunk[np.isfinite(chunk)]
            if len(chunk) > 1:
                out[i] = float(np.std(chunk, ddof=1)) / math.sqrt(len(chunk))
    return out[np.isfinite(curve)]


def curve_points(probes: Probes) -> str:
    """What a point of the loss curve is, in words: an epoch, or a window of steps."""
    if probes.epochs_known:
        return "epoch"
    return f"window of {probes.steps_per_epoch} steps"
