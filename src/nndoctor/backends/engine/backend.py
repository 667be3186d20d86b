"""The engine backend: :mod:`nndoctor.nn` models seen by the doctor.

:class:`EngineBackend` validates, describes, copies, trains and changes ``Sequential`` models
for ``diagnose``'s recorded run, pre-flight checks and trials (the recorded run is watched by
:class:`~nndoctor.backends.engine.recorder.Recorder`). This folder is the only place in the
doctor that knows engine classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from nndoctor.backends.engine.recorder import Recorder
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
from nndoctor.doctor.recorder import PROBE_ROWS
from nndoctor.doctor.schema import (
    Fit,
    LayerSpec,
    LossSpec,
    Probes,
    Run,
    TaskSpec,
    batch_mean_loss,
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
from nndoctor.nn.train import check_run

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


class _StopBelow(Callback):
    """Ends training after the first epoch whose mean batch loss is at most ``level``."""

    def __init__(self, level: float) -> None:
        self.level = level

    def on_epoch_end(self, state: TrainState) -> None:
        # set once the epoch is over: train() then ends without starting the next one
        state.stop = state.epoch_loss <= self.level


class EngineBackend:
    """:class:`~nndoctor.doctor.protocol.Backend` for :mod:`nndoctor.nn` models."""

    name = "engine"
    # every check up front, as the engine's held-out and catalog results were measured: its
    # seed case is within diagnose's 3x budget with them (benchmarks/bench_diagnose.py)
    deferred_checks = False
    # trials may train copies in forked processes: NumPy state forks cleanly
    fork_safe = True

    def prepare(
        self,
        model: Sequential,
        X: Any,
        Y: Any,
        *,
        loss: Loss | str,
        optimizer: Any,
        epochs: int,
        batch_size: int | None,
        shuffle: bool,
        seed: int,
        options: dict[str, Any],
    ) -> Run:
        """The :class:`Run` of an engine model, validated as ``train`` would (``Y=None``: X)."""
        if options:
            raise TypeError(
                f"{', '.join(sorted(options))}: only PyTorch models take these settings"
            )
        loss, Xv, Yv, epochs, bs = check_run(
            model, X, Y, loss, optimizer, epochs, batch_size, seed=seed, min_samples=2
        )
        if Y is None:
            Yv = Xv
        if not model.named_parameters():
            raise ValueError("the model has no parameters (no Dense layer) to train")
        # a copy: the doctor's forward passes must not touch the user's model
        return Run(self, model.copy(), Xv, Yv, loss, optimizer, epochs, bs, shuffle, seed)

    def describe(self, run: Run) -> list[LayerSpec]:
        return describe_model(run.model)

    def loss_spec(self, run: Run) -> LossSpec:
        return loss_spec(run.loss)

    def task_spec(self, run: Run) -> TaskSpec:
        return TaskSpec()  # rows of features, one target per row: the engine's only kind

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

    def fit(self, run: Run, epochs: int, seed: int, *, stop_below: float | None = None) -> Fit:
        callbacks = [] if stop_below is None else [_StopBelow(stop_below)]
        return self._train(run, epochs, seed, callbacks, False)

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
        make = _CHANGES.get(type(change))
        return None if make is None else make(run, change)


# --- the changes this backend can make, one function each ---


def _learning_rate(run: Run, change: LearningRate) -> Run:
    return replace(run, optimizer=run.optimizer.with_lr(change.value))


def _switch_optimizer(run: Run, change: SwitchOptimizer) -> Run | None:
    return replace(run, optimizer=Adam(lr=change.lr)) if change.name == "adam" else None


def _reinit(run: Run, change: Reinit) -> Run:
    return replace(run, model=reinitialise(run.model, run.seed, change.init))


def _insert_activation(run: Run, change: InsertActivation) -> Run:
    layers = [x for x in run.model.copy().layers if not isinstance(x, Identity)]
    out: list[Layer] = []
    for i, layer in enumerate(layers):
        out.append(layer)
        feeds_dense = i + 1 < len(layers) and isinstance(layers[i + 1], Dense)
        if isinstance(layer, Dense) and feeds_dense:
            out.append(get_activation(change.activation))
    return replace(run, model=Sequential(*out))


def _remove_output_activation(run: Run, change: RemoveOutputActivation) -> Run | None:
    layers = list(run.model.copy().layers)
    if type(layers[-1]).__name__ != change.name:
        return None
    return replace(run, model=Sequential(*layers[:-1]))


def _replace_output(run: Run, change: ReplaceOutput) -> Run | None:
    layers = list(run.model.copy().layers)
    if change.activation == "identity":
        if isinstance(layers[-1], Dense):
            return None
        return replace(run, model=Sequential(*layers[:-1]))
    return replace(run, model=Sequential(*_body(layers), get_activation(change.activation)))


def _replace_activations(run: Run, change: ReplaceActivations) -> Run:
    layers = list(run.model.copy().layers)
    last_dense = max(i for i, x in enumerate(layers) if isinstance(x, Dense))
    out = [
        ReLU() if isinstance(x, Sigmoid | Tanh) and i < last_dense else x
        for i, x in enumerate(layers)
    ]
    return replace(run, model=reinitialise(Sequential(*out), run.seed, "he_uniform"))


def _replace_loss(run: Run, change: ReplaceLoss) -> Run | None:
    body = _body(list(run.model.copy().layers))
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


_CHANGES: dict[type, Callable[[Run, Any], Run | None]] = {
    **dict.fromkeys(DATA_CHANGES, apply_data_change),
    LearningRate: _learning_rate,
    SwitchOptimizer: _switch_optimizer,
    Reinit: _reinit,
    InsertActivation: _insert_activation,
    RemoveOutputActivation: _remove_output_activation,
    ReplaceOutput: _replace_output,
    ReplaceActivations: _replace_activations,
    ReplaceLoss: _replace_loss,
}


ENGINE = EngineBackend()
