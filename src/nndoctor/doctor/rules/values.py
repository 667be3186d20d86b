"""Non-finite numbers (NaN, inf) in weights, gradients or activations: named with layer and step.

A NaN or an inf the user's model already holds (initial weights) is a cause of its own: every
number computed from it is meaningless, and rules that compare weights or activations would
read it as something else (``inf == inf`` makes units look identical). Values that overflowed
during training from finite weights are the ``diverged`` symptom, whose causes (the learning
rate, the scale of the data) are judged by their own rules; they appear here only when the
loss stayed finite while weights or gradients did not (a saturating tanh hides an inf weight).
"""

from __future__ import annotations

import numpy as np

from nndoctor.doctor.codes import ERROR
from nndoctor.doctor.report import Finding
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


def non_finite_values(probes: Probes, ctx: Context) -> list[Finding]:
    findings = []
    for t in probes.layers:
        at_init = _first_bad(t, "init")
        if at_init is not None:
            param, index, kind, count = at_init
            findings.append(
                Finding(
                    "non-finite-values",
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
        # the loss stayed finite, but the weights or gradients of this layer did not
        if probes.diverged is not None or not np.all(np.isfinite(probes.step_loss)):
            continue
        w = _first_nonfinite_probe(t.weight_norm)
        g = _first_nonfinite_probe(t.grad_norm)
        probe = min((k for k in (w, g) if k is not None), default=None)
        at_end = _first_bad(t, "final")
        if probe is None and at_end is None:
            continue
        what = (
            "gradients"
            if probe is not None and probe == g and (w is None or g <= w)
            else ("weights")
        )
        step = int(probes.steps[probe]) if probe is not None else None
        where = f"at step {step}" if step is not None else "by the end of training"
        findings.append(
            Finding(
                "non-finite-values",
                ERROR,
                f"layer {t.name}'s {what} became NaN/inf {where} while the loss stayed finite",
                evidence={"layer": t.name, "what": what, "step": step},
                why="a saturated tanh or sigmoid hides a NaN or inf weight from the loss; the "
                "unit is pinned at its limit and can never learn again",
                fix="lower the learning rate or clip gradients, and check the model's backward "
                "pass for divisions that can reach 0",
                score=0.8,
            )
        )
    return findings


RULES = (non_finite_values,)
