"""The plain-data context rules read beside the probes: architecture, data, bounds.

Built from a :class:`~nndoctor.doctor.schema.Run` through its backend's plain descriptions, so
nothing here is a model or an optimiser.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nndoctor import bounds
from nndoctor._numeric import SAFE_MAGNITUDE, column_stats
from nndoctor.doctor.schema import (
    AUTOENCODER,
    BINARY,
    CLASSIFICATION,
    REGRESSION,
    TOKENS,
    Context,
    DataStats,
    LayerSpec,
    LossSpec,
    Run,
    TaskSpec,
    is_autoencoder,
)

# rows given to the predictability test: k-NN needs all pairwise distances, so cap the cost
PREDICTABILITY_ROWS = 1000
# token ids are read as the shares of at most this many ids per sample (the rest folded in)
BAG_BUCKETS = 256
# fewer rows than this: no predictability test (too few for held-out splits)
PREDICTABILITY_MIN_ROWS = 20
# The fitted checks (the predictability test first, then the best affine map) may together
# cost at most FITS_SHARE of the training run's arithmetic, and never less than FITS_FLOOR
# floating-point operations (about a second of this machine's linear algebra; the costliest
# catalog or held-out case's checks take 2.5e10): a check that would go beyond is skipped,
# and the bounds say so. Counted, not timed, so that the same run gives the same report.
FITS_SHARE = 1.0
FITS_FLOOR = 4e10


def build_context(run: Run, fits: bool = True) -> Context:
    """Architecture, loss, optimiser, data statistics and bounds of ``run``, as plain data.

    ``fits=False`` leaves out the bounds that need a fit (the best affine map and the
    predictability test); see :func:`compute_bounds`. With ``fits`` they get the budget of
    :func:`fits_budget`.
    """
    backend = run.backend
    structure = backend.task_spec(run)
    return make_context(
        backend.describe(run),
        backend.loss_spec(run),
        backend.optimizer_spec(run),
        run.X,
        target_units(run.Y, structure),
        run.batch_size,
        run.seed,
        run.shuffle,
        fits,
        structure,
        fits_budget(run) if fits else None,
    )


def training_flops(run: Run) -> float:
    """About the floating-point operations of ``run``'s training: 6 per parameter per row per
    epoch (forward and backward passes). A lower estimate for layers that reuse their weights
    (convolutions, recurrent layers)."""
    return 6.0 * run.backend.n_parameters(run) * len(run.X) * run.epochs


def fits_budget(run: Run) -> float:
    """Floating-point operations the fitted checks of ``run`` may take together:
    ``max(FITS_FLOOR, FITS_SHARE * training_flops(run))``."""
    return max(FITS_FLOOR, FITS_SHARE * training_flops(run))


def make_context(
    layers: list[LayerSpec],
    spec: LossSpec,
    optimizer: dict[str, Any],
    X: np.ndarray,
    Y: np.ndarray,
    batch_size: int | None,
    seed: int,
    shuffle: bool | None,
    fits: bool = True,
    structure: TaskSpec | None = None,
    budget: float | None = None,
) -> Context:
    """The :class:`Context` from plain descriptions and data (``X``: all the inputs, or the
    rows a watched run saw; ``Y``: their targets, one row per unit of the loss, see
    :func:`target_units`); ``fits`` and ``budget`` as in :func:`compute_bounds`."""
    structure = structure or TaskSpec()
    X, Y = counted_rows(X, Y, structure)
    task = task_of(spec, structure.per_sample and is_autoencoder(X, Y))
    X, Y = feature_rows(X, Y, task, structure)
    widths = [s.out_features for s in layers if s.kind == "dense" and s.out_features]
    return Context(
        layers=layers,
        loss=spec,
        optimizer=optimizer,
        task=task,
        data=data_stats(X, Y, task, structure),
        bounds=compute_bounds(
            X, Y, spec, batch_size, task, widths[:-1], seed, fits, structure, budget
        ),
        shuffle=shuffle,
        structure=structure,
    )


def counted_rows(
    X: np.ndarray, Y: np.ndarray, structure: TaskSpec
) -> tuple[np.ndarray, np.ndarray]:
    """``X`` and ``Y`` without the samples whose label the loss ignores (``ignore_index``):
    they count for nothing, inputs included."""
    ignore = structure.ignore_index
    if structure.per_sample and ignore is not None and np.issubdtype(Y.dtype, np.integer):
        keep = Y.reshape(len(Y), -1)[:, 0] != ignore
        if len(X) == len(Y) and not keep.all():
            return X[keep], Y[keep]
    return X, Y


def target_units(Y: np.ndarray, structure: TaskSpec) -> np.ndarray:
    """The targets one row per unit of the loss: as they are when the unit is a sample; else
    every element (a token, a pixel) as a row, class labels as one column (the ignored ones
    left out), values as one row per element."""
    if structure.per_sample:
        return Y
    if np.issubdtype(Y.dtype, np.integer):
        units = Y.reshape(-1)
        if structure.ignore_index is not None:
            units = units[units != structure.ignore_index]
        return units
    return Y.reshape(-1, 1)


def feature_rows(
    X: np.ndarray, Y: np.ndarray, task: str, structure: TaskSpec | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``X`` as one row of float features per sample (images and sequences flattened, token ids
    as a bag of ids: :func:`bag_of_ids`) for the statistics and bounds, and ``Y`` (``X``
    again for an autoencoder)."""
    if structure is not None and structure.inputs == TOKENS and task != AUTOENCODER:
        return bag_of_ids(X), Y
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.floating):
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        Y = X if task == AUTOENCODER else Y
    return X, Y


