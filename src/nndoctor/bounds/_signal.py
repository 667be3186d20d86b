"""Is the target predictable from the input at all? A permutation test on held-out skill.

Procedure (docs/bounds.md has the reasoning):

1. Repeated K-fold splits, seeded. On each split, ridge regressions (a few penalties) and
   k-nearest-neighbour averages (a few k) are scored on the held-out rows by their skill
   ``1 - SSE(model) / SSE(training mean)``: 1 is perfect, 0 is no better than the constant,
   negative is worse. Classification uses one-hot targets, so the skill is the Brier skill.
2. The statistic is the best model's mean skill over the splits.
3. The same statistic with the inputs shuffled (the pairing of rows of ``X`` and ``Y`` broken)
   gives its distribution when the inputs carry no information. Every model here predicts a
   linear function of the training targets, so all shuffles are scored in one matrix product.
4. Signal when the real statistic is above 0 and above the shuffled ones at level ``alpha``
   (exact permutation p-value ``(1 + #{shuffled >= real}) / (1 + shuffles)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nndoctor._numeric import SAFE_MAGNITUDE, column_stats, principal_directions
from nndoctor._validate import as_float_array, as_rng, check_positive_int, check_rows
from nndoctor.bounds._fits import fmt
from nndoctor.bounds._units import check_samples

# ridge penalty per training row, on standardised inputs: shrinkage factors about 1/(1 + lam)
RIDGE_PENALTIES = (1e-3, 0.1, 1.0)
# ridge regressions on more input columns than this (and more rows) use the inputs' top
# principal components instead: a fold's ridge fit costs an eigendecomposition of its width
# (every catalog and held-out case has at most 240 columns; MNIST has 784)
RIDGE_COMPONENTS = 256
NEIGHBOURS = (3, 10, 30)
TASKS = ("regression", "classification")


@dataclass(frozen=True, eq=False)
class Predictability:
    """The verdict on whether the targets carry usable signal from the inputs, and its numbers.

    Attributes
    ----------
    has_signal : bool
        The best held-out skill is above 0 and above the shuffled-input skills at ``alpha``.
    skill : float
        The best model's held-out skill, mean over splits.
    skill_std : float
        Its standard deviation over the splits.
    model_skill : dict of str to float
        Every model's mean held-out skill.
    best_model : str
    shuffled_skill : float
        The same statistic with shuffled inputs, mean over shuffles (the zero-information level).
    shuffled_quantile : float
        Its ``1 - alpha`` quantile: the real skill must beat this.
    p_value : float
        Exact permutation p-value.
    alpha : float
    task : str
        ``"regression"`` or ``"classification"``.
    n_samples : int
        Rows used (a seeded subsample when there were more than ``max_samples``).
    n_splits, n_repeats, n_permutations : int
    """

    has_signal: bool
    skill: float
    skill_std: float
    model_skill: dict[str, float]
    best_model: str
    shuffled_skill: float
    shuffled_quantile: float
    p_value: float
    alpha: float
    task: str
    n_samples: int
    n_splits: int
    n_repeats: int
    n_permutations: int

    def summary(self) -> str:
        verdict = (
            "targets are predictable from the inputs"
            if self.has_signal
            else "targets carry no usable signal from the inputs"
        )
        return (
            f"{verdict}: held-out skill {fmt(self.skill)} ± {fmt(self.skill_std)} "
            f"({self.best_model}; 1 = perfect, 0 = the constant) against "
            f"{fmt(self.shuffled_skill)} with shuffled inputs "
            f"({1 - self.alpha:.0%} of shuffles below {fmt(self.shuffled_quantile)}; "
            f"p = {fmt(self.p_value)}, {self.n_samples} samples)"
        )

    def __str__(self) -> str:
        return self.summary()


def predictability(
    X: Any,
    Y: Any,
    seed: int | np.random.Generator = 0,
    *,
    task: str | None = None,
    n_splits: int = 5,
    n_repeats: int = 2,
    n_permutations: int = 199,
    alpha: float = 0.01,
    max_samples: int = 2000,
) -> Predictability:
    """Held-out skill of ridge and k-NN models against the constant and against shuffled inputs.

    Parameters
    ----------
    X : array_like, shape (n, p) or (n,)
    Y : array_like, shape (n, q) or (n,)
        Targets; integer labels ``(n,)`` are a classification task unless ``task`` says
        otherwise.
    seed : int or numpy.random.Generator
        Drives the splits, the shuffles and any subsampling.
    task : {"regression", "classification"} or None
        None: classification for 1-D integer or boolean ``Y``, regression otherwise.
    n_splits, n_repeats : int
        Repeated K-fold: ``n_repeats`` shuffled rounds of ``n_splits`` folds.
    n_permutations : int
        Shuffles of the inputs for the zero-information distribution.
    alpha : float
        Level of the test. 0.01 keeps the false-alarm rate at 1% on targets independent of
        the inputs.
    max_samples : int
        Larger data sets are subsampled to this many rows (k-NN needs all pairwise distances).

    Returns
    -------
    Predictability
    """
    rng = as_rng(seed)
    n_splits = check_positive_int(n_splits, "n_splits")
    n_repeats = check_positive_int(n_repeats, "n_repeats")
    n_permutations = check_positive_int(n_permutations, "n_permutations")
    max_samples = check_positive_int(max_samples, "max_samples")
    if n_splits < 2:
        raise ValueError(f"n_splits must be at least 2, got {n_splits}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    X = as_float_array(X, "X", ndim=(1, 2))
    X = X.reshape(len(X), -1)
    T, task = _targets(Y, task)
    check_rows(X, T)
    check_samples(len(X), max(2 * n_splits, 10), "predictability")
    if len(X) > max_samples:
        keep = np.sort(rng.choice(len(X), max_samples, replace=False))
        X, T = X[keep], T[keep]
    n, q = T.shape
    P = n_permutations
    settings = {
        "alpha": alpha,
        "task": task,
        "n_samples": n,
        "n_splits": n_splits,
        "n_repeats": n_repeats,
        "n_permutations": P,
    }
    if np.all(T[0] == T):
        return Predictability(False, 0.0, 0.0, {}, "constant targets", 0.0, 0.0, 1.0, **settings)

    # skill is unchanged by one scale factor on all targets; squares of 1e200 are not finite
    big = float(np.max(np.abs(T)))
    if big >= SAFE_MAGNITUDE:
        T = T / big
    x_mean, sd, _ = column_stats(X)  # finite for inputs up to 1e308
    Xs = (X - x_mean) / np.where(sd > 0, sd, 1.0)
    sq = (Xs**2).sum(axis=1)
    dist2 = sq[:, None] + sq[None, :] - 2.0 * (Xs @ Xs.T)  # (n, n), only ranked
    # from the inputs alone, so every shuffle of the targets meets the same features
    Xr, ridge_note = _ridge_inputs(Xs)
    # column block j holds the targets paired with the j-th shuffle; block 0 is the real data
    orders = [np.arange(n)] + [rng.permutation(n) for _ in range(P)]
    Yall = np.concatenate([T[o] for o in orders], axis=1)  # (n, (P + 1) * q)

    splits = [np.array_split(rng.permutation(n), n_splits) for _ in range(n_repeats)]
    names: list[str] = []
    skills = []  # per split: (models, P + 1)
    for folds in splits:
        for i, test in enumerate(folds):
            train = np.concatenate(folds[:i] + folds[i + 1 :])
            names, predictions = _predict(Xr, Yall, dist2, train, test, ridge_note)
            Ytest = Yall[test]
            base = _block_sse(Ytest - Yall[train].mean(axis=0), q)  # (P + 1,)
            sse = np.stack([_block_sse(Ytest - pred, q) for pred in predictions])
            skills.append(1.0 - sse / np.where(base > 0, base, 1.0))
    skills_arr = np.stack(skills)  # (splits, models, P + 1)
    mean_skill = skills_arr.mean(axis=0)  # (models, P + 1)
    statistic = mean_skill.max(axis=0)  # (P + 1,)
    best = int(np.argmax(mean_skill[:, 0]))
    p_value = (1 + int(np.sum(statistic[1:] >= statistic[0]))) / (1 + P)
    return Predictability(
        has_signal=bool(p_value <= alpha and statistic[0] > 0),
        skill=float(statistic[0]),
        skill_std=float(skills_arr[:, best, 0].std(ddof=1)),
        model_skill={name: float(s) for name, s in zip(names, mean_skill[:, 0], strict=True)},
        best_model=names[best],
        shuffled_skill=float(statistic[1:].mean()),
        shuffled_quantile=float(np.quantile(statistic[1:], 1.0 - alpha)),
        p_value=p_value,
        **settings,
    )


def predictability_flops(
    n: int,
    p: int,
    q: int,
    *,
    n_splits: int = 5,
    n_repeats: int = 2,
    n_permutations: int = 199,
    max_samples: int = 2000,
) -> float:
    """About how many floating-point operations :func:`predictability` takes on ``n`` rows of
    ``p`` inputs and ``q`` target columns (classes for classification), with its keyword
    arguments: for a caller that budgets its checks; right within a factor of about 2."""
    n = min(n, max_samples)
    columns = (n_permutations + 1) * q
    m = n - n // n_splits  # training rows of a fold
    t = n - m
    flops = 2.0 * n * n * p  # the distances
    width = p
    if min(n, p) > RIDGE_COMPONENTS:
        flops += 2.0 * n * p * min(n, p) + 10.0 * min(n, p) ** 3 + 2.0 * n * p * RIDGE_COMPONENTS
        width = RIDGE_COMPONENTS
    r = min(m, width)
    fold = 2.0 * m * width * r + 10.0 * r**3  # the Gram matrix and its eigendecomposition
    fold += 2.0 * (m + t) * width * r + 2.0 * r * m * columns  # Z and B
    fold += 2.0 * len(RIDGE_PENALTIES) * t * r * columns  # ridge predictions
    # k-NN sums and every model's squared errors: memory-bound, about 10 flops' time each
    fold += 10.0 * (max(NEIGHBOURS) + 2 * (len(RIDGE_PENALTIES) + len(NEIGHBOURS))) * t * columns
    return flops + n_splits * n_repeats * fold


def _targets(Y: Any, task: str | None) -> tuple[np.ndarray, str]:
    """Targets as float columns ``(n, q)``: one-hot over the classes present for classification."""
    raw = np.asarray(Y)
    if task is None:
        integer = np.issubdtype(raw.dtype, np.integer) or raw.dtype == np.bool_
        task = "classification" if raw.ndim == 1 and integer else "regression"
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} or None, got {task!r}")
    T = as_float_array(Y, "Y", ndim=1 if task == "classification" else (1, 2))
    if task == "regression":
        return T.reshape(len(T), -1), task
    classes = np.unique(T)
    return (T[:, None] == classes[None, :]).astype(np.float64), task


def _block_sse(residual: np.ndarray, q: int) -> np.ndarray:
    """Summed squared error per shuffle: ``(rows, (P + 1) * q) -> (P + 1,)``."""
    return (residual**2).sum(axis=0).reshape(-1, q).sum(axis=1)


def _ridge_inputs(Xs: np.ndarray) -> tuple[np.ndarray, str]:
    """The standardised inputs ``(n, p)`` the ridge models see: themselves, or their scores on
    the top ``RIDGE_COMPONENTS`` principal directions ``(n, RIDGE_COMPONENTS)`` when both
    ``n`` and ``p`` exceed it; and the note the models' names carry then."""
    k = RIDGE_COMPONENTS
    if min(Xs.shape) <= k:
        return Xs, ""
    Xc = Xs - Xs.mean(axis=0)
    return Xc @ principal_directions(Xc, k), f", top {k} components"


