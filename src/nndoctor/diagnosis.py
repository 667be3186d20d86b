"""``diagnose`` and the engine's ``Doctor`` callback: the ways into the doctor that start from a
model and its data.

``diagnose`` picks the model's backend, which validates and copies the setup; the core's
pipeline (:func:`nndoctor.doctor.examine.examine`) does the rest through the backend protocol.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nndoctor.backends import backend_for
from nndoctor.backends.engine import ENGINE, Recorder
from nndoctor.doctor.context import build_context
from nndoctor.doctor.examine import examine, make_report
from nndoctor.doctor.report import Report
from nndoctor.doctor.schema import Run
from nndoctor.nn import History, TrainState


class Doctor(Recorder):
    """A training callback that watches a run and reports on it.

    ``train(model, X, Y, ..., callbacks=[doctor])`` then ``doctor.report()``. The callback
    records probes (see :mod:`nndoctor.doctor.recorder`); the report adds bounds and the rules.
    Pre-flight checks and trials need extra training runs: use :func:`diagnose` for those.

    Parameters
    ----------
    probe_rows : int
        Rows of the fixed probe batch.
    seed : int
        Picks the probe rows and seeds the predictability test.
    """

    def on_train_begin(self, state: TrainState) -> None:
        super().on_train_begin(state)
        run = Run(
            ENGINE,
            state.model,
            state.X,
            state.Y,
            state.loss,
            state.optimizer,
            state.epochs,
            state.batch_size,
            shuffle=None,  # type: ignore[arg-type]  # the callback cannot see it
            seed=self.seed,
        )
        self._context = build_context(run)

    def report(self, history: History | None = None) -> Report:
        """The ranked findings of the run watched last."""
        if self.probes is None:
            raise RuntimeError(
                "the Doctor has not watched a training run yet: pass it to "
                "train(..., callbacks=[doctor]) first"
            )
        return make_report(
            self.probes, self._context, None if history is None else history.wall_time
        )


def diagnose(
    model: Any,
    X: Any,
    Y: Any = None,
    *,
    loss: Any,
    optimizer: Any,
    epochs: int,
    batch_size: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
    trials: bool = True,
    progress: bool | None = None,
    device: Any = None,
    zero_grad: bool = True,
    scheduler: Any = None,
    warmup: int | None = None,
    clip: float | None = None,
    grad_scaler: bool = False,
) -> Report:
    """Train a copy of ``model``, watch it, and say why it does (not) learn.

    Parameters
    ----------
    model : nndoctor.nn.Sequential or torch.nn.Module
        Left untouched: the doctor trains deep copies.
    X : array_like, shape (n, in_features), or a torch DataLoader / iterable of
        ``(inputs, targets)`` batches (then ``Y`` is None)
    Y : array_like, shape (n, out_features) or (n,) labels for CrossEntropy; None = X
        (an autoencoder).
    loss : Loss or str (engine); a torch loss module or a callable
        ``(output, target) -> scalar tensor`` (PyTorch)
    optimizer : nndoctor.nn optimiser (its settings are used on fresh copies); for PyTorch a
        factory ``params -> torch.optim.Optimizer``, e.g. ``lambda p: torch.optim.Adam(p)``
    epochs : int
    batch_size : int or None
        None = full batch.
    shuffle : bool
    seed : int
        Shuffling, the probe batch, re-initialisations in trials.
    trials : bool
        Re-run training with the fix of each top cause (at most two) to confirm it.
    progress : bool or None
        Progress bar of the main run.
    device : str or torch.device, optional
        PyTorch only: where the copies train (default: where the model's parameters are).
    zero_grad : bool
        PyTorch only: False reproduces a loop that never calls ``optimizer.zero_grad()``.
    scheduler : callable, optional
        PyTorch only: a factory ``optimizer -> LR scheduler``, stepped once per epoch.
    warmup : int, optional
        PyTorch only: steps of a linear learning-rate warmup (from ``1/warmup`` of the rate).
    clip : float, optional
        PyTorch only: clip the gradients' total norm at this value every step.
    grad_scaler : bool
        PyTorch only: float16 loss scaling with ``torch.amp.GradScaler`` (for a model that runs
        in float16 autocast).

    Returns
    -------
    Report

    Raises
    ------
    ValueError, TypeError
        Before any training: data that does not fit the model, NaN or inf in the data,
        ``epochs`` or ``batch_size`` not a positive integer, an unknown loss or optimiser.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {seed!r}")
    # the framework's own settings: only those the user set, so that a backend without them
    # can refuse them by name
    options = {
        k: v
        for k, v in (
            ("device", device),
            ("zero_grad", zero_grad),
            ("scheduler", scheduler),
            ("warmup", warmup),
            ("clip", clip),
            ("grad_scaler", grad_scaler),
        )
        if v is not _DEFAULTS[k]
    }
    run = backend_for(model).prepare(
        model,
        X,
        Y,
        loss=loss,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=int(seed),
        options=options,
    )
    return examine(run, trials=trials, progress=progress)


_DEFAULTS: dict[str, Any] = {
    "device": None,
    "zero_grad": True,
    "scheduler": None,
    "warmup": None,
    "clip": None,
    "grad_scaler": False,
}