def bag_of_ids(X: np.ndarray, buckets: int = 0) -> np.ndarray:
    """Token ids ``(n, ...)`` as features ``(n, 2 * buckets)`` at most: the share of each id in
    a sample, and which id sits at which position (hashed: a position and an id together fold
    into ``buckets`` columns). Ids have no distance or scale; what a sample holds, and where,
    does (the simple models of the predictability test read it)."""
    buckets = buckets or BAG_BUCKETS
    ids = np.asarray(X).reshape(len(X), -1).astype(np.int64)
    ids = np.where(ids < 0, 0, ids)
    n, t = ids.shape
    rows = np.repeat(np.arange(n), t)
    width = min(int(ids.max()) + 1 if ids.size else 1, buckets)
    bag = np.zeros((n, width))
    np.add.at(bag, (rows, (ids % width).reshape(-1)), 1.0 / max(t, 1))
    # a (position, id) pair folded by a fixed odd multiplier: the same pair, the same column
    placed = np.zeros((n, buckets))
    pairs = (np.arange(t)[None, :] * 1_000_003 + ids) % buckets
    np.add.at(placed, (rows, pairs.reshape(-1)), 1.0)
    return np.hstack([bag, placed])


def full_bounds(run: Run, ctx: Context) -> dict[str, Any]:
    """Every bound of ``run`` (the fits included, within :func:`fits_budget`) for a context
    built with ``fits=False``: the same dict :func:`build_context` gives, without describing
    the model again."""
    X, Y = counted_rows(run.X, target_units(run.Y, ctx.structure), ctx.structure)
    X, Y = feature_rows(X, Y, ctx.task, ctx.structure)
    return compute_bounds(
        X, Y, ctx.loss, run.batch_size, ctx.task, ctx.hidden_widths, run.seed, True,
        ctx.structure, fits_budget(run),
    )  # fmt: skip


