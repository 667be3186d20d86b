"""The recorder core: when to probe, the loss curve, per-layer series, divergence.

It knows no backend. A backend's hooks (the engine's training callback, PyTorch's module and
optimizer hooks) call it with plain numbers: :meth:`RecorderCore.step_loss` every step,
:meth:`RecorderCore.probe` with per-layer statistics on the steps :class:`Schedule` picks,
:meth:`RecorderCore.update_ratios` after such a step's update, and :meth:`RecorderCore.finish`
with the end state, which returns the :class:`~nndoctor.doctor.schema.Probes` the rules read.

Memory is bounded however long the run: a schedule that does not know the run's length
doubles its interval and drops every other stored probe whenever it holds ``2 * target``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndoctor.doctor.schema import (
    LAYER_SERIES,
    RECTIFIED,
    SATURATION_Z,
    SQUASHING,
    LayerTrace,
    LoopFacts,
    Probes,
    numeric_rank,
)

# about this many probes per run: enough for curves, cheap next to training
TARGET_PROBES = 100
# rows of the fixed probe batch
PROBE_ROWS = 256
# steps between probes at the start of a run of unknown length: dense enough for a verdict in
# the first epoch
OPEN_START = 16
# share of a run of unknown length that probing may take, once MIN_PROBES are held: beyond
# it the interval doubles (a probe costs about a millisecond whatever the model, a step of a
# small model less: a fixed interval would cost a small model a tenth of its run)
PROBE_BUDGET = 0.01
# probes before the budget applies: step 0 (the setup alerts) and step 16 (the symmetry
# alert, which needs weights that have moved); the stale-gradient check runs without probes
MIN_PROBES = 2


# probes a run of known length gets at least, whatever ``min_every`` asks
MIN_KNOWN_PROBES = 16


def probe_interval(total_steps: int, target: int = TARGET_PROBES, min_every: int = 1) -> int:
    """Steps between probes so that a run of ``total_steps`` gets about ``target`` probes,
    and no closer than ``min_every`` steps while that leaves ``MIN_KNOWN_PROBES``."""
    return max(1, total_steps // target, min(min_every, total_steps // MIN_KNOWN_PROBES))


class Schedule:
    """Which steps are probed.

    Parameters
    ----------
    total_steps : int or None
        Known length of the run: probe every ``total_steps // target`` steps. None (a user's
        own loop): probe every ``OPEN_START`` steps at first (step 0 included), and double the
        interval each time ``2 * target`` probes are held (the recorder then keeps every
        other probe) or, after ``MIN_PROBES`` probes, whenever the next probe would take the
        probes' share of the run's time above ``budget`` (see :meth:`spend`).
    target : int
        Probes per run (known length) or probes held before thinning (unknown length).
    budget : float or None
        Share of the run's time probing may take in a run of unknown length; None: no limit
        (the probed steps then depend on the step count alone, never on timings).
    min_every : int
        Known length only: steps between probes at least (see :func:`probe_interval`).
    """

    def __init__(
        self,
        total_steps: int | None = None,
        target: int = TARGET_PROBES,
        budget: float | None = PROBE_BUDGET,
        min_every: int = 1,
    ) -> None:
        self.total_steps = total_steps
        self.target = target
        self.every = probe_interval(total_steps, target, min_every) if total_steps else OPEN_START
        self.budget = budget if total_steps is None else None
        self.probe_seconds = 0.0  # the probes' cost so far, as spend() reads it
        self.window_seconds = 0.0
        self.window_steps = 0

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def full(self, held: int) -> bool:
        """Whether ``held`` probes are too many for an open-ended run (then thin and double)."""
        return self.total_steps is None and held >= 2 * self.target

    def spend(
        self,
        window: float,
        window_steps: int,
        run_seconds: float,
        steps: int,
        probes: int,
        own: float = 0.0,
    ) -> None:
        """Account the probe just taken: ``window`` seconds from arming it to finishing it,
        a stretch that held ``window_steps`` training steps as well, after ``steps`` steps
        that took ``run_seconds`` in all (windows included) and ``probes`` probes so far, whose
        own code took ``own`` seconds in all; double the interval until the next probe keeps
        probing within the budget.

        A probe costs more than its own code: hooks slow its step's forward pass, and the
        training right after it runs on cold caches. So its cost is read off the clock:
        the windows' time less what as many steps take outside them, and no less than
        ``own``: on a run of a few dozen steps, the steps outside the windows are few and
        the slow ones right after the watch's start weigh on them, so the clock's estimate
        alone can come out near zero and let a probe through that takes the run past it.
        """
        self.window_seconds += window
        self.window_steps += window_steps
        plain_steps = steps - self.window_steps
        plain_seconds = run_seconds - self.window_seconds
        if self.budget is None or probes < MIN_PROBES or plain_steps <= 0 or plain_seconds <= 0:
            return
        per_step = plain_seconds / plain_steps
        self.probe_seconds = max(own, self.window_seconds - self.window_steps * per_step)
        per_probe = self.probe_seconds / probes
        while self.probe_seconds + per_probe > self.budget * (run_seconds + self.every * per_step):
            self.every *= 2


@dataclass
class LayerInfo:
    """What a backend tells the recorder about one weighted layer before training."""

    name: str
    in_features: int
    out_features: int
    activation: str
    kind: str = "dense"


def forward_stats(z: np.ndarray, h: np.ndarray, activation: str) -> dict[str, float]:
    """Per-probe statistics of one layer from its output ``z`` ``(rows, units)`` and the
    activation after it ``h`` (NumPy; the PyTorch backend computes the same on the device)."""
    return {
        "frac_saturated": float(np.mean(np.abs(z) > SATURATION_Z))
        if activation in SQUASHING
        else 0.0,
        "frac_dead": float(np.mean(np.all(z <= 0, axis=0))) if activation in RECTIFIED else 0.0,
        "act_rank": float(numeric_rank(h)),
        "z_rms": float(np.linalg.norm(z) / math.sqrt(max(z.size, 1))),
    }


def unit_states(z: np.ndarray, activation: str) -> tuple[np.ndarray, np.ndarray]:
    """End state per unit: dead (ReLU input <= 0 on every probe row) and share saturated."""
    units = z.shape[1]
    dead = np.all(z <= 0, axis=0) if activation in RECTIFIED else np.zeros(units, dtype=bool)
    sat = np.mean(np.abs(z) > SATURATION_Z, axis=0) if activation in SQUASHING else np.zeros(units)
    return dead, sat


class RecorderCore:
    """Collects the series of one run; see the module docstring for who calls what."""

    def __init__(self, layers: list[LayerInfo], schedule: Schedule) -> None:
        self.layers = layers
        self.schedule = schedule
        self.steps: list[int] = []
        self.output_std: list[float] = []
        self.series: list[dict[str, list[float]]] = [{k: [] for k in LAYER_SERIES} for _ in layers]
        self.losses: list[float] = []
        self.epoch_losses: list[float] = []
        self._epoch_total, self._epoch_count = 0.0, 0
        self.pending_update = False

    @property
    def every(self) -> int:
        return self.schedule.every

    def step_loss(self, value: float) -> None:
        self.losses.append(value)
        self._epoch_total += value
        self._epoch_count += 1

    def step_losses(self, values: list[float]) -> None:
        """:meth:`step_loss` for several steps in order (the same sums, added one by one)."""
        self.losses.extend(values)
        total = self._epoch_total
        for v in values:
            total += v
        self._epoch_total = total
        self._epoch_count += len(values)

    def end_epoch(self) -> None:
        self.epoch_losses.append(self._epoch_total / max(self._epoch_count, 1))
        self._epoch_total, self._epoch_count = 0.0, 0

    def due(self, step: int) -> bool:
        return self.schedule.due(step)

    def probe(
        self,
        step: int,
        weight_norms: list[float],
        grad_norms: list[float],
        forward: list[dict[str, float]] | None,
        output_std: float,
    ) -> None:
        """Record one probe: per layer its weight and gradient norms and, when the forward
        pass on the probe batch was seen, :func:`forward_stats`."""
        if self.schedule.full(len(self.steps)):
            self._thin()
        self.steps.append(step)
        self.output_std.append(output_std)
        for i, series in enumerate(self.series):
            series["weight_norm"].append(weight_norms[i])
            series["grad_norm"].append(grad_norms[i])
            stats = forward[i] if forward is not None else None
            for key in ("frac_saturated", "frac_dead", "act_rank", "z_rms"):
                series[key].append(math.nan if stats is None else stats[key])
        self.pending_update = True

    def update_ratios(self, ratios: list[float]) -> None:
        """``|W_after - W_before| / |W_before|`` per layer for the step just probed."""
        for series, r in zip(self.series, ratios, strict=True):
            series["update_ratio"].append(r)
        self.pending_update = False

    def _thin(self) -> None:
        # every other probe, so the spacing stays even; the interval doubles
        self.steps = self.steps[::2]
        self.output_std = self.output_std[::2]
        for series in self.series:
            for key in LAYER_SERIES:
                series[key] = series[key][::2]
        self.schedule.every *= 2

    def finish(
        self,
        *,
        weights_init: list[tuple[np.ndarray, np.ndarray]],
        weights_final: list[tuple[np.ndarray, np.ndarray]],
        unit_states: list[tuple[np.ndarray, np.ndarray]],
        probe_output: np.ndarray,
        probe_target: np.ndarray,
        probe_loss: float,
        diverged: dict[str, Any] | None,
        steps_per_epoch: int,
        epochs: int,
        batch_size: int,
        loop: LoopFacts | None = None,
    ) -> Probes:
        """The :class:`Probes` of the run: series as float64 arrays, the end state per layer
        (``weights_*`` as ``(W (units, fan_in), b (units,))``, ``unit_states`` as from
        :func:`unit_states`) and the probe batch's predictions and targets."""
        traces = []
        for info, series, (W0, b0), (W1, b1), (dead, sat) in zip(
            self.layers, self.series, weights_init, weights_final, unit_states, strict=True
        ):
            arrays = {k: np.asarray(v, dtype=np.float64) for k, v in series.items()}
            m = len(arrays["grad_norm"])
            arrays["update_ratio"] = arrays["update_ratio"][:m]
            traces.append(
                LayerTrace(
                    name=info.name,
                    in_features=info.in_features,
                    out_features=info.out_features,
                    activation=info.activation,
                    W_init=W0,
                    b_init=b0,
                    W_final=W1,
                    b_final=b1,
                    dead_units=dead,
                    unit_saturation=sat,
                    kind=info.kind,
                    **arrays,
                )
            )
        return Probes(
            steps=np.asarray(self.steps, dtype=np.int64),
            step_loss=np.asarray(self.losses, dtype=np.float64),
            epoch_loss=np.asarray(self.epoch_losses, dtype=np.float64),
            layers=traces,
            output_std=np.asarray(self.output_std, dtype=np.float64),
            target_std=float(np.mean(probe_target.std(axis=0))) if probe_target.size else 0.0,
            probe_output=probe_output,
            probe_target=probe_target,
            diverged=diverged,
            steps_per_epoch=steps_per_epoch,
            epochs=epochs,
            batch_size=batch_size,
            probe_every=self.schedule.every,
            probe_loss=probe_loss,
            loop=loop,
        )
