"""Non-finite numbers (NaN, inf) in weights, gradients or activations: named with layer and step.

A NaN or an inf the user's model already holds (initial weights) is a cause of its own: every
number computed from it is meaningless, and rules that compare weights or activations would
read it as something else (``inf == inf`` makes units look identical). Values that overflowed
during training from finite weights are the ``diverged`` symptom (with the layer and the
step), whose causes (the learning rate, the scale of the data) are judged by their own rules;
:func:`nonfinite_during_training` finds them when the loss stayed finite (a dead ReLU or a
saturated tanh hides an inf weight from the loss).
"""

from __future__ import annotations

import numpy as np

from nndoctor.doctor.finding import CAUSE, ERROR, Finding
from nndoctor.doctor.rule import Rule
from nndoctor.doctor.schema import Context, LayerTrace, Probes


def _first_bad(t: LayerTrace, which: str) -> tuple[str, tuple[int, ...], str, int] | None:
    """(parameter, index, "NaN"/"inf", count) of the first non-finite weight or bias."""
    for param in ("W", "b"):
        arr = getattr(t, f"{param}_{which}")
        bad = ~np.isfinite(arr)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            kind = "NaN" if np.isnan(arr[index]) else "inf"
            return param, index, kind, int(np.count_nonzero(bad))
    return None


def _first_nonfinite_probe(series: np.ndarray) -> int | None:
    bad = np.flatnonzero(~np.isfinite(series))
    return int(bad[0]) if bad.size else None


def nonfinite_during_training(probes: Probes) -> tuple[str, str, int | None] | None:
    """(layer, "weights"/"gradients", step or None) of the first layer whose weights or
    gradients became non-finite during a run that started finite; None when none did."""
    for t in probes.layers:
        if _first_bad(t, "init") is not None:
            return None
    for t in probes.layers:
        w = _first_nonfinite_probe(t.weight_norm)
        g = _first_nonfinite_probe(t.grad_norm)
        probe = min((k for k in (w, g) if k is not None), default=None)
        if probe is None and _first_bad(t, "final") is None:
            continue
        what = "gradients" if g is not None and probe == g and (w is None or g <= w) else "weights"
        step = int(probes.steps[probe]) if probe is not None else None
        return t.name, what, step
    return None


def non_finite_values(probes: Probes, ctx: Context) -> list[Finding]:
    findings = []
    for t in probes.layers:
        at_init = _first_bad(t, "init")
        if at_init is not None:
            param, index, kind, count = at_init
            findings.append(
                NON_FINITE_VALUES.finding(
                    ERROR,
                    f"layer {t.name}'s initial weights hold {count} non-finite value(s): "
                    f"{param}{list(index)} is {kind}, before the first step",
                    evidence={
                        "layer": t.name,
                        "parameter": param,
                        "index": list(index),
                        "value": kind,
                        "count": count,
                        "step": "initialisation",
                    },
                    why="a NaN or inf weight makes every output and gradient that depends on it "
                    "NaN or inf (or pins a tanh/sigmoid unit at its limit), so the loss and the "
                    "other findings say nothing about the network itself",
                    fix="find where the weights were made (a division by 0, a log of 0, a "
                    "loaded file) and re-initialise them, e.g. with Xavier or He",
                    score=1.0,
                )
            )
            continue
    return findings


# --- the records ---

NON_FINITE_VALUES = Rule(
    code="non-finite-values",
    kind=CAUSE,
    tier=0,
    meaning="NaN or inf in the weights or gradients, named by layer and step",
    sentence=(
        "layer {layer} of your network starts with {count} NaN or inf weight(s), so every number "
        "computed from it is meaningless|some of your network's weights are NaN or inf, so every "
        "number computed from them is meaningless"
    ),
    detect=non_finite_values,
    explains=(
        "symmetric-units",
        "lr-too-high",
        "lr-too-low",
        "exploding-gradients",
        "vanishing-gradients",
        "saturated-units",
        "dead-units",
        "insufficient-capacity",
        "no-signal",
        "gradient-mismatch",
    ),
)

RULES = (NON_FINITE_VALUES,)
