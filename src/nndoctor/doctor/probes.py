"""What the doctor records during training, as plain NumPy arrays.

:class:`Probes` does not know where its numbers came from: :class:`Recorder` fills it from
``nndoctor.nn`` training through the callback hooks, and a PyTorch hook recorder can fill the
same structure. Rules only ever read a :class:`Probes` and a context of plain data.

Every ``k`` steps (``k`` chosen so that about ``TARGET_PROBES`` probes fall in a run) the
recorder runs the current weights forward on a fixed probe batch and stores, per Dense layer,
pre-activation statistics, the gradient and weight norms and the size of the update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nndoctor.nn import Callback, Dense, Loss, Sequential, TrainState

# about this many probes per run: enough for curves, cheap next to training
TARGET_PROBES = 100
# rows of the fixed probe batch
PROBE_ROWS = 256
# a sigmoid/tanh pre-activation beyond this is saturated (derivative below 0.0066 for sigmoid)
SATURATION_Z = 5.0
# relative singular-value cut-off for the numeric rank of a layer's activations
RANK_TOL = 1e-6

SQUASHING = ("sigmoid", "tanh")
RECTIFIED = ("relu",)

# the per-probe series of every LayerTrace, in the order of Probes.as_dict
LAYER_SERIES = (
    "weight_norm",
    "grad_norm",
    "update_ratio",
    "frac_saturated",
    "frac_dead",
    "act_rank",
    "z_rms",
)


@dataclass
class LayerTrace:
    """One Dense (affine) layer and the activation that follows it.

    Series have one entry per probe (shape ``(m,)``); snapshots are arrays of the weights.
    ``z_rms`` is the root-mean-square pre-activation (the Dense output) on the probe batch.
    ``W`` is ``(out, in)``, as ``Dense`` and ``torch.nn.Linear`` store it.
    """

    name: str
    in_features: int
    out_features: int
    activation: str
    weight_norm: np.ndarray
    grad_norm: np.ndarray
    update_ratio: np.ndarray
    frac_saturated: np.ndarray
    frac_dead: np.ndarray
    act_rank: np.ndarray
    W_init: np.ndarray
    b_init: np.ndarray
    W_final: np.ndarray
    b_final: np.ndarray
    dead_units: np.ndarray
    unit_saturation: np.ndarray
    z_rms: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class Probes:
    """Everything recorded during one training run.

    Attributes
    ----------
    steps : ndarray, shape (m,)
        Step index of each probe.
    step_loss : ndarray, shape (steps_run,)
        Loss of every step before its update.
    epoch_loss : ndarray, shape (epochs_run,)
    layers : list of LayerTrace
        The Dense layers in order.
    output_std : ndarray, shape (m,)
        Mean over outputs of the std of the predictions across the probe batch.
    target_std : float
        The same for the probe targets (one-hot for class labels).
    probe_output : ndarray, shape (rows, out)
        Predictions on the probe batch at the end (last finite weights).
    probe_target : ndarray
        The probe targets.
    diverged : dict or None
        ``step``, ``epoch``, ``layer`` (first layer whose output or weights were non-finite).
    steps_per_epoch, epochs, batch_size : int
    probe_every : int
    probe_loss : float
        Loss of the end weights on the probe batch, averaged over consecutive chunks of
        ``batch_size`` rows: the unit of ``epoch_loss``, but with the weights held fixed
        (``epoch_loss`` averages over batches seen while the weights moved).
    """

    steps: np.ndarray
    step_loss: np.ndarray
    epoch_loss: np.ndarray
    layers: list[LayerTrace]
    output_std: np.ndarray
    target_std: float
    probe_output: np.ndarray
    probe_target: np.ndarray
    diverged: dict[str, Any] | None
    steps_per_epoch: int
    epochs: int
    batch_size: int
    probe_every: int
    probe_loss: float = math.nan

    @property
    def finite_epoch_loss(self) -> np.ndarray:
        """``epoch_loss`` without its non-finite entries (a diverged run's last epoch)."""
        return self.epoch_loss[np.isfinite(self.epoch_loss)]

    @property
    def final_loss(self) -> float:
        """Mean loss of the last full epoch (of the last finite steps when diverged)."""
        if self.diverged is None and len(self.epoch_loss):
            return float(self.epoch_loss[-1])
        finite = self.step_loss[np.isfinite(self.step_loss)]
        return float(np.mean(finite[-self.steps_per_epoch :])) if finite.size else math.nan

    def as_dict(self) -> dict[str, Any]:
        """The series by name, for plots and the report."""
        out: dict[str, Any] = {
            "steps": self.steps,
            "step_loss": self.step_loss,
            "epoch_loss": self.epoch_loss,
            "output_std": self.output_std,
        }
        for t in self.layers:
            for key in LAYER_SERIES:
                out[f"{t.name}.{key}"] = getattr(t, key)
        return out


def batch_mean_loss(loss: Loss, P: np.ndarray, Y: np.ndarray, batch_size: int) -> float:
    """Mean of ``loss`` over consecutive chunks of ``batch_size`` rows of predictions ``P``
    ``(n, out)`` and targets ``Y``: the unit of ``History.loss``, with the weights held fixed."""
    return float(
        np.mean(
            [
                loss(P[lo : lo + batch_size], Y[lo : lo + batch_size])
                for lo in range(0, len(P), batch_size)
            ]
        )
    )


def probe_interval(total_steps: int, target: int = TARGET_PROBES) -> int:
    """Steps between probes so that a run of ``total_steps`` gets about ``target`` probes."""
    return max(1, total_steps // target)


def effective_targets(Y: np.ndarray, n_outputs: int, labels: bool) -> np.ndarray:
    """Targets as the output space sees them: one-hot for class labels, else as they are."""
    if labels:
        return np.eye(max(n_outputs, 2))[Y.astype(np.intp)][:, :n_outputs]
    return Y


def prediction_space(P: np.ndarray, labels: bool) -> np.ndarray:
    """Predictions comparable with :func:`effective_targets`: softmax of logits for labels."""
    if labels:
        Z = np.exp(P - P.max(axis=1, keepdims=True))
        return Z / Z.sum(axis=1, keepdims=True)
    return P


def numeric_rank(H: np.ndarray) -> int:
    """Numeric rank of the centred activations ``H`` (rows = samples)."""
    Hc = H - H.mean(axis=0)
    if not np.all(np.isfinite(Hc)) or not Hc.any():
        return 0
    s = np.linalg.svd(Hc, compute_uv=False)
    return int(np.sum(s > RANK_TOL * s[0]))


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


def _all_finite(snapshot: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    return all(np.all(np.isfinite(W)) and np.all(np.isfinite(b)) for W, b in snapshot)


class Recorder(Callback):
    """Records :class:`Probes` during :func:`nndoctor.nn.train`.

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
        steps_per_epoch = -(-n // state.batch_size)
        self._every = probe_interval(steps_per_epoch * state.epochs)
        self._steps_per_epoch = steps_per_epoch
        self._blocks = _blocks(state.model)
        self._init = self._snapshot()
        self._series: dict[str, list] = {"steps": [], "output_std": []}
        self._layer_series: list[dict[str, list]] = [
            {k: [] for k in LAYER_SERIES} for _ in self._blocks
        ]
        self._losses: list[float] = []
        self._epoch_losses: list[float] = []
        self._epoch_total, self._epoch_count = 0.0, 0
        self._before: list[np.ndarray] | None = None
        # snapshots are replaced, never written into, so the initial one can be shared
        self._last_finite = self._init
        self._epochs = state.epochs
        self._batch_size = state.batch_size
        self._diverged: dict[str, Any] | None = None

    def _snapshot(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(d.params["W"].copy(), d.params["b"].copy()) for d, _ in self._blocks]

    def _load(self, snapshot: list[tuple[np.ndarray, np.ndarray]]) -> None:
        for (dense, _), (W, b) in zip(self._blocks, snapshot, strict=True):
            dense.params["W"][...] = W
            dense.params["b"][...] = b

    def on_gradients(self, state: TrainState) -> None:
        self._losses.append(state.batch_loss)
        self._epoch_total += state.batch_loss
        self._epoch_count += 1
        if state.step % self._every:
            return
        self._series["steps"].append(state.step)
        self._before = [d.params["W"].copy() for d, _ in self._blocks]
        for (dense, _), series in zip(self._blocks, self._layer_series, strict=True):
            series["weight_norm"].append(float(np.linalg.norm(dense.params["W"])))
            series["grad_norm"].append(float(np.linalg.norm(dense.grads["W"])))
        self._forward_stats(state.model)

    def _forward_stats(self, model: Sequential) -> None:
        outputs, P = _block_outputs(model, self._X)
        for (_, act), series, (z, h) in zip(self._blocks, self._layer_series, outputs, strict=True):
            series["frac_saturated"].append(
                float(np.mean(np.abs(z) > SATURATION_Z)) if act in SQUASHING else 0.0
            )
            series["frac_dead"].append(
                float(np.mean(np.all(z <= 0, axis=0))) if act in RECTIFIED else 0.0
            )
            series["act_rank"].append(numeric_rank(h))
            series["z_rms"].append(float(np.linalg.norm(z) / math.sqrt(max(z.size, 1))))
        self._series["output_std"].append(
            float(np.mean(prediction_space(P, self._labels).std(axis=0)))
        )

    def on_step_end(self, state: TrainState) -> None:
        if self._before is None:
            return
        for (dense, _), series, W0 in zip(
            self._blocks, self._layer_series, self._before, strict=True
        ):
            W = dense.params["W"]
            base = np.linalg.norm(W0)
            delta = np.linalg.norm(W - W0)
            series["update_ratio"].append(float(delta / base) if base > 0 else math.nan)
        self._before = None
        snapshot = self._snapshot()
        if _all_finite(snapshot):
            self._last_finite = snapshot

    def on_epoch_end(self, state: TrainState) -> None:
        self._epoch_losses.append(self._epoch_total / max(self._epoch_count, 1))
        self._epoch_total, self._epoch_count = 0.0, 0

    def on_train_end(self, state: TrainState) -> None:
        model = state.model
        finished = len(self._epoch_losses) == state.epochs or state.stop
        if not finished:
            self._diverged = {
                "step": state.step,
                "epoch": state.epoch,
                "layer": _first_nonfinite(model, self._X),
            }
        # the last finite weights of a diverging run may still overflow on the probe batch
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.probes = self._finish(model, state.loss)

    def _finish(self, model: Sequential, loss: Loss) -> Probes:
        # judge the end state with the end weights when finite, else with the last finite
        # ones seen at a probe, so that a diverged run still has an end state
        current = self._snapshot()
        if _all_finite(current):
            self._last_finite = current
        self._load(self._last_finite)
        outputs, P = _block_outputs(model, self._X)
        probe_loss = batch_mean_loss(loss, P, self._Y, self._batch_size)
        traces = []
        for (dense, act), series, (W0, b0), (z, _) in zip(
            self._blocks, self._layer_series, self._init, outputs, strict=True
        ):
            arrays = {k: np.asarray(v, dtype=np.float64) for k, v in series.items()}
            m = len(arrays["grad_norm"])
            arrays["update_ratio"] = arrays["update_ratio"][:m]
            traces.append(
                LayerTrace(
                    name=str(len(traces)),
                    in_features=dense.in_features,
                    out_features=dense.out_features,
                    activation=act,
                    W_init=W0,
                    b_init=b0,
                    W_final=dense.params["W"].copy(),
                    b_final=dense.params["b"].copy(),
                    dead_units=np.all(z <= 0, axis=0)
                    if act in RECTIFIED
                    else np.zeros(dense.out_features, dtype=bool),
                    unit_saturation=np.mean(np.abs(z) > SATURATION_Z, axis=0)
                    if act in SQUASHING
                    else np.zeros(dense.out_features),
                    **arrays,
                )
            )
        self._load(current)
        T = effective_targets(self._Y, P.shape[1], self._labels)
        return Probes(
            steps=np.asarray(self._series["steps"], dtype=np.int64),
            step_loss=np.asarray(self._losses, dtype=np.float64),
            epoch_loss=np.asarray(self._epoch_losses, dtype=np.float64),
            layers=traces,
            output_std=np.asarray(self._series["output_std"], dtype=np.float64),
            target_std=float(np.mean(T.std(axis=0))),
            probe_output=prediction_space(P, self._labels),
            probe_target=T,
            diverged=self._diverged,
            steps_per_epoch=self._steps_per_epoch,
            epochs=self._epochs,
            batch_size=self._batch_size,
            probe_every=self._every,
            probe_loss=probe_loss,
        )


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
