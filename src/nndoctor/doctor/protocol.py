"""The whole contract between the doctor's core and a framework, as two protocols.

- :class:`Backend`: what ``diagnose`` needs to train copies of a user's model and change them.
  The core never imports a backend: a :class:`~nndoctor.doctor.schema.Run` carries its
  backend, and everything the core asks of it goes through these methods.
- :class:`WatchedRun`: what a watch around the user's own loop (``nndoctor.watch``) offers the
  core's report and live alerts.

Both speak only the plain data of :mod:`nndoctor.doctor.schema` and the changes of
:mod:`nndoctor.doctor.changes`. ``docs/architecture.md`` shows how to add a backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from nndoctor.doctor.changes import Change
from nndoctor.doctor.schema import Fit, LayerSpec, LossSpec, NanSource, Probes, Run, TaskSpec


class Backend(Protocol):
    """One framework, seen by ``diagnose``. ``run.model`` is never trained in place: every
    method that trains works on a copy."""

    name: str
    # True: diagnose runs the costly checks (the fitted bounds, the tiny-batch fit) after the
    # recorded run and only when it did not clearly learn (nndoctor.doctor.lazy)
    deferred_checks: bool
    # True: the trials may train copies in forked processes
    fork_safe: bool

    def prepare(
        self,
        model: Any,
        X: Any,
        Y: Any,
        *,
        loss: Any,
        optimizer: Any,
        epochs: int,
        batch_size: int | None,
        shuffle: bool,
        seed: int,
        options: dict[str, Any],
    ) -> Run:
        """Validate the user's setup (a clear error naming what is wrong, before any training)
        and copy it into a :class:`Run`. ``options`` are the framework's own settings (PyTorch:
        ``device``, ``zero_grad``, ``scheduler``); a backend refuses those it does not know."""

    def describe(self, run: Run) -> list[LayerSpec]:
        """The architecture in forward order (weighted layers as ``"dense"``)."""

    def loss_spec(self, run: Run) -> LossSpec: ...

    def task_spec(self, run: Run) -> TaskSpec:
        """What one input and one target are, and the unit the loss averages over."""

    def optimizer_spec(self, run: Run) -> dict[str, Any]:
        """``name`` and the settings (``lr`` at least)."""

    def n_parameters(self, run: Run) -> int: ...

    def record(self, run: Run, progress: bool | None) -> tuple[Probes, Fit]:
        """Train a copy of ``run`` for its full budget, watched; the probes and the fit."""

    def fit(self, run: Run, epochs: int, seed: int, *, stop_below: float | None = None) -> Fit:
        """Train a copy of ``run`` for ``epochs`` (shuffling drawn from ``seed``); with
        ``stop_below``, stop after the first epoch whose mean loss is at most that."""

    def predict(self, model: Any, X: np.ndarray) -> np.ndarray:
        """Predictions ``(n, ...)`` as float64, in the loss's input space."""

    def loss_value(self, run: Run, P: np.ndarray, Y: np.ndarray) -> float:
        """The run's loss of predictions ``P`` (from :meth:`predict`) against targets ``Y``,
        averaged over batches of ``run.batch_size`` rows as training averages it."""

    def reinitialise(self, run: Run, seed: int, init: str | None = None) -> Run:
        """A copy whose weights are re-drawn under ``seed`` (``init``: another initialiser)."""

    def same_weights(self, a: Run, b: Run) -> bool: ...

    def apply(self, run: Run, change: Change) -> Run | None:
        """``run`` with ``change`` made, or None when this backend cannot make it."""

    def gradient_check(self, run: Run) -> dict[str, Any] | None:
        """Finite-difference (or autograd) check of the gradients; None when not done."""


class WatchedRun(Protocol):
    """A watch around the user's own training loop, as the core's report and alerts read it.

    Weights are ``(W (units, fan_in), b (units,))`` float64 arrays per weighted layer, in the
    order of :attr:`layer_names`.
    """

    step: int
    failed: str | None
    # called after each probed step (and after the step whose loss first was not finite)
    on_probe: list[Callable[[Any], None]]

    @property
    def layer_names(self) -> list[str]:
        """The weighted layers' names (``named_modules()``), in registration order."""

    @property
    def initial_weights(self) -> list[tuple[np.ndarray, np.ndarray]]: ...

    def weights(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Layer ``i``'s weights now."""

    @property
    def eps(self) -> float:
        """Machine epsilon of the weights' dtype (what "equal up to rounding" means)."""

    @property
    def activations(self) -> list[str]:
        """The activation read off the first forward pass per layer (empty before it)."""

    @property
    def output_activation(self) -> str: ...

    @property
    def loss_shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """``(prediction shape, target shape)`` of the first loss call seen, or None."""

    @property
    def diverged(self) -> dict[str, Any] | None:
        """``{"step", "epoch", "layer"}`` of the first non-finite loss, or None."""

    @property
    def nan_source(self) -> NanSource | None:
        """Where the first non-finite loss or gradient came from (the step replayed), or None."""

    @property
    def probes_held(self) -> int: ...

    @property
    def epochs_known(self) -> bool:
        """Whether the loop marked its epochs (else the curve holds equal stretches of steps)."""

    @property
    def adversarial(self) -> bool:
        """Whether the model's loss runs through another model trained beside it (a GAN):
        its targets are then labels the loop made up, not data."""

    def probes(self) -> Probes:
        """Everything recorded so far."""

    def layer_specs(self) -> list[LayerSpec]:
        """The architecture as the rules read it."""

    def loss_spec(self) -> LossSpec:
        """The loss, as far as the watch saw it (a loss module, or a callable)."""

    def task_spec(self) -> TaskSpec:
        """What one input and one target are, as the loss saw them on the probe steps."""

    def optimizer_spec(self) -> dict[str, Any]:
        """``name`` and the settings, ``lr`` the rate the run started with."""

    def samples(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The input rows and the targets (one row per unit of the loss) kept from the probe
        steps, or None without targets."""
