"""The plain-data context rules read beside the probes: architecture, data, bounds.

Built from a :class:`~nndoctor.doctor.schema.Run` through its backend's plain descriptions, so
nothing here is a model or an optimiser.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nndoctor import bounds
from nndoctor.doctor.schema import (
    AUTOENCODER,
    BINARY,
    CLASSIFICATION,
    REGRESSION,
    Context,
    DataStats,
    LayerSpec,
    LossSpec,
    Run,
    is_autoencoder,
)

# rows given to the predictability test: k-NN needs all pairwise distances, so cap the cost
PREDICTABILITY_ROWS = 1000


def build_context(run: Run) -> Context:
    """Architecture, loss, optimiser, data statistics and bounds of ``run``, as plain data."""
    backend = run.backend
    return make_context(
        backend.describe(run),
        backend.loss_spec(run),
        backend.optimizer_spec(run),
        run.X,
        run.Y,
        run.batch_size,
        run.seed,
        run.shuffle,
        backend.name,
    )


def make_context(
    layers: list[LayerSpec],
    spec: LossSpec,
    optimizer: dict[str, Any],
    X: np.ndarray,
    Y: np.ndarray,
    batch_size: int | None,
    seed: int,
    shuffle: bool | None,
    backend: str,
) -> Context:
    """The :class:`Context` from plain descriptions and data (``X``, ``Y``: all the data, or
    the sample a watched run saw)."""
    task = task_of(spec, is_autoencoder(X, Y))
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.floating):
        # images, sequences, token ids: one row of float features per sample for the statistics
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        Y = X if task == AUTOENCODER else Y
    widths = [s.out_features for s in layers if s.kind == "dense"]
    return Context(
        layers=layers,
        loss=spec,
        optimizer=optimizer,
        task=task,
        data=data_stats(X, Y, task),
        bounds=compute_bounds(X, Y, spec, batch_size, task, widths[:-1], seed),
        shuffle=shuffle,
        backend=backend,
    )


def task_of(loss: LossSpec, autoencoder: bool) -> str:
    if loss.kind == "cross_entropy":
        return CLASSIFICATION
    if loss.kind == "bce":
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
    return DataStats(
        n_samples=len(X),
        x_std=X.std(axis=0),
        x_mean=X.mean(axis=0),
        x_absmax=float(np.max(np.abs(X))) if X.size else 0.0,
        y_min=Y2.min(axis=0),
        y_max=Y2.max(axis=0),
        y_std=Y2.std(axis=0),
        y_integer=integer,
        class_counts=counts,
        y_order_corr=order_correlation(T),
    )


def order_correlation(T: np.ndarray) -> float:
    """Mean over target columns of the correlation between consecutive rows, ``(n, k)`` ->
    float; NaN when no column varies or there are fewer than 3 rows."""
    if len(T) < 3:
        return math.nan
    a, b = T[:-1], T[1:]
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    den = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    ok = den > 0
    return float(np.mean((a * b).sum(axis=0)[ok] / den[ok])) if ok.any() else math.nan


def compute_bounds(
    X: np.ndarray,
    Y: np.ndarray,
    spec: LossSpec,
    batch_size: int | None,
    task: str,
    widths: list[int],
    seed: int,
) -> dict[str, Any]:
    """Achievable losses in the user's units; entries a loss does not support are left out."""
    out: dict[str, Any] = {}
    loss = spec.numpy_loss()
    if loss is None:
        out["baseline_error"] = f"no bounds for the loss {spec.name or spec.kind}"
        return out
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