def _predict(
    Xs: np.ndarray,
    Yall: np.ndarray,
    dist2: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    ridge_note: str = "",
) -> tuple[list[str], list[np.ndarray]]:
    """Held-out predictions ``(len(test), columns)`` of every model, for all shuffles at once;
    ``Xs`` are the ridge models' inputs, ``dist2`` the k-NN distances (``ridge_note`` is added
    to the ridge models' names)."""
    Ytrain = Yall[train]
    y_mean = Ytrain.mean(axis=0)
    x_mean = Xs[train].mean(axis=0)
    Xc, Xt = Xs[train] - x_mean, Xs[test] - x_mean  # (train, p), (test, p)
    # ridge through the eigendecomposition of the smaller Gram matrix (a third of an SVD's
    # cost): with Xc = U S V^T, the prediction Xt V S (S^2 + lam)^-1 U^T Y is Z (w + lam)^-1 B
    # with w = S^2 and Z, B as below (no division by S: zero singular values drop out)
    if Xc.shape[1] <= Xc.shape[0]:
        w, V = np.linalg.eigh(Xc.T @ Xc)
        Z, B = Xt @ V, (Xc @ V).T @ (Ytrain - y_mean)  # (test, p), (p, columns)
    else:
        w, U = np.linalg.eigh(Xc @ Xc.T)
        Z, B = (Xt @ Xc.T) @ U, U.T @ (Ytrain - y_mean)  # (test, train), (train, columns)
    w = np.clip(w, 0.0, None)  # rounding leaves tiny negatives
    names = [f"ridge (lambda={lam:g}{ridge_note})" for lam in RIDGE_PENALTIES]
    predictions = [y_mean + (Z / (w + lam * len(train))) @ B for lam in RIDGE_PENALTIES]

    ks = sorted({min(k, len(train)) for k in NEIGHBOURS})
    d = dist2[np.ix_(test, train)]
    nearest = np.argpartition(d, ks[-1] - 1, axis=1)[:, : ks[-1]]
    nearest = np.take_along_axis(
        nearest, np.argsort(np.take_along_axis(d, nearest, axis=1), axis=1, kind="stable"), axis=1
    )  # (test, k_max), nearest first
    # running sums of the j nearest targets; row gathers, because BLAS threads waking up for
    # many small (test, train) x (train, columns) products cost more than the products
    running = np.zeros((len(test), Ytrain.shape[1]))
    for j in range(ks[-1]):
        running += Ytrain[nearest[:, j]]
        if j + 1 in ks:
            names.append(f"{j + 1}-NN")
            predictions.append(running / (j + 1))
    return names, predictions
