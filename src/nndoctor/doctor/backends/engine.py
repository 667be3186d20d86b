"""The engine backend: :mod:`nndoctor.nn` models seen by the doctor.

:class:`Recorder` is a training callback that feeds the recorder core; :class:`EngineBackend`
describes, copies, trains and changes ``Sequential`` models for pre-flight checks and trials.
This is the only place in the doctor that knows engine classes.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from nndoctor.doctor.backends import Fit
from nndoctor.doctor.changes import (
    DATA_CHANGES,
    Change,
    InsertActivation,
    LearningRate,
    Reinit,
    RemoveOutputActivation,
    ReplaceActivations,
    ReplaceLoss,
    ReplaceOutput,
    SwitchOptimizer,
    apply_data_change,
)
from nndoctor.doctor.recorder import (
    PROBE_ROWS,
    LayerInfo,
    RecorderCore,
    Schedule,
    forward_stats,
    unit_states,
)
from nndoctor.doctor.schema import (
    LayerSpec,
    LossSpec,
    Probes,
    Run,
    batch_mean_loss,
    effective_targets,
    prediction_space,
)
from nndoctor.gradcheck import check_gradients
from nndoctor.nn import (
    BCE,
    MSE,
    SSE,
    Adam,
    Callback,
    CrossEntropy,
    Dense,
    Identity,
    Layer,
    Loss,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    TrainState,
    get_activation,
    get_initializer,
    train,
)

# rows and parameters for the finite-difference check (its cost grows with their product)
GRADCHECK_ROWS = 16
GRADCHECK_MAX_PARAMETERS = 2000
# BCE predictions this close to 0 or 1 are left out of the check (gradcheck's own limit)
GRADCHECK_SATURATED = 1e-8
# rows searched for well-conditioned ones (a forward pass over all of X costs n x width)
GRADCHECK_SCAN_ROWS = 4096
# rows per forward pass of predict (the activations of a chunk are held, never all of X)
PREDICT_CHUNK_ROWS = 8192

_LOSS_KINDS = ((SSE, "sse"), (MSE, "mse"), (BCE, "bce"), (CrossEntropy, "cross_entropy"))


def loss_spec(loss: Loss) -> LossSpec:
    kind = next((k for cls, k in _LOSS_KINDS if isinstance(loss, cls)), type(loss).__name__)
    return LossSpec(kind, getattr(loss, "reduction", "mean"), name=type(loss).__name__)


def describe_model(model: Sequential) -> list[LayerSpec]:
    """The architecture as plain :class:`LayerSpec` entries."""
    specs = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Dense):
            init = layer.init if isinstance(layer.init, str) else "custom"
            specs.append(LayerSpec("dense", layer.in_features, layer.out_features, init, str(i)))
        else:
            specs.append(LayerSpec(type(layer).__name__.lower(), name=str(i)))
    return specs


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


def _checkable_rows(model: Sequential, X: np.ndarray, loss: Loss) -> np.ndarray:
    """Rows where the loss is differentiable in floating point: finite predictions, and for
    BCE none within ``GRADCHECK_SATURATED`` of 0 or 1, where the loss is clamped (its slope
    is 0 there while the formula's is not) or computed from ``1 - p`` with few digits."""
    X = X[:GRADCHECK_SCAN_ROWS]  # enough to find GRADCHECK_ROWS good rows; bounds memory
    with np.errstate(all="ignore"):
        P = model.copy().forward(X)  # (n, out)
    ok = np.all(np.isfinite(P), axis=1)
    if isinstance(loss, BCE):
        ok &= np.all(np.minimum(P, 1.0 - P) >= GRADCHECK_SATURATED, axis=1)
    return np.flatnonzero(ok)


def gradient_check(model: Sequential, X: np.ndarray, Y: np.ndarray, loss: Loss) -> dict | None:
    """Finite-difference check of the backward pass on a few well-conditioned rows; None when
    too costly or when no row has a loss with a derivative to check."""
    if model.n_parameters > GRADCHECK_MAX_PARAMETERS:
        return None
    rows = _checkable_rows(model, X, loss)[:GRADCHECK_ROWS]
    if not rows.size:
        return None
    try:
        result = check_gradients(model, X[rows], Y[rows], loss, autograd=False)
    except ValueError:
        # the loss is not finite a step away from the weights (BCE on outputs leaving [0, 1])
        return None
    # The worst *failing* tensor: a passing one can show a larger relative error on elements
    # near 0 that pass on the absolute tolerance.
    candidates = [result.parameters[name] for name in result.failed] or list(
        result.parameters.values()
    )
    worst = max(candidates, key=lambda c: c.max_abs_error)
    return {
        "passed": result.passed,
        "failed": result.failed,
        "worst": worst.name,
        "worst_index": list(worst.worst_index),
        "analytic": worst.analytic,
        "numeric": worst.numeric,
        "max_rel_error": worst.max_rel_error,
    }


def _body(layers: list[Layer]) -> list[Layer]:
    """The layers without the output activation (if there is one)."""
    return layers[:-1] if not isinstance(layers[-1], Dense) else layers


class EngineBackend:
    """:class:`~nndoctor.doctor.backends.Backend` for :mod:`nndoctor.nn` models."""

    name = "engine"
    # every check up front, as the engine's held-out and catalog results were measured: its
    # seed case is within diagnose's 3x budget with them (benchmarks/bench_diagnose.py)
    deferred_checks = False
    # trials may train copies in forked processes: NumPy state forks cleanly
    fork_safe = True

    def describe(self, run: Run) -> list[LayerSpec]:
        return describe_model(run.model)

    def loss_spec(self, run: Run) -> LossSpec:
        return loss_spec(run.loss)

    def optimizer_spec(self, run: Run) -> dict[str, Any]:
        return {"name": type(run.optimizer).__name__, **run.optimizer.get_params()}

    def n_parameters(self, run: Run) -> int:
        return run.model.n_parameters

    def loss_value(self, run: Run, P: np.ndarray, Y: np.ndarray) -> float:
        return batch_mean_loss(run.loss, P, Y, run.batch_size)

    def _train(self, run: Run, epochs: int, seed: int, callbacks: list, progress: Any) -> Fit:
        model = run.model.copy()
        history = train(
            model,
            run.X,
            run.Y,
            loss=run.loss,
            optimizer=run.optimizer.fresh(),
            epochs=epochs,
            batch_size=run.batch_size,
            shuffle=run.shuffle,
            seed=seed,
            callbacks=callbacks,
            progress=progress,
        )
        return Fit(model, history.loss, history.diverged, history.wall_time)

    def record(self, run: Run, progress: bool | None) -> tuple[Probes, Fit]:
        recorder = Recorder(PROBE_ROWS, run.seed)
        fit = self._train(run, run.epochs, run.seed, [recorder], progress)
        assert recorder.probes is not None
        return recorder.probes, fit

    def fit(self, run: Run, epochs: int, seed: int) -> Fit:
        return self._train(run, epochs, seed, [], False)

    def predict(self, model: Sequential, X: np.ndarray) -> np.ndarray:
        # on a copy, in chunks: no activations of all of X are held, on the model or at all
        work = model.copy()
        if len(X) <= PREDICT_CHUNK_ROWS:
            return work.forward(X)
        return np.concatenate(
            [
                work.forward(X[lo : lo + PREDICT_CHUNK_ROWS])
                for lo in range(0, len(X), PREDICT_CHUNK_ROWS)
            ]
        )

    def reinitialise(self, run: Run, seed: int, init: str | None = None) -> Run:
        return replace(run, model=reinitialise(run.model, seed, init))

    def same_weights(self, a: Run, b: Run) -> bool:
        pa, pb = a.model.named_parameters(), b.model.named_parameters()
        return all(np.array_equal(pa[k], pb[k]) for k in pa)

    def gradient_check(self, run: Run) -> dict[str, Any] | None:
        return gradient_check(run.model, run.X, run.Y, run.loss)

    def apply(self, run: Run, change: Change) -> Run | None:
        if isinstance(change, DATA_CHANGES):
            return apply_data_change(run, change)
        if isinstance(change, LearningRate):
            return replace(run, optimizer=run.optimizer.with_lr(change.value))
        if isinstance(change, SwitchOptimizer) and change.name == "adam":
            return replace(run, optimizer=Adam(lr=change.lr))
        if isinstance(change, Reinit):
            return self.reinitialise(run, run.seed, change.init)
        layers = list(run.model.copy().layers)
        if isinstance(change, InsertActivation):
            layers = [layer for layer in layers if not isinstance(layer, Identity)]
            out: list[Layer] = []
            for i, layer in enumerate(layers):
                out.append(layer)
                feeds_dense = i + 1 < len(layers) and isinstance(layers[i + 1], Dense)
                if isinstance(layer, Dense) and feeds_dense:
                    out.append(get_activation(change.activation))
            return replace(run, model=Sequential(*out))
        if isinstance(change, RemoveOutputActivation):
            if type(layers[-1]).__name__ != change.name:
                return None
            return replace(run, model=Sequential(*layers[:-1]))
        if isinstance(change, ReplaceOutput):
            if change.activation == "identity":
                if isinstance(layers[-1], Dense):
                    return None
                return replace(run, model=Sequential(*layers[:-1]))
            act = get_activation(change.activation)
            return replace(run, model=Sequential(*_body(layers), act))
        if isinstance(change, ReplaceLoss):
            return self._replace_loss(run, layers, change)
        if isinstance(change, ReplaceActivations):
            last_dense = max(i for i, x in enumerate(layers) if isinstance(x, Dense))
            out = [
                ReLU() if isinstance(x, Sigmoid | Tanh) and i < last_dense else x
                for i, x in enumerate(layers)
            ]
            return replace(run, model=reinitialise(Sequential(*out), run.seed, "he_uniform"))
        return None

    def _replace_loss(self, run: Run, layers: list[Layer], change: ReplaceLoss) -> Run | None:
        body = _body(layers)
        if change.loss == "mse":
            return replace(run, model=Sequential(*body), loss=MSE())
        if change.loss == "cross_entropy" and change.classes >= 2:
            last = body[-1]
            assert isinstance(last, Dense)
            rng = np.random.default_rng(run.seed)
            head = Dense(last.in_features, change.classes, init="xavier_uniform", seed=rng)
            labels = run.Y.reshape(len(run.Y), -1)[:, 0].astype(np.intp)
            return replace(run, model=Sequential(*body[:-1], head), loss=CrossEntropy(), Y=labels)
        return None


ENGINE = EngineBackend()
