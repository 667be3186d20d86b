"""The training loop: per-sample, mini-batch and full-batch training are the same call.

Callbacks see every step twice: after the backward pass (gradients ready, weights not yet
updated) and after the optimiser's update. That is where the doctor listens.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndoctor._progress import ProgressBar
from nndoctor._validate import (
    as_float_array,
    as_rng,
    batch_rows,
    check_instance,
    check_positive_int,
    check_rows,
    check_seed,
)
from nndoctor.nn.layers import Sequential
from nndoctor.nn.losses import Loss, get_loss
from nndoctor.nn.optim import Optimizer


@dataclass
class TrainState:
    """What a callback sees. ``stop = True`` ends training after the current step."""

    model: Sequential
    X: np.ndarray
    Y: np.ndarray
    loss: Loss
    optimizer: Optimizer
    epochs: int
    batch_size: int
    epoch: int = 0
    step: int = 0
    X_batch: np.ndarray | None = None
    Y_batch: np.ndarray | None = None
    output: np.ndarray | None = None
    batch_loss: float = math.nan
    # the mean batch loss of the epoch just ended (set before on_epoch_end)
    epoch_loss: float = math.nan
    stop: bool = False


class Callback:
    """Hooks called by :func:`train`; override the ones you need."""

    def on_train_begin(self, state: TrainState) -> None: ...

    def on_gradients(self, state: TrainState) -> None:
        """After backward: ``state.model.named_gradients()`` holds this step's gradients."""

    def on_step_end(self, state: TrainState) -> None:
        """After the optimiser's update."""

    def on_epoch_end(self, state: TrainState) -> None: ...

    def on_train_end(self, state: TrainState) -> None: ...


@dataclass
class History:
    """Result of :func:`train`.

    Attributes
    ----------
    loss : ndarray, shape (epochs_run,)
        Mean batch loss of each epoch (a partial last epoch if training stopped early).
    step_loss : ndarray, shape (steps_run,)
        Loss of every step, measured before that step's update.
    diverged : dict or None
        ``{"epoch", "step", "loss"}`` of the first non-finite loss; training stops there.
    wall_time : float
        Seconds spent in the loop.
    """

    loss: np.ndarray
    step_loss: np.ndarray
    diverged: dict[str, Any] | None = None
    wall_time: float = 0.0
    batch_size: int = 0
    epochs: int = 0

    @property
    def final_loss(self) -> float:
        return float(self.loss[-1]) if len(self.loss) else math.nan


