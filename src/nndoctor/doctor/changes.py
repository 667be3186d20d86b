"""Fixes as data: one small declarative change to a training run.

The doctor proposes a change, the backend applies it to a :class:`~nndoctor.doctor.schema.Run`
(``backend.apply(run, change)``), a trial trains the changed run, and the report prints
``change.describe()`` as the fix it tried. A backend that cannot make a change returns None and
the report says the trial was skipped.

Changes on the data (:class:`Standardize`, :class:`MapTargets`, :class:`Shuffle`) are applied
here, once for every backend, by :func:`apply_data_change`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from nndoctor._numeric import column_stats
from nndoctor.doctor.schema import Run


@dataclass(frozen=True)
class Change:
    """One change; ``metric`` is what its trial compares when the change alters the loss or
    the targets (``"loss"``: the original loss, in the original units)."""

    metric: ClassVar[str] = "loss"

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class LearningRate(Change):
    """Set the learning rate to ``value``."""

    value: float

    def describe(self) -> str:
        return f"learning rate {self.value:g}"


@dataclass(frozen=True)
class Reinit(Change):
    """Re-draw every weight from ``init`` (biases at 0)."""

    init: str

    def describe(self) -> str:
        return f"re-initialise with {self.init}"


@dataclass(frozen=True)
class Standardize(Change):
    """Standardise ``"inputs"`` or ``"targets"`` (per column, zero mean and unit std)."""

    what: str

    def describe(self) -> str:
        return f"standardise the {self.what}"


@dataclass(frozen=True)
class MapTargets(Change):
    """Map two label values ``{lo, hi}`` to ``{0, 1}``."""

    lo: float
    hi: float
    metric: ClassVar[str] = "mse"

    def describe(self) -> str:
        return f"labels mapped from {{{self.lo:g}, {self.hi:g}}} to {{0, 1}}"


@dataclass(frozen=True)
class Shuffle(Change):
    # judged by the end weights' loss on all the data: the epoch loss is what misleads here
    metric: ClassVar[str] = "loss of end weights"

    def describe(self) -> str:
        return "shuffle every epoch"


@dataclass(frozen=True)
class InsertActivation(Change):
    """Put ``activation`` after every weighted layer that feeds another one directly."""

    activation: str = "relu"

    def describe(self) -> str:
        return f"insert {self.activation_name} between consecutive Dense layers"

    @property
    def activation_name(self) -> str:
        return {"relu": "ReLU"}.get(self.activation, self.activation)


@dataclass(frozen=True)
class ReplaceOutput(Change):
    """Replace the output activation by ``activation`` (``"identity"`` removes it)."""

    activation: str
    replaced: str = ""

    @property
    def metric(self) -> str:  # type: ignore[override]
        # a sigmoid put on a classifier's output changes what the loss sees: compare MSE
        return "loss" if self.activation == "identity" else "mse"

    def describe(self) -> str:
        if self.activation == "identity":
            return f"identity output instead of {self.replaced}"
        return f"{self.activation} output" + (
            f" instead of {self.replaced}" if self.replaced else ""
        )


@dataclass(frozen=True)
class RemoveOutputActivation(Change):
    """Drop the activation (``name``) the loss applies itself (softmax before CrossEntropy)."""

    name: str
    metric: ClassVar[str] = "error rate"

    def describe(self) -> str:
        return f"remove the {self.name}"


@dataclass(frozen=True)
class ReplaceLoss(Change):
    """Train with another loss: ``"mse"`` with an identity output (regression targets), or
    ``"cross_entropy"`` with ``classes`` outputs (integer labels given to BCE)."""

    loss: str
    classes: int = 0

    @property
    def metric(self) -> str:  # type: ignore[override]
        return "error rate" if self.loss == "cross_entropy" else "mse"

    def describe(self) -> str:
        if self.loss == "cross_entropy":
            return f"CrossEntropy loss with {self.classes} outputs"
        return "MSE loss with an identity output"


@dataclass(frozen=True)
class ReplaceActivations(Change):
    """Hidden sigmoid/tanh activations become ReLU, re-initialised with He."""

    def describe(self) -> str:
        return "ReLU hidden activations with He initialisation"


@dataclass(frozen=True)
class SetOption(Change):
    """A backend setting of the training loop (PyTorch: ``zero_grad``, ``train_mode``,
    ``unfreeze``, ``scheduler``, ``reshape_target``): ``run.options[key] = value``."""

    key: str
    value: object
    text: str

    def describe(self) -> str:
        return self.text


DATA_CHANGES = (Standardize, MapTargets, Shuffle)


def apply_data_change(run: Run, change: Change) -> Run:
    """A change to the data or its order, the same for every backend."""
    if isinstance(change, Shuffle):
        return replace(run, shuffle=True)
    if isinstance(change, MapTargets):
        lo, hi = change.lo, change.hi
        return replace(
            run,
            Y=(run.Y - lo) / (hi - lo),
            unscale=lambda P: P * (hi - lo) + lo,
        )
    assert isinstance(change, Standardize)
    if change.what == "targets":
        mean, std, _ = column_stats(run.Y.reshape(len(run.Y), -1))  # no overflow at 1e200
        mean, std = mean.reshape(run.Y.shape[1:]), std.reshape(run.Y.shape[1:])
        scale = np.where(std > 0, std, 1.0)
        # trained on standardised targets, judged on the original loss in the original units
        return replace(run, Y=(run.Y - mean) / scale, unscale=lambda P: P * scale + mean)
    mean, std, _ = column_stats(run.X)  # no overflow at 1e200
    scale = np.where(std > 0, std, 1.0)
    X = (run.X - mean) / scale
    if run.autoencoder:
        # the targets are the inputs: reconstruct the standardised data, judge in data units
        return replace(run, X=X, Y=X, unscale=lambda P: P * scale + mean)
    return replace(run, X=X)


@dataclass(frozen=True)
class SwitchOptimizer(Change):
    """Train with another optimiser (``"adam"``) at learning rate ``lr``: what the pre-flight
    check that overfits a tiny batch uses, whatever the user chose."""

    name: str
    lr: float

    def describe(self) -> str:
        return f"{self.name} at learning rate {self.lr:g}"


@dataclass(frozen=True)
class Warmup(Change):
    """Raise the learning rate linearly from ``1/steps`` of its value to all of it over the
    first ``steps`` optimizer steps."""

    steps: int

    def describe(self) -> str:
        return f"linear learning-rate warmup over the first {self.steps} steps"


@dataclass(frozen=True)
class ClipGradients(Change):
    """Scale the gradients down to a total norm of ``max_norm`` whenever they exceed it."""

    max_norm: float

    def describe(self) -> str:
        return f"gradient clipping at norm {self.max_norm:.3g}"


@dataclass(frozen=True)
class QKNorm(Change):
    """Normalise every attention's queries and keys (a LayerNorm over each head's features,
    without learned gains) before their dot products: the logits stay bounded."""

    def describe(self) -> str:
        return "qk-layernorm (queries and keys normalised before every attention)"


@dataclass(frozen=True)
class ZLoss(Change):
    """Add ``weight * mean(log Z ** 2)`` to the loss (``log Z``: the log-sum-exp of the
    output logits), which pulls the logits' normaliser towards 1. Judged on the original loss
    of the end weights."""

    weight: float
    metric: ClassVar[str] = "loss of end weights"

    def describe(self) -> str:
        return f"z-loss (weight {self.weight:g}) on the output logits"


@dataclass(frozen=True)
class Float32(Change):
    """Run module ``module`` (its qualified name; ``""`` the whole model) in float32, outside
    autocast's lower precision."""

    module: str

    def describe(self) -> str:
        return f"float32 for {self.module or 'the whole model'}"