def fitted_bounds(
    n_rows: int, n_features: int, task: str, structure: TaskSpec | None = None
) -> list[str]:
    """The bounds that need a fit and that :func:`compute_bounds` gives for ``n_rows`` feature
    rows of ``n_features`` when the loss has a baseline: the best affine map once there are
    more rows than its parameters per output, the predictability test from
    ``PREDICTABILITY_MIN_ROWS`` rows; none for an autoencoder (its rank bounds come from one
    decomposition), none for targets that are not one per sample (a token's target is not a
    function of one row of inputs; token ids are read as a bag of ids)."""
    structure = structure or TaskSpec()
    if task == AUTOENCODER or not structure.per_sample:
        return []
    wanted = (
        ("least_squares", n_rows > n_features + 1),
        ("predictability", n_rows >= PREDICTABILITY_MIN_ROWS),
    )
    return [k for k, ok in wanted if ok]


def task_of(loss: LossSpec, autoencoder: bool) -> str:
    if loss.kind == "cross_entropy":
        return CLASSIFICATION
    if loss.kind == "bce":
        return BINARY
    return AUTOENCODER if autoencoder else REGRESSION


def data_stats(
    X: np.ndarray, Y: np.ndarray, task: str, structure: TaskSpec | None = None
) -> DataStats:
    """Statistics of the input rows ``X`` and of the targets ``Y``, one row per unit of the
    loss (class counts per token or per pixel when those are its units)."""
    structure = structure or TaskSpec()
    Y2 = Y.reshape(len(Y), -1)
    integer = bool(np.all(np.round(Y2) == Y2))
    counts = None
    if task == CLASSIFICATION and Y2.shape[1] == 1 and integer and (not Y.size or Y.min() >= 0):
        counts = np.bincount(Y2[:, 0].astype(np.intp))
    elif task == BINARY and integer and Y2.shape[1] == 1 and np.all(Y2 >= 0):
        # class counts only for valid 0/1 labels: targets such as {-1, 1} are a wrong-loss
        # finding, not classes
        counts = np.bincount(Y2[:, 0].astype(np.intp), minlength=2)
    elif task == BINARY and integer and not structure.per_sample and np.all((Y2 == 0) | (Y2 == 1)):
        # a 0/1 target per pixel (a mask) or per label: each element is one of the loss's units
        counts = np.bincount(Y2.ravel().astype(np.intp), minlength=2)
    if not structure.per_sample:
        # the order of samples says nothing about the order of the tokens in them
        order = math.nan
    elif task == CLASSIFICATION:
        labels = Y2[:, 0].astype(np.intp)
        order = order_correlation(np.eye(len(counts))[labels]) if counts is not None else math.nan
    else:
        order = order_correlation(Y2)
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
        y_order_corr=order,
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
    spec: LossSpec,
    batch_size: int | None,
    task: str,
    widths: list[int],
    seed: int,
    fits: bool = True,
    structure: TaskSpec | None = None,
    budget: float | None = None,
) -> dict[str, Any]:
    """Achievable losses in the user's units; entries a loss does not support are left out.

    ``Y`` holds one row per unit of the loss (``structure``): when the unit is an element of a
    sample (a token, a pixel), the baseline is the best constant per element times the loss's
    ``scale`` (1 for a mean over the elements), and the fitted bounds are left out (a token's
    target is not a function of one row of inputs).

    ``fits=False``: the constant baseline (and an autoencoder's rank bounds, which rules read
    on runs that learned) only; the best affine map and the predictability test, whose fits
    cost more than a small training run, are left to the caller (``diagnose`` computes them
    when the recorded run leaves them something to judge: :mod:`nndoctor.doctor.lazy`).

    ``budget``: floating-point operations the fitted checks may take together (None: no
    limit). The predictability test is given it first, then the best affine map; a check whose
    estimated cost exceeds what is left is skipped: ``skipped`` maps it to the reason, which
    the text repeats.
    """
    structure = structure or TaskSpec()
    out: dict[str, Any] = {}
    per_sample = structure.per_sample
    loss = (spec if per_sample else LossSpec(spec.kind, "mean", spec.from_logits)).numpy_loss()
    if loss is None:
        out["baseline_error"] = f"no bounds for the loss {spec.name or spec.kind}"
        return out
    if spec.weighted:
        out["baseline_error"] = (
            f"no bounds for the loss {spec.name or spec.kind} with class weights or label "
            "smoothing: its best constant prediction is not the class shares'"
        )
        return out
    if spec.added_terms:
        out["baseline_error"] = (
            f"no bounds for a loss that adds other terms to {spec.kind}: its value is not "
            f"{spec.kind}'s"
        )
        return out
    if not per_sample and not math.isfinite(structure.scale):
        out["baseline_error"] = (
            f"the loss's value over the mean loss of its {structure.unit}s is not known"
        )
        return out
    try:
        baseline = bounds.constant_baseline(Y, loss, batch_size if per_sample else None)
    except (ValueError, TypeError) as exc:
        # targets the loss cannot take (BCE outside [0, 1]) have no baseline; a rule says why
        out["baseline_error"] = str(exc)
        return out
    if per_sample:
        out["baseline"] = baseline.loss
        texts = [str(baseline)]
    else:
        out["baseline"] = baseline.loss * structure.scale
        texts = [
            f"constant baseline {out['baseline']:.4g} ({baseline.loss:.4g} per "
            f"{structure.unit}, the best constant prediction of {len(Y)} {structure.unit}s"
            + (
                f", times {structure.scale:.4g}: the loss sums them"
                if abs(structure.scale - 1) > 1e-6
                else ""
            )
            + ")"
        ]
    if task == AUTOENCODER:
        code = bounds.linear_code(X, loss, batch_size)
        out["loss_at_rank"] = code.loss_at_rank
        out["explained_variance_ratio"] = code.explained_variance_ratio
        out["effective_rank"] = code.effective_rank
        ranks = sorted({w for w in widths if w < code.max_rank} | {1})
        texts = [code.summary(ranks)]
    elif fits:
        fitted = fitted_bounds(len(X), X.shape[1], task, structure)
        skipped = _over_budget(fitted, X, Y, loss, task, budget)
        fitted = [k for k in fitted if k not in skipped]
        if "least_squares" in fitted:
            fit = bounds.least_squares(X, Y, loss, batch_size, seed=seed)
            out["least_squares"] = fit.loss
            texts.append(str(fit))
        if "predictability" in fitted:
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
            if structure.inputs == TOKENS and not verdict.has_signal:
                texts[-1] += " (a bag of the ids: one id's effect, not two ids' interaction)"
        if skipped:
            out["skipped"] = skipped
            texts += [f"skipped {_CHECKS[k]}: {why}" for k, why in skipped.items()]
    out["text"] = "; ".join(texts)
    return out


