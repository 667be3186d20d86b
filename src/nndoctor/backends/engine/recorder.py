"""The engine's recorder: a training callback of :func:`nndoctor.nn.train` that feeds the core's
:class:`~nndoctor.doctor.recorder.RecorderCore` with each probe's numbers."""

from __future__ import annotations

import math

import numpy as np

from nndoctor.doctor.recorder import (
    PROBE_ROWS,
    LayerInfo,
    RecorderCore,
    Schedule,
    forward_stats,
    unit_states,
)
from nndoctor.doctor.schema import (
    Probes,
    batch_mean_loss,
    effective_targets,
    prediction_space,
)
from nndoctor.nn import Callback, Dense, Loss, Sequential, TrainState


def _blocks(model: Sequential) -> list[tuple[Dense, str]]:
    """(Dense layer, name of the activation right after it or "identity")."""
    out = []
    layers = model.layers
    for i, layer in enumerate(layers):
        if isinstance(layer, Dense):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            act = "identity" if nxt is None or isinstance(nxt, Dense) else type(nxt).__name__
            out.append((layer, act.lower()))
    return out


Snapshot = list[tuple[np.ndarray, np.ndarray]]


def _all_finite(snapshot: Snapshot) -> bool:
    return all(np.all(np.isfinite(W)) and np.all(np.isfinite(b)) for W, b in snapshot)


def _block_outputs(
    model: Sequential, X: np.ndarray
) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Per Dense layer its output ``z`` and the activation after it ``h`` on ``X``; and the
    model's output."""
    z_of: list[np.ndarray] = []
    h_of: list[np.ndarray] = []
    h = X
    for layer in model.layers:
        h = layer.forward(h)
        if isinstance(layer, Dense):
            z_of.append(h)
            h_of.append(h)
        elif z_of:
            h_of[-1] = h  # the activation (or activations) right after the last Dense
    return list(zip(z_of, h_of, strict=True)), h


def _first_nonfinite(model: Sequential, X: np.ndarray) -> str | None:
    """Name of the first layer whose weights or output on ``X`` are not finite."""
    h = X
    with np.errstate(all="ignore"):
        for i, layer in enumerate(model.layers):
            if not all(np.all(np.isfinite(v)) for v in layer.params.values()):
                return f"layer {i} ({type(layer).__name__}, weights)"
            h = layer.forward(h)
            if not np.all(np.isfinite(h)):
                return f"layer {i} ({type(layer).__name__}, output)"
    return None


class Recorder(Callback):
    """Records :class:`~nndoctor.doctor.schema.Probes` during :func:`nndoctor.nn.train`.

    Parameters
    ----------
    probe_rows : int
        Rows of the fixed probe batch (the first rows of a seeded permutation of ``X``).
    seed : int
        Picks the probe rows.
    """

    def __init__(self, probe_rows: int = PROBE_ROWS, seed: int = 0) -> None:
        self.probe_rows = probe_rows
        self.seed = seed
        self.probes: Probes | None = None

    def on_train_begin(self, state: TrainState) -> None:
        n = len(state.X)
        rows = np.random.default_rng(self.seed).permutation(n)[: min(self.probe_rows, n)]
        rows.sort()
        self._X = state.X[rows]
        self._Y = state.Y[rows]
        self._labels = state.Y.ndim == 1
        self._steps_per_epoch = -(-n // state.batch_size)
        self._blocks = _blocks(state.model)
        self._core = RecorderCore(
            [
                # named by Dense order ("0", "1", ...), as the rules and plots know them
                LayerInfo(str(i), d.in_features, d.out_features, act)
                for i, (d, act) in enumerate(self._blocks)
            ],
            Schedule(self._steps_per_epoch * state.epochs),
        )
        self._init = self._snapshot()
        self._before: list[np.ndarray] | None = None
        # snapshots are replaced, never written into, so the initial one can be shared
        self._last_finite = self._init

    def _snapshot(self) -> Snapshot:
        return [(d.params["W"].copy(), d.params["b"].copy()) for d, _ in self._blocks]

    def _load(self, snapshot: Snapshot) -> None:
        for (dense, _), (W, b) in zip(self._blocks, snapshot, strict=True):
            dense.params["W"][...] = W
            dense.params["b"][...] = b

    def on_gradients(self, state: TrainState) -> None:
        self._core.step_loss(state.batch_loss)
        if not self._core.due(state.step):
            return
        self._before = [d.params["W"].copy() for d, _ in self._blocks]
        outputs, P = _block_outputs(state.model, self._X)
        self._core.probe(
            state.step,
            [float(np.linalg.norm(d.params["W"])) for d, _ in self._blocks],
            [float(np.linalg.norm(d.grads["W"])) for d, _ in self._blocks],
            [
                forward_stats(z, h, act)
                for (_, act), (z, h) in zip(self._blocks, outputs, strict=True)
            ],
            float(np.mean(prediction_space(P, self._labels).std(axis=0))),
        )

    def on_step_end(self, state: TrainState) -> None:
        if self._before is None:
            return
        ratios = []
        for (dense, _), W0 in zip(self._blocks, self._before, strict=True):
            base = np.linalg.norm(W0)
            delta = np.linalg.norm(dense.params["W"] - W0)
            ratios.append(float(delta / base) if base > 0 else math.nan)
        self._core.update_ratios(ratios)
        self._before = None
        snapshot = self._snapshot()
        if _all_finite(snapshot):
            self._last_finite = snapshot

    def on_epoch_end(self, state: TrainState) -> None:
        self._core.end_epoch()

    def on_train_end(self, state: TrainState) -> None:
        model = state.model
        finished = len(self._core.epoch_losses) == state.epochs or state.stop
        diverged = None
        if not finished:
            diverged = {
                "step": state.step,
                "epoch": state.epoch,
                "layer": _first_nonfinite(model, self._X),
            }
        # the last finite weights of a diverging run may still overflow on the probe batch
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.probes = self._finish(model, state.loss, state, diverged)

    def _finish(
        self, model: Sequential, loss: Loss, state: TrainState, diverged: dict | None
    ) -> Probes:
        # judge the end state with the end weights when finite, else with the last finite
        # ones seen at a probe, so that a diverged run still has an end state
        current = self._snapshot()
        if _all_finite(current):
            self._last_finite = current
        self._load(self._last_finite)
        outputs, P = _block_outputs(model, self._X)
        probe_loss = batch_mean_loss(loss, P, self._Y, state.batch_size)
        final = self._snapshot()
        states = [
            unit_states(z, act) for (_, act), (z, _) in zip(self._blocks, outputs, strict=True)
        ]
        self._load(current)
        return self._core.finish(
            weights_init=self._init,
            weights_final=final,
            unit_states=states,
            probe_output=prediction_space(P, self._labels),
            probe_target=effective_targets(self._Y, P.shape[1], self._labels),
            probe_loss=probe_loss,
            diverged=diverged,
            steps_per_epoch=self._steps_per_epoch,
            epochs=state.epochs,
            batch_size=state.batch_size,
        )
