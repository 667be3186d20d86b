"""Live alerts: a finding said in one line the moment it is certain, while training goes on.

An :class:`Alerts` object rides on a watch (:func:`attach`): at the step after each step the
watch probed (the only steps on which the watch already read numbers from the device; the
update of the probed step is then done), and at the step at which it first saw a non-finite
loss, it runs a few early checks over what
the watch has recorded so far, and says each code at most once per run: through
:mod:`logging` (logger ``"nndoctor"``, level WARNING) when the application configured logging,
else as one line on stderr. Off those steps it is not called at all, so alerts add no
synchronisation with the GPU.

Only findings that training cannot undo are said early, so that the final report never
contradicts an alert:

- ``diverged``: the loss became NaN or inf (it stays so: the weights are non-finite);
- ``symmetric-units``: units of a hidden layer that started identical and are still identical
  after the first updates (identical units get identical gradients, so they stay identical);
- ``loss-shape-broadcast``: the first loss call's prediction and target shapes broadcast to a
  larger shape (the report reads the same first call);
- ``double-activation``: the output activation read off the first forward pass is one the loss
  applies itself (the report reads the same first pass).

The last two ask the rules' own helpers (:mod:`nndoctor.doctor.rules.torch_loop`), so an alert
and the report cannot disagree about them. The watch is read through the core's
:class:`~nndoctor.doctor.protocol.WatchedRun` alone.

Each alert is kept in :attr:`Alerts.history` with the step it was said at, which the
benchmarks compare with the run's length (time to verdict) and with the final report.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nndoctor.doctor.protocol import WatchedRun
from nndoctor.doctor.rules.numerics import short
from nndoctor.doctor.rules.torch_loop import broadcast_shape, doubled_activation
from nndoctor.doctor.rules.units import SYMMETRY_TOL, identical_groups, symmetry_tolerance
from nndoctor.doctor.schema import NanSource

log = logging.getLogger("nndoctor")

# symmetric units are said once they survived this many updates (one is enough in exact
# arithmetic; two guard against a first step that a scheduler or warm-up makes 0)
SYMMETRY_STEPS = 2


@dataclass
class Alert:
    """One alert: the finding code, the optimizer step it was said at, the line said."""

    code: str
    step: int
    message: str


def say(line: str) -> None:
    """One line to the user: through logging when the application set it up, else stderr."""
    if log.hasHandlers():
        log.warning(line)
    else:
        print(line, file=sys.stderr, flush=True)


def symmetric_message(
    name: str,
    init: tuple[np.ndarray, np.ndarray],
    now: tuple[np.ndarray, np.ndarray],
    tol: float = SYMMETRY_TOL,
) -> str | None:
    """The alert for a layer whose units identical at init are still identical ``now`` (the
    weights as ``(W (units, fan_in), b (units,))``, compared within ``tol`` as the rule
    compares them), or None."""
    groups = identical_groups(*now, tol)
    if not groups:
        return None
    init_groups = [set(g) for g in identical_groups(*init, tol)]
    if not all(any(set(g) <= h for h in init_groups) for g in groups):
        return None
    W0 = init[0]
    n = sum(len(g) for g in groups)
    why = (
        f"all weights start at {W0.flat[0]:g}"
        if W0.size and np.ptp(W0) == 0
        else "they started identical"
    )
    return f"layer {name} has {n} identical units ({why})"


def diverged_message(diverged: dict[str, Any], source: NanSource | None = None) -> str:
    where = f" in layer {diverged['layer']}" if diverged.get("layer") else ""
    origin = f"; first non-finite: {short(source)}" if source is not None and source.located else ""
    return f"diverged at step {diverged['step']}{where}: the loss became NaN or inf{origin}"


@dataclass
class Alerts:
    """The alerts of one watched run; see the module docstring.

    Parameters
    ----------
    echo : bool
        Say alerts as they come (False: only keep them in :attr:`history`).
    prefix : str
        Put before each line (``nndoctor run`` names the model when it watches several).
    """

    echo: bool = True
    prefix: str = ""
    history: list[Alert] = field(default_factory=list)
    _probes_seen: int = 0
    _symmetry_done: bool = False
    # hidden layers whose units start identical (read off the initial weights by attach(),
    # before training: only those can be said symmetric early)
    _symmetric_at_init: list[int] = field(default_factory=list)
    _setup_done: bool = False

    @property
    def codes(self) -> list[str]:
        return [a.code for a in self.history]

    def raise_alert(self, code: str, step: int, message: str) -> None:
        """Say ``code`` unless it was said already in this run."""
        if code in self.codes:
            return
        self.history.append(Alert(code, step, message))
        if self.echo:
            say(f"nndoctor: {self.prefix}{code}: {message}")

    def after_step(self, watch: WatchedRun) -> None:
        """Run the checks when ``watch`` probed since the last call (cheap otherwise)."""
        if watch.diverged is not None and "diverged" not in self.codes:
            # seen when the losses reached the recorder (on the CPU within a few steps)
            message = diverged_message(watch.diverged, watch.nan_source)
            self.raise_alert("diverged", watch.step, message)
        held = watch.probes_held
        if held == 0 or held == self._probes_seen or watch.failed:
            return
        self._probes_seen = held
        step = watch.step
        if not self._setup_done and watch.activations:
            self._setup_done = True  # the first forward pass and loss call were seen
            self._check_setup(watch, step)
        if not self._symmetry_done and step >= SYMMETRY_STEPS:
            self._symmetry_done = True
            self._check_symmetry(watch, step)

    def _check_setup(self, watch: WatchedRun, step: int) -> None:
        spec = watch.loss_spec()
        if watch.loss_shapes is not None:
            out, tgt = watch.loss_shapes
            both = broadcast_shape(out, tgt, spec.kind)
            if both is not None:
                self.raise_alert(
                    "loss-shape-broadcast",
                    step,
                    f"the loss compares a prediction of shape {out} with a target of shape "
                    f"{tgt}: both are broadcast to {both}",
                )
        dense = [s for s in watch.layer_specs() if s.kind == "dense"]
        width = (dense[-1].out_features or 0) if dense else 0
        what = doubled_activation(watch.output_activation, spec.name, spec.from_logits, width)
        if what is not None:
            self.raise_alert("double-activation", step, f"the model's output went through {what}")

    def _check_symmetry(self, watch: WatchedRun, step: int) -> None:
        tol = symmetry_tolerance(watch.eps)
        for i in self._symmetric_at_init:
            name, init = watch.layer_names[i], watch.initial_weights[i]
            message = symmetric_message(name, init, watch.weights(i), tol)
            if message is not None:
                self.raise_alert("symmetric-units", step, message)
                return


def symmetric_at_init(watch: WatchedRun) -> list[int]:
    """Indices of the hidden layers (the output layer's units are the outputs themselves)
    whose units start identical."""
    tol = symmetry_tolerance(watch.eps)
    hidden = watch.initial_weights[: len(watch.layer_names) - 1]
    return [i for i, init in enumerate(hidden) if identical_groups(*init, tol)]


def attach(watch: WatchedRun, alerts: Alerts) -> Any:
    """Check ``alerts`` after each probed step of ``watch`` (its ``on_probe`` callbacks, run
    once the watch has recorded the step); returns the callback. The initial weights are read
    here, before training (:func:`symmetric_at_init`)."""
    alerts._symmetric_at_init = symmetric_at_init(watch)

    def callback(w: Any) -> None:
        try:
            alerts.after_step(w)
        except Exception as exc:  # an alert must never break training
            w.on_probe.remove(callback)
            if alerts.echo:
                say(f"nndoctor: alerts switched off: {type(exc).__name__}: {exc}")

    watch.on_probe.append(callback)
    return callback
