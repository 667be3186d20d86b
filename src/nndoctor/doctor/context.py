"""The plain-data context rules read beside the probes: architecture, data, bounds.

Nothing here is a model or an optimiser: a PyTorch front end fills the same fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nndoctor import bounds
from nndoctor._numeric import SAFE_MAGNITUDE, column_stats
from nndoctor.nn import BCE, MSE, SSE, CrossEntropy, Dense, Loss, Optimizer, Sequential

AUTOENCODER = "autoencoder"
REGRESSION = "regression"
BINARY = "binary"
CLASSIFICATION = "classification"

# rows given to the predictability test: k-NN needs all pairwise distances, so cap the cost
PREDICTABILITY_ROWS = 1000


@dataclass
class LayerSpec:
    """One layer: ``kind`` is ``"dense"`` or an activation name (``"sigmoid"``, ``"relu"``)."""

    kind: str
    in_features: int | None = None
    out_features: int | None = None
    init: str | None = None


@dataclass
class DataStats:
    """Statistics of inputs and targets, computed once before training."""

    n_samples: int
    x_std: np.ndarray
    x_mean: np.ndarray
    x_absmax: float
    y_min: np.ndarray
    y_max: np.ndarray
    y_std: np.ndarray
    y_integer: bool
    class_counts: np.ndarray | None
    # correlation of consecutive targets in data order: about 0 for shuffled data, near 1
    # for data sorted by class or by target (time series)
    y_order_corr: float = math.nan


@dataclass
class Context:
    """What the rules know besides the probes.

    Attributes
    ----------
    layers : list of LayerSpec
    loss_name : str
        ``"sse"``, ``"mse"``, ``"bce"`` or ``"cross_entropy"``.
    optimizer : dict
        ``name`` and the constructor arguments (``lr``, ...).
    task : str
        ``"autoencoder"``, ``"regression"``, ``"binary"`` (BCE) or ``"classification"`` (CE).
    data : DataStats
    bounds : dict
        ``baseline``, ``loss_at_rank`` (autoencoders), ``explained_variance_ratio``,
        ``least_squares``, ``predictability`` (a dict), ``text``.
    preflight : dict
        Results of :mod:`nndoctor.doctor.preflight` (may be empty).
    gradcheck : dict or None
        ``passed`` and per-parameter worst relative errors.
    shuffle : bool or None
        Whether training reshuffles the samples every epoch; None when unknown.
    """

    layers: list[LayerSpec]
    loss_name: str
    optimizer: dict[str, Any]
    task: str
    data: DataStats
    bounds: dict[str, Any] = field(default_factory=dict)
    preflight: dict[str, Any] = field(default_factory=dict)
    gradcheck: dict[str, Any] | None = None
    shuffle: bool | None = None

    @property
    def dense_widths(self) -> list[int]:
        return [s.out_features for s in self.layers if s.kind == "dense"]

    @property
    def hidden_widths(self) -> list[int]:
        return self.dense_widths[:-1]

    @property
    def output_activation(self) -> str:
        """Name of the last layer when it is an activation, else ``"identity"``."""
        last = self.layers[-1].kind if self.layers else "identity"
        return "identity" if last == "dense" else last

    @property
    def lr(self) -> float:
        return float(self.optimizer.get("lr", math.nan))


_LOSS_NAMES = ((SSE, "sse"), (MSE, "mse"), (BCE, "bce"), (CrossEntropy, "cross_entropy"))


def loss_name(loss: Loss) -> str:
    for cls, name in _LOSS_NAMES:
        if isinstance(loss, cls):
            return name
    return type(loss).__name__.lower()


def describe_model(model: Sequential) -> list[LayerSpec]:
    """The architecture as plain :class:`LayerSpec` entries."""
    specs = []
    for layer in model.layers:
        if isinstance(layer, Dense):
            init = layer.init if isinstance(layer.init, str) else "custom"
            specs.append(LayerSpec("dense", layer.in_features, layer.out_features, init))
        else:
            specs.append(LayerSpec(type(layer).__name__.lower()))
    return specs


def describe_optimizer(optimizer: Optimizer) -> dict[str, Any]:
    return {"name": type(optimizer).__name__, **optimizer.get_params()}


def is_autoencoder(X: np.ndarray, Y: np.ndarray) -> bool:
    """Whether the targets are the inputs (the same array or equal values)."""
    return Y is X or (Y.shape == X.shape and np.array_equal(X, Y))


def task_of(loss: Loss, autoencoder: bool) -> str:
    if isinstance(loss, CrossEntropy):
        return CLASSIFICATION
    if isinstance(loss, BCE):
        return BINARY
    return AUTOENCODER if autoencoder else REGRESSION


def data_stats(X: np.ndarray, Y: np.ndarray, task: str) -> DataStats:
    Y2 = Y.reshape(len(Y), -1)
    integer = bool(np.all(np.round(Y2) == Y2))
    counts = None
    if task == CLASSIFICATION:
        counts = np.bincount(Y.astype(np.intp))
    elif task == BINARY and integer and Y2.shape[1] == 1 and np.all(Y2 >= 0):
        # class counts only for valid 0/1 labels: targets such as {-1, 1} are a wrong-loss
        # finding, not classes
        counts = np.bincount(Y2[:, 0].astype(np.intp), minlength=2)
    T = np.eye(int(Y.max()) + 1)[Y.astype(np.intp)] if task == CLASSIFICATION else Y2
    # chunked and scaled: no (n, d) temporaries, no overflow for values up to 1e308
    x_mean, x_std, x_abs = column_stats(X)
    y_std = column_stats(Y2)[1]
    return DataStats(
        n_samples=len(X),
        x_std=x_std,
        x_mean=x_mean,
        x_absmax=float(np.max(x_abs)) if X.size else 0.0,
        y_min=Y2.min(axis=0),
        y_max=Y2.max(axis=0),
        y_std=y_std,
        y_integer=integer,
        class_counts=counts,
        y_order_corr=order_correlation(T),
    )


def order_correlation(T: np.ndarray) -> float:
    """Mean over target columns of the correlation between consecutive rows, ``(n, k)`` ->
    float; NaN when no column varies or there are fewer than 3 rows."""
    if len(T) < 3:
        return math.nan
    big = np.max(np.abs(T), axis=0)
    if np.any(big >= SAFE_MAGNITUDE):  # the correlation is scale-free; the products are not
        T = T / np.where(big > 0, big, 1.0)
    a, b = T[:-1], T[1:]
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    den = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    ok = den > 0
    return float(np.mean((a * b).sum(axis=0)[ok] / den[ok])) if ok.any() else math.nan


def compute_bounds(
    X: np.ndarray,
    Y: np.ndarray,
    loss: Loss,
    batch_size: int | None,
    task: str,
    widths: list[int],
    seed: int,
) -> dict[str, Any]:
    """Achievable losses in the user's units; entries a loss does not support are left out."""
    out: dict[str, Any] = {}
    try:
        baseline = bounds.constant_baseline(Y, loss, batch_size)
    except (ValueError, TypeError) as exc:
        # targets the loss cannot take (BCE outside [0, 1]) have no baseline; a rule says why
        out["baseline_error"] = str(exc)
        return out
    out["baseline"] = baseline.loss
    texts = [str(baseline)]
    if task == AUTOENCODER:
        code = bounds.linear_code(X, loss, batch_size)
        out["loss_at_rank"] = code.loss_at_rank
        out["explained_variance_ratio"] = code.explained_variance_ratio
        out["effective_rank"] = code.effective_rank
        ranks = sorted({w for w in widths if w < code.max_rank} | {1})
        texts = [code.summary(ranks)]
    else:
        if len(X) > X.shape[1] + 1:
            fit = bounds.least_squares(X, Y, loss, batch_size)
            out["least_squares"] = fit.loss
            texts.append(str(fit))
        if len(X) >= 20:
            labels = task == CLASSIFICATION
            verdict = bounds.predictability(
                X,
                Y.astype(np.intp) if labels else Y,
                seed,
                task=CLASSIFICATION if labels else REGRESSION,
                max_samples=PREDICTABILITY_ROWS,
            )
            out["predictability"] = {
                "has_signal": verdict.has_signal,
                "skill": verdict.skill,
                "skill_std": verdict.skill_std,
                "model_skill": dict(verdict.model_skill),
                "best_model": verdict.best_model,
                "shuffled_quantile": verdict.shuffled_quantile,
                "p_value": verdict.p_value,
            }
            texts.append(verdict.summary())
    out["text"] = "; ".join(texts)
    return out