def validate_data(model: Sequential, X: Any, Y: Any, loss: Loss) -> tuple[np.ndarray, np.ndarray]:
    """Check ``X`` and ``Y`` against each other, the model's first layer and the loss.

    Returns float64 copies-or-views; ``Y=None`` means an autoencoder (targets are ``X``).
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be an nndoctor.nn.Sequential, got {type(model).__name__}")
    X = as_float_array(X, "X", ndim=2)
    if len(X) == 0:
        raise ValueError("X has no samples")
    n_in = model.in_features
    if n_in is not None and X.shape[1] != n_in:
        raise ValueError(
            f"X has {X.shape[1]} features (columns) but the model's first layer expects {n_in}"
        )
    Y = loss.check_targets(X if Y is None else Y, model.out_features)
    check_rows(X, Y)
    return X, Y


def check_run(
    model: Sequential,
    X: Any,
    Y: Any,
    loss: Loss | str,
    optimizer: Optimizer,
    epochs: int,
    batch_size: int | None,
    *,
    seed: Any = 0,
    min_samples: int = 1,
) -> tuple[Loss, np.ndarray, np.ndarray, int, int]:
    """The checks :func:`train` makes before its first step, for callers that need them
    earlier (the doctor): returns the loss object, ``X`` and ``Y`` as from
    :func:`validate_data`, ``epochs`` and the rows per step.

    ``seed`` must be a non-negative int or a Generator; ``min_samples`` is the fewest rows
    the caller can work with (the doctor needs two: one sample cannot be diagnosed)."""
    check_instance(loss, Loss, "loss", "")
    check_instance(optimizer, Optimizer, "optimizer", "lr=...")
    loss = get_loss(loss)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an nndoctor.nn optimizer, got {optimizer!r}")
    if not isinstance(seed, np.random.Generator):
        check_seed(seed)
    X, Y = validate_data(model, X, Y, loss)
    if len(X) < min_samples:
        raise ValueError(
            f"X has {len(X)} sample(s) (rows); at least {min_samples} are needed: "
            "one sample has no spread, so constant inputs or targets, bounds and skill "
            "cannot be told apart"
        )
    epochs = check_positive_int(epochs, "epochs")
    return loss, X, Y, epochs, batch_rows(batch_size, len(X))


def train(
    model: Sequential,
    X: Any,
    Y: Any = None,
    *,
    loss: Loss | str,
    optimizer: Optimizer,
    epochs: int,
    batch_size: int | None = None,
    shuffle: bool = False,
    seed: int | np.random.Generator = 0,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
) -> History:
    """Train ``model`` in place and return its :class:`History`.

    Parameters
    ----------
    model : Sequential
    X : array, shape (n, in_features)
    Y : array, shape (n, out_features), or (n,) integer labels for CrossEntropy; None = X
    loss : Loss or str
    optimizer : Optimizer
        Its state is kept between calls, as a PyTorch optimiser's would be.
    epochs : int
        Passes over the data.
    batch_size : int or None
        Rows per step; None = full batch. Consecutive rows when ``shuffle`` is False.
    shuffle : bool
        Draw a new permutation of the rows every epoch from ``seed``.
    callbacks : sequence of Callback
    progress : bool or None
        Progress bar on stderr; None = only on a terminal for runs longer than about a second.
    """
    loss, X, Y, epochs, batch_size = check_run(
        model, X, Y, loss, optimizer, epochs, batch_size, seed=seed
    )
    n = len(X)
    rng = as_rng(seed)
    params, grads = model.named_parameters(), model.named_gradients()
    state = TrainState(model, X, Y, loss, optimizer, epochs, batch_size)
    bar = ProgressBar(epochs, "epoch", enabled=progress)
    epoch_loss: list[float] = []
    step_loss: list[float] = []
    diverged = None
    start = time.perf_counter()
    for cb in callbacks:
        cb.on_train_begin(state)
    # Overflow inside a diverging run is expected; it is caught as a non-finite loss below.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for epoch in range(epochs):
            state.epoch = epoch
            Xe, Ye = (X, Y)
            if shuffle:
                order = rng.permutation(n)
                Xe, Ye = X[order], Y[order]
            total, count = 0.0, 0
            for lo in range(0, n, batch_size):
                Xb, Yb = Xe[lo : lo + batch_size], Ye[lo : lo + batch_size]
                P = model.forward(Xb)
                value = loss(P, Yb)
                step_loss.append(value)
                total += value
                count += 1
                if not math.isfinite(value):
                    diverged = {"epoch": epoch, "step": state.step, "loss": value}
                    break
                model.backward(loss.gradient(P, Yb))
                if callbacks:
                    state.X_batch, state.Y_batch, state.output, state.batch_loss = Xb, Yb, P, value
                    for cb in callbacks:
                        cb.on_gradients(state)
                optimizer.step(params, grads)
                for cb in callbacks:
                    cb.on_step_end(state)
                state.step += 1
                if state.stop:
                    break
            epoch_loss.append(total / count)
            state.epoch_loss = epoch_loss[-1]
            if diverged is None:
                for cb in callbacks:
                    cb.on_epoch_end(state)
            bar.update(epoch + 1, loss=epoch_loss[-1])
            if diverged is not None or state.stop:
                break
    bar.close()
    history = History(
        loss=np.array(epoch_loss),
        step_loss=np.array(step_loss),
        diverged=diverged,
        wall_time=time.perf_counter() - start,
        batch_size=batch_size,
        epochs=epochs,
    )
    for cb in callbacks:
        cb.on_train_end(state)
    return history