# the fitted checks in words, in the order they are given the budget
_CHECKS = {"predictability": "the predictability test", "least_squares": "the best affine map"}


def _over_budget(
    fitted: list[str], X: np.ndarray, Y: np.ndarray, loss: Any, task: str, budget: float | None
) -> dict[str, str]:
    """The fitted checks that the budget leaves out, each with the reason in words."""
    if budget is None:
        return {}
    n, p = X.shape
    classes = int(np.max(Y)) + 1 if task == CLASSIFICATION else 0
    width = classes or Y.reshape(n, -1).shape[1]
    q = len(np.unique(Y)) if task == CLASSIFICATION else width
    costs = {
        "predictability": bounds.predictability_flops(n, p, q, max_samples=PREDICTABILITY_ROWS),
        "least_squares": bounds.least_squares_flops(n, p, width, loss),
    }
    left, skipped = budget, {}
    for check in _CHECKS:
        if check not in fitted:
            continue
        if costs[check] <= left:
            left -= costs[check]
        else:
            skipped[check] = (
                f"it would take about {costs[check]:.1e} floating-point operations, more than "
                f"the {left:.1e} left of the fitted checks' budget ({budget:.1e}: the training "
                f"run's arithmetic, at least {FITS_FLOOR:.0e})"
            )
    return skipped
