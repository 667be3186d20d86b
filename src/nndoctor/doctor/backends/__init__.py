"""Backends: what the doctor's core needs from a framework, and which backend takes a model.

A backend turns the user's model, loss and optimiser into a :class:`~nndoctor.doctor.schema.Run`
and plain descriptions (:class:`~nndoctor.doctor.schema.LayerSpec`,
:class:`~nndoctor.doctor.schema.LossSpec`), records a watched run into
:class:`~nndoctor.doctor.schema.Probes`, and trains copies for pre-flight checks and trials,
with one declarative change (:mod:`nndoctor.doctor.changes`) applied where it can.

- ``engine``: :mod:`nndoctor.nn` models (``Sequential``);
- ``torch``: any ``torch.nn.Module`` (imports torch lazily).

Adding a backend: implement :class:`Backend` in a module here and name it in
:func:`backend_for`.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from nndoctor.doctor.changes import Change
from nndoctor.doctor.schema import LayerSpec, LossSpec, Probes, Run


@dataclass
class Fit:
    """A finished training run of a copy: the trained model and its loss curve.

    ``epoch_loss`` is the mean batch loss per epoch; ``diverged`` the first non-finite loss
    (``{"epoch", "step", "loss"}``) or None.
    """

    model: Any
    epoch_loss: np.ndarray
    diverged: dict[str, Any] | None = None
    wall_time: float = 0.0

    @property
    def final_loss(self) -> float:
        return float(self.epoch_loss[-1]) if len(self.epoch_loss) else math.nan


class Backend(Protocol):
    """The contract between the core and one framework. ``run.model`` is never trained in
    place: every method that trains works on a copy."""

    name: str
    # True: diagnose runs the costly checks (the fitted bounds, the tiny-batch fit) after the
    # recorded run and only when it did not clearly learn (nndoctor.doctor.lazy)
    deferred_checks: bool

    def describe(self, run: Run) -> list[LayerSpec]:
        """The architecture in forward order (weighted layers as ``"dense"``)."""

    def loss_spec(self, run: Run) -> LossSpec: ...

    def optimizer_spec(self, run: Run) -> dict[str, Any]:
        """``name`` and the settings (``lr`` at least)."""

    def n_parameters(self, run: Run) -> int: ...

    def record(self, run: Run, progress: bool | None) -> tuple[Probes, Fit]:
        """Train a copy of ``run`` for its full budget, watched; the probes and the fit."""

    def fit(self, run: Run, epochs: int, seed: int) -> Fit:
        """Train a copy of ``run`` for ``epochs`` (shuffling drawn from ``seed``)."""

    def predict(self, model: Any, X: np.ndarray) -> np.ndarray:
        """Predictions ``(n, out)`` as float64, in the loss's input space."""

    def reinitialise(self, run: Run, seed: int, init: str | None = None) -> Run:
        """A copy whose weights are re-drawn under ``seed`` (``init``: another initialiser)."""

    def same_weights(self, a: Run, b: Run) -> bool: ...

    def apply(self, run: Run, change: Change) -> Run | None:
        """``run`` with ``change`` made, or None when this backend cannot make it."""

    def gradient_check(self, run: Run) -> dict[str, Any] | None:
        """Finite-difference (or autograd) check of the gradients; None when not done."""


def is_torch_module(model: Any) -> bool:
    """True for a ``torch.nn.Module`` (without importing torch when the user did not)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def backend_for(model: Any) -> Backend:
    """The backend that handles ``model``; ``TypeError`` naming the model's type otherwise."""
    from nndoctor.nn import Sequential

    if isinstance(model, Sequential):
        from nndoctor.doctor.backends.engine import ENGINE

        return ENGINE
    if is_torch_module(model):
        from nndoctor.doctor.backends.torch_backend import TORCH

        return TORCH
    raise TypeError(
        f"model must be an nndoctor.nn.Sequential or a torch.nn.Module, got {type(model).__name__}"
    )
