"""Losses: each value sits beside its gradient with respect to the predictions ``P``.

``P`` is ``(n, k)``: one row per sample. Targets ``T`` have the shape of ``P``, except for
:class:`CrossEntropy`, whose targets are integer class labels of shape ``(n,)``. The reductions
follow PyTorch, so the twin's losses (``nndoctor.torch.loss_to_torch``) give the same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nndoctor._validate import as_float_array, check_finite

_REDUCTIONS = ("mean", "sum")


class Loss:
    """Base class. Subclasses implement ``__call__`` (the value) and ``gradient`` (dL/dP)."""

    reduction = "sum"

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def __call__(self, P: np.ndarray, T: np.ndarray) -> float:
        raise NotImplementedError

    def gradient(self, P: np.ndarray, T: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _scale(self, n_terms: int) -> float:
        return 1.0 / n_terms if self.reduction == "mean" else 1.0

    def check_targets(self, T: Any, n_outputs: int | None, name: str = "Y") -> np.ndarray:
        """Validate targets for a model with ``n_outputs`` outputs; returns them as float64.

        A target vector ``(n,)`` for a one-output model is refused rather than reshaped:
        silently broadcasting ``(n, 1)`` against ``(n,)`` is a classic cause of constant output.
        """
        T = as_float_array(T, name, ndim=2 if n_outputs != 1 else (1, 2))
        if T.ndim == 1:
            raise ValueError(
                f"{name} has shape {T.shape} but the model outputs shape (n, 1): reshape the "
                f"targets with {name}.reshape(-1, 1) (a (n,) vs (n, 1) broadcast gives an (n, n) "
                "difference and a constant output)"
            )
        if n_outputs is not None and T.shape[1] != n_outputs:
            raise ValueError(
                f"{name} has {T.shape[1]} columns but the model has {n_outputs} outputs"
            )
        return T

    def config(self) -> dict[str, Any]:
        return {"reduction": self.reduction}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class SSE(Loss):
    """Half the sum of squared errors, ``0.5 * sum((P - T)**2)``: the seed's loss."""

    def __init__(self) -> None:
        super().__init__("sum")

    def __call__(self, P: np.ndarray, T: np.ndarray) -> float:
        D = P - T
        return 0.5 * float(np.vdot(D, D))

    def gradient(self, P: np.ndarray, T: np.ndarray) -> np.ndarray:
        return P - T

    def config(self) -> dict[str, Any]:
        return {}


class MSE(Loss):
    """Mean (or sum) of squared errors over all elements, as ``torch.nn.MSELoss``."""

    def __call__(self, P: np.ndarray, T: np.ndarray) -> float:
        D = P - T
        return float(np.vdot(D, D)) * self._scale(D.size)

    def gradient(self, P: np.ndarray, T: np.ndarray) -> np.ndarray:
        return 2.0 * (P - T) * self._scale(P.size)


class BCE(Loss):
    """Binary cross-entropy on probabilities, as ``torch.nn.BCELoss``.

    Like PyTorch, each log is clamped at -100 so that a probability of exactly 0 or 1 gives
    a large finite loss, and the gradient's denominator ``p (1 - p)`` is clamped at 1e-12.
    """

    def __call__(self, P: np.ndarray, T: np.ndarray) -> float:
        with np.errstate(divide="ignore"):
            log_p = np.maximum(np.log(P), -100.0)
            log_q = np.maximum(np.log1p(-P), -100.0)
        terms = -(T * log_p + (1.0 - T) * log_q)
        return float(terms.sum()) * self._scale(P.size)

    def gradient(self, P: np.ndarray, T: np.ndarray) -> np.ndarray:
        return (P - T) / np.maximum(P * (1.0 - P), 1e-12) * self._scale(P.size)


class CrossEntropy(Loss):
    """Softmax cross-entropy on logits ``(n, c)`` with integer labels ``(n,)``, as
    ``torch.nn.CrossEntropyLoss``."""

    def _log_softmax(self, P: np.ndarray) -> np.ndarray:
        Z = P - P.max(axis=1, keepdims=True)
        return Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))

    def __call__(self, P: np.ndarray, T: np.ndarray) -> float:
        labels = T.astype(np.intp, copy=False)
        picked = self._log_softmax(P)[np.arange(len(P)), labels]
        return -float(picked.sum()) * self._scale(len(P))

    def gradient(self, P: np.ndarray, T: np.ndarray) -> np.ndarray:
        # d/dz of -log softmax(z)[y] is softmax(z) - onehot(y).
        G = np.exp(self._log_softmax(P))
        G[np.arange(len(P)), T.astype(np.intp, copy=False)] -= 1.0
        return G * self._scale(len(P))

    def check_targets(self, T: Any, n_outputs: int | None, name: str = "Y") -> np.ndarray:
        T = np.asarray(T)
        if T.ndim == 2 and T.shape[1] == 1:
            T = T[:, 0]
        if T.ndim != 1:
            raise ValueError(
                f"CrossEntropy takes integer class labels of shape (n,), got {name} of shape "
                f"{T.shape} (one-hot targets: pass {name}.argmax(axis=1))"
            )
        if not (np.issubdtype(T.dtype, np.integer) or np.issubdtype(T.dtype, np.floating)):
            raise TypeError(f"CrossEntropy labels {name} must be integers, got dtype {T.dtype}")
        if np.issubdtype(T.dtype, np.floating):
            check_finite(T, name)
            fractional = np.flatnonzero(np.round(T) != T)
            if fractional.size:
                i = int(fractional[0])
                raise ValueError(
                    f"CrossEntropy labels {name} must be whole numbers; "
                    f"{name}[{i}] = {T[i].item()!r}"
                )
        if n_outputs is not None:
            bad = np.flatnonzero((T < 0) | (n_outputs <= T))
            if bad.size:
                i = int(bad[0])
                # labels 1..C instead of 0..C-1 is the usual way to get here
                hint = f"; subtract 1 from {name}" if T.min() == 1 and T.max() == n_outputs else ""
                raise ValueError(
                    f"CrossEntropy label {name}[{i}] = {T[i].item()!r} is out of range for a model "
                    f"with {n_outputs} outputs (labels must be in 0..{n_outputs - 1}){hint}"
                )
        return T.astype(np.float64)


LOSSES: dict[str, type[Loss]] = {
    "sse": SSE,
    "mse": MSE,
    "bce": BCE,
    "cross_entropy": CrossEntropy,
    "crossentropy": CrossEntropy,
}


def get_loss(loss: str | Loss) -> Loss:
    """A loss from its name (``"sse"``, ``"mse"``, ``"bce"``, ``"cross_entropy"``) or itself."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss.lower() in LOSSES:
        return LOSSES[loss.lower()]()
    raise ValueError(f"unknown loss {loss!r}; choose one of: {', '.join(LOSSES)}, or a Loss")
