"""The case nndoctor starts from (``docs/seed.md``): why was the autoencoder's output always 0.5?

The asker's model, applied to one 8x8 matrix ``X`` whose 8 **columns** are the samples::

    H = sigmoid(W1 @ X + b1)    # (3, 8): W1 (3, 8), b1 (3,) broadcast over columns
    Y = sigmoid(W2 @ H + b2)    # (8, 8): W2 (8, 3), b2 (8,)
    E = 0.5 * sum((Y - X)**2)

This module keeps the asker's program as it plausibly was (Python loops, per-element gradients
with the encoder bug), the answer's matrix version, and :func:`run_seed_case`, which replays the
whole story with the engine: speed, gradient checks, training from zero and Xavier init, the
achievable bounds, and the doctor's report.

Parameters of the seed's functions are a dict ``{"W1", "b1", "W2", "b2"}``: the same layout as
the engine's ``Dense`` (``W`` of shape ``(out, in)``), so ``"0.W"`` of the engine model is ``W1``.
"""

from __future__ import annotations

import math
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nndoctor._validate import as_rng, check_positive_int
from nndoctor.bounds import LinearCode, linear_code
from nndoctor.diagnosis import diagnose as doctor_diagnose
from nndoctor.doctor import Report
from nndoctor.doctor.rules.units import identical_groups
from nndoctor.gradcheck import GradCheckResult, check_function_gradients, check_gradients
from nndoctor.nn import INITIALIZERS, SGD, SSE, Dense, Sequential, Sigmoid, train

Params = dict[str, np.ndarray]

N_VISIBLE = 8  # rows and columns of one sample matrix
N_HIDDEN = 3  # the asker's bottleneck
# The asker's loops take hundreds of microseconds a step: a few hundred steps time them well.
_ASKER_TIMING_STEPS = 200
_ENGINE_TIMING_STEPS = 2000
_TIMING_REPEATS = 3


# --- The asker's program: Python loops, one element at a time -------------------------------


def _scalar_sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def asker_forward(params: Params, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The asker's forward pass, one element at a time.

    Parameters
    ----------
    params : dict
        ``W1`` (3, 8), ``b1`` (3,), ``W2`` (8, 3), ``b2`` (8,).
    X : ndarray, shape (8, 8)
        One sample matrix; its columns are the vectors being encoded.

    Returns
    -------
    H : ndarray, shape (3, 8)
    Y : ndarray, shape (8, 8)
    """
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    n_hidden, n_in = W1.shape
    n_out, n_cols = W2.shape[0], X.shape[1]
    H = np.zeros((n_hidden, n_cols))
    for i in range(n_hidden):
        for j in range(n_cols):
            z = b1[i]
            for k in range(n_in):
                z += W1[i, k] * X[k, j]
            H[i, j] = _scalar_sigmoid(z)
    Y = np.zeros((n_out, n_cols))
    for m in range(n_out):
        for j in range(n_cols):
            z = b2[m]
            for i in range(n_hidden):
                z += W2[m, i] * H[i, j]
            Y[m, j] = _scalar_sigmoid(z)
    return H, Y


def asker_loss(params: Params, X: np.ndarray) -> float:
    """``E = 0.5 * sum((Y - X)**2)`` with the asker's loop forward pass."""
    _, Y = asker_forward(params, X)
    return 0.5 * float(np.sum((Y - X) ** 2))


def asker_gradients(params: Params, X: np.ndarray) -> Params:
    """The asker's hand-written gradients, per element. **The encoder part is wrong.**

    The decoder gradients are right. For the encoder the asker took the output error summed
    over the output units as the error of every hidden unit, dropping the weight ``W2[m, i]``
    that carries output ``m``'s error back to hidden unit ``i`` (the chain rule's
    ``W2.T @ d2``). Every hidden unit then gets the same error signal.
    """
    W1, W2 = params["W1"], params["W2"]
    H, Y = asker_forward(params, X)
    n_hidden, n_in = W1.shape
    n_out, n_cols = Y.shape
    d2 = np.zeros((n_out, n_cols))
    for m in range(n_out):
        for j in range(n_cols):
            d2[m, j] = (Y[m, j] - X[m, j]) * Y[m, j] * (1.0 - Y[m, j])
    dW2 = np.zeros_like(W2)
    db2 = np.zeros(n_out)
    for m in range(n_out):
        for j in range(n_cols):
            db2[m] += d2[m, j]
            for i in range(n_hidden):
                dW2[m, i] += d2[m, j] * H[i, j]
    d1 = np.zeros((n_hidden, n_cols))
    for i in range(n_hidden):
        for j in range(n_cols):
            error = 0.0
            for m in range(n_out):
                error += d2[m, j]  # THE BUG: should be W2[m, i] * d2[m, j]
            d1[i, j] = error * H[i, j] * (1.0 - H[i, j])
    dW1 = np.zeros_like(W1)
    db1 = np.zeros(n_hidden)
    for i in range(n_hidden):
        for j in range(n_cols):
            db1[i] += d1[i, j]
            for k in range(n_in):
                dW1[i, k] += d1[i, j] * X[k, j]
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


# --- The answer's program: matrix products --------------------------------------------------


def answer_forward(params: Params, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The answer's vectorised forward pass; same arguments and results as :func:`asker_forward`."""
    H = 1.0 / (1.0 + np.exp(-(params["W1"] @ X + params["b1"][:, None])))  # (3, 8)
    Y = 1.0 / (1.0 + np.exp(-(params["W2"] @ H + params["b2"][:, None])))  # (8, 8)
    return H, Y


def answer_loss(params: Params, X: np.ndarray) -> float:
    """``E = 0.5 * sum((Y - X)**2)`` with the answer's matrix forward pass."""
    _, Y = answer_forward(params, X)
    return 0.5 * float(np.sum((Y - X) ** 2))


def answer_gradients(params: Params, X: np.ndarray) -> Params:
    """The answer's matrix gradients (correct).

    ``d2 = (Y - X) * Y * (1 - Y)`` (8, 8) and ``d1 = (W2.T @ d2) * H * (1 - H)`` (3, 8);
    then ``dW2 = d2 @ H.T``, ``db2 = d2.sum(axis=1)``, ``dW1 = d1 @ X.T``, ``db1 = d1.sum(axis=1)``.
    """
    H, Y = answer_forward(params, X)
    d2 = (Y - X) * Y * (1.0 - Y)  # (8, 8)
    d1 = (params["W2"].T @ d2) * H * (1.0 - H)  # (3, 8)
    return {"W1": d1 @ X.T, "b1": d1.sum(axis=1), "W2": d2 @ H.T, "b2": d2.sum(axis=1)}


# --- The same case on the engine ------------------------------------------------------------


def seed_data(n_samples: int = 100, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """The seed's data and the same data one sample vector per row, as the engine takes it.

    Returns
    -------
    data : ndarray, shape (n_samples, 8, 8)
        ``np.random.default_rng(seed).random((n_samples, 8, 8))``.
    X : ndarray, shape (n_samples * 8, 8)
        Row ``8 * s + j`` is column ``j`` of ``data[s]``, so consecutive batches of 8 rows
        are the sample matrices.
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    data = np.random.default_rng(seed).random((n_samples, N_VISIBLE, N_VISIBLE))
    return data, data.transpose(0, 2, 1).reshape(-1, N_VISIBLE)


def _check_init(init: str) -> None:
    if not isinstance(init, str) or init not in INITIALIZERS:
        raise ValueError(f"unknown init {init!r}; choose one of: {', '.join(INITIALIZERS)}")


def seed_model(init: str = "zeros", seed: int | np.random.Generator = 0) -> Sequential:
    """The asker's 8-3-8 sigmoid autoencoder on the engine, both layers from one Generator.

    ``init`` applies to both weight matrices; biases start at zero.
    """
    _check_init(init)
    rng = as_rng(seed)
    return Sequential(
        Dense(N_VISIBLE, N_HIDDEN, init=init, seed=rng),
        Sigmoid(),
        Dense(N_HIDDEN, N_VISIBLE, init=init, seed=rng),
        Sigmoid(),
    )


def seed_parameters(model: Sequential) -> Params:
    """The engine model's weights as the seed's dict (copies): ``W1``, ``b1``, ``W2``, ``b2``."""
    p = model.named_parameters()
    return {
        "W1": p["0.W"].copy(),
        "b1": p["0.b"].copy(),
        "W2": p["2.W"].copy(),
        "b2": p["2.b"].copy(),
    }


@dataclass(frozen=True)
class Timing:
    """Microseconds per training step on one sample matrix, best of a few repeats."""

    asker_us: float
    engine_us: float
    asker_steps: int
    engine_steps: int

    @property
    def ratio(self) -> float:
        """How many times faster the engine's vectorised step is."""
        return self.asker_us / self.engine_us


@dataclass(frozen=True)
class InitRun:
    """One training run from one initialisation.

    ``w1_row_spread`` is the largest absolute difference between a row of ``W1`` and its first
    row: 0 when the hidden units are copies of each other. ``distinct_units`` counts the hidden
    units that differ beyond rounding (the doctor's ``symmetric-units`` tolerance): in floating
    point, rounding differences between identical units can grow until one splits off, and
    whether they do within the run depends on the CPU's BLAS kernels.
    ``w1_rows_identical`` is ``distinct_units == 1``. ``output_mean`` is the mean of the
    trained model's outputs over the data, ``output_spread`` the mean over output elements of
    their standard deviation across inputs (0 when the output is always the same).
    """

    init: str
    final_loss: float
    loss: np.ndarray
    w1_rows_identical: bool
    w1_row_spread: float
    wall_time: float
    distinct_units: int = N_HIDDEN
    output_mean: float = math.nan
    output_spread: float = math.nan


@dataclass
class SeedCaseResult:
    """Everything :func:`run_seed_case` measured; :func:`format_seed_case` tells the story."""

    n_samples: int
    epochs: int
    seed: int
    init_seed: int
    lr: float
    data_mean: float
    data_var: float
    timing: Timing
    engine_check: GradCheckResult
    asker_check: GradCheckResult
    answer_check: GradCheckResult
    runs: list[InitRun]
    code: LinearCode
    report: Report | None = None

    def run(self, init: str) -> InitRun:
        """The run from ``init``; ``KeyError`` when it was not run."""
        for r in self.runs:
            if r.init == init:
                return r
        raise KeyError(f"no run from init {init!r}; ran {[r.init for r in self.runs]}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (floats, ints, bools, strings, lists, dicts)."""
        return {
            "n_samples": self.n_samples,
            "epochs": self.epochs,
            "seed": self.seed,
            "init_seed": self.init_seed,
            "lr": self.lr,
            "data": {"mean": self.data_mean, "var": self.data_var},
            "timing": {**asdict(self.timing), "ratio": self.timing.ratio},
            "gradient_checks": {
                "engine": _check_dict(self.engine_check),
                "asker": _check_dict(self.asker_check),
                "answer": _check_dict(self.answer_check),
            },
            "runs": [
                {
                    "init": r.init,
                    "final_loss": r.final_loss,
                    "loss": r.loss.tolist(),
                    "w1_rows_identical": r.w1_rows_identical,
                    "w1_row_spread": r.w1_row_spread,
                    "distinct_units": r.distinct_units,
                    "wall_time": r.wall_time,
                    "output_mean": r.output_mean,
                    "output_spread": r.output_spread,
                }
                for r in self.runs
            ],
            "bounds": {
                "constant": float(self.code.loss_at_rank[0]),
                "rank_1": self.code.at_rank(1),
                f"rank_{N_HIDDEN}": self.code.at_rank(N_HIDDEN),
                "explained_variance_ratio": self.code.explained_variance_ratio.tolist(),
            },
            "report": None if self.report is None else self.report.to_dict(),
        }


def _check_dict(result: GradCheckResult) -> dict[str, Any]:
    def record(check: Any) -> dict[str, Any]:
        d = asdict(check)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    return {
        "passed": result.passed,
        "failed": result.failed,
        "loss": result.loss,
        "parameters": {name: record(c) for name, c in result.parameters.items()},
        "autograd": None
        if result.autograd is None
        else {name: record(c) for name, c in result.autograd.items()},
        "notes": list(result.notes),
    }


def _seconds_per_step(step: Callable[[], None], n_steps: int) -> float:
    best = math.inf
    for _ in range(_TIMING_REPEATS):
        start = time.perf_counter()
        for _ in range(n_steps):
            step()
        best = min(best, (time.perf_counter() - start) / n_steps)
    return best


def time_steps(sample: np.ndarray, init_seed: int = 0, lr: float = 0.05) -> Timing:
    """Time one SGD step on one 8x8 sample: the asker's loops against the engine.

    Both start from the same Xavier weights and do the whole step: forward, gradients, update.
    """
    model = seed_model("xavier_uniform", init_seed)
    params = seed_parameters(model)

    def asker_step() -> None:
        grads = asker_gradients(params, sample)
        for name in params:
            params[name] -= lr * grads[name]

    rows = np.ascontiguousarray(sample.T)  # (8 columns as rows, 8)
    loss, opt = SSE(), SGD(lr=lr)
    named_params, named_grads = model.named_parameters(), model.named_gradients()

    def engine_step() -> None:
        P = model.forward(rows)
        model.backward(loss.gradient(P, rows))
        opt.step(named_params, named_grads)

    asker = _seconds_per_step(asker_step, _ASKER_TIMING_STEPS)
    engine = _seconds_per_step(engine_step, _ENGINE_TIMING_STEPS)
    return Timing(asker * 1e6, engine * 1e6, _ASKER_TIMING_STEPS, _ENGINE_TIMING_STEPS)


def _check_lr(lr: float) -> float:
    if (
        isinstance(lr, bool)
        or not isinstance(lr, int | float)
        or not (math.isfinite(lr) and lr > 0)
    ):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    return float(lr)


def _check_inits(inits: Sequence[str]) -> list[str]:
    if isinstance(inits, str):
        inits = [inits]
    inits = list(inits)
    if not inits:
        raise ValueError("inits must name at least one initialiser, e.g. ('zeros',)")
    for init in inits:
        _check_init(init)
    return inits


def _check_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def run_seed_case(
    n_samples: int = 100,
    epochs: int = 1000,
    seed: int = 42,
    inits: Sequence[str] = ("zeros", "xavier_uniform"),
    init_seed: int = 0,
    lr: float = 0.05,
    diagnose: bool = True,
    progress: bool | None = None,
) -> SeedCaseResult:
    """Replay the seed case with the engine and measure every step of the story.

    Parameters
    ----------
    n_samples : int
        Number of 8x8 sample matrices, drawn as
        ``np.random.default_rng(seed).random((n_samples, 8, 8))``.
    epochs : int
        Passes over the data; one SGD step per sample matrix (a batch of its 8 columns).
    seed : int
        Seed of the data.
    inits : sequence of str
        Initialisers to train from (names in ``nndoctor.nn.INITIALIZERS``).
    init_seed : int
        Each run builds both Dense layers from one ``np.random.default_rng(init_seed)``.
    lr : float
        SGD learning rate.
    diagnose : bool
        Also run ``nndoctor.diagnose`` on the zero-init setup (when that module exists).
    progress : bool or None
        Progress bars on stderr; None = on a terminal, for runs longer than about a second.

    Returns
    -------
    SeedCaseResult
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    epochs = check_positive_int(epochs, "epochs")
    seed = _check_int(seed, "seed")
    init_seed = _check_int(init_seed, "init_seed")
    lr = _check_lr(lr)
    inits = _check_inits(inits)
    data, X = seed_data(n_samples, seed)
    loss = SSE()

    timing = time_steps(data[0], init_seed, lr)

    # Checked at the Xavier run's starting weights, where every gradient is non-trivial: at
    # all-zero weights the true encoder gradient is exactly 0.
    start = seed_model("xavier_uniform", init_seed)
    sample_rows = data[0].T  # (8, 8): one sample matrix, a column per row
    engine_check = check_gradients(start, sample_rows, sample_rows, loss)
    start_params = seed_parameters(start)
    asker_check = check_function_gradients(
        lambda p: asker_loss(p, data[0]), lambda p: asker_gradients(p, data[0]), start_params
    )
    answer_check = check_function_gradients(
        lambda p: answer_loss(p, data[0]), lambda p: answer_gradients(p, data[0]), start_params
    )

    runs = []
    for init in inits:
        model = seed_model(init, init_seed)
        history = train(
            model,
            X,
            X,
            loss=loss,
            optimizer=SGD(lr=lr),
            epochs=epochs,
            batch_size=N_VISIBLE,
            shuffle=False,
            progress=progress,
        )
        W1 = model.named_parameters()["0.W"]
        b1 = model.named_parameters()["0.b"]
        spread = float(np.max(np.abs(W1 - W1[0])))
        distinct = N_HIDDEN - sum(len(g) - 1 for g in identical_groups(W1, b1))
        P = model.forward(X)  # (n_samples * 8, 8)
        runs.append(
            InitRun(
                init,
                history.final_loss,
                history.loss.copy(),
                distinct == 1,
                spread,
                history.wall_time,
                distinct,
                float(P.mean()),
                float(P.std(axis=0).mean()),
            )
        )

    code = linear_code(X, loss, batch_size=N_VISIBLE)

    report = None
    if diagnose:
        report = doctor_diagnose(
            seed_model("zeros", init_seed),
            X,
            None,
            loss=loss,
            optimizer=SGD(lr=lr),
            epochs=epochs,
            batch_size=N_VISIBLE,
            shuffle=False,
            seed=init_seed,
            progress=progress,
        )

    if report is not None:
        # the doctor trained the zero-init setup: the other inits' runs go beside it in plots
        report.summary["run_label"] = "zeros init (the asker's)"
        report.curves = {f"{r.init} init": r.loss for r in runs if r.init != "zeros"}

    return SeedCaseResult(
        n_samples=n_samples,
        epochs=epochs,
        seed=seed,
        init_seed=init_seed,
        lr=lr,
        data_mean=float(data.mean()),
        data_var=float(data.var()),
        timing=timing,
        engine_check=engine_check,
        asker_check=asker_check,
        answer_check=answer_check,
        runs=runs,
        code=code,
        report=report,
    )


def _worst(result: GradCheckResult, name: str) -> str:
    c = result.parameters[name]
    return (
        f"{name}{list(c.worst_index)}: hand-written {c.analytic:+.4g}, finite differences "
        f"{c.numeric:+.4g} (max rel. error {c.max_rel_error:.2g}; {c.n_failed} of "
        f"{math.prod(c.shape)} elements wrong)"
    )


# population values for i.i.d. uniform [0, 1) data: variance 1/12 per element, so the best
# rank-k linear code of one 8x8 sample loses 0.5 * 8 columns * (8 - k) directions * 1/12
UNIFORM_VAR = 1.0 / 12.0


def population_bound(k: int) -> float:
    """The rank-k bound of the *population* of uniform 8x8 matrices, per sample: (8 - k) / 3."""
    return 0.5 * N_VISIBLE * (N_VISIBLE - k) * UNIFORM_VAR


def story(result: SeedCaseResult) -> list[tuple[str, list[str]]]:
    """The seed case told in the asker's terms, as (heading, paragraphs): why the outputs sat
    at 0.5, the wrong hand-written gradient, the zero init, the bound, then the speed."""
    r = result
    code = r.code
    baseline = float(code.loss_at_rank[0])
    data_spread = math.sqrt(r.data_var)
    runs = {run.init: run for run in r.runs}
    out: list[tuple[str, list[str]]] = []

    mean = [
        f"Your data has mean {r.data_mean:.3f}: uniform numbers on [0, 1) average 0.5. A network "
        "that cannot use its input can only predict one value for every input, and the best "
        f"single value is the mean of the data. That costs {baseline:.4f} per 8x8 sample (the "
        "constant baseline): the loss of a network that ignores its input.",
        "With all weights at zero every output is sigmoid(0) = 0.5 exactly, for every input: "
        "the mean already. Your outputs sat at about 0.5 because your network was not using "
        "its input.",
    ]
    for run in r.runs:
        if math.isfinite(run.output_spread):
            mean.append(
                f"After training from {run.init}, the outputs vary across inputs by "
                f"{run.output_spread:.3f} (their mean {run.output_mean:.3f}), where the data "
                f"varies by {data_spread:.3f}: a spread of 0 would be an output that is always "
                "the same."
            )
    out.append(("1. Why the outputs sat at 0.5", mean))

    a = r.asker_check
    grad = []
    if a.passed:
        grad.append("Your hand-written gradient passes the check on this sample.")
    else:
        grad.append(
            f"Your hand-written gradient is WRONG for {', '.join(a.failed)}: compared with finite "
            "differences (the loss measured a tiny step either side of each weight), "
            + "; ".join(f"worst element {_worst(a, name)}" for name in a.failed)
            + ". The encoder's error must come back through W2: d1 = (W2.T @ d2) H (1-H); "
            "your loop added up the output errors without W2, so every hidden unit got the "
            "same error signal."
        )
    verdict = "passes" if r.answer_check.passed else "FAILS"
    grad.append(f"The answer's matrix gradient {verdict} the same check.")
    e = r.engine_check
    worst_fd = max(c.max_rel_error for c in e.parameters.values())
    ok = "passes" if all(c.passed for c in e.parameters.values()) else "FAILS"
    line = f"nndoctor's engine {ok} it too (max rel. error {worst_fd:.1e})"
    if e.autograd is not None:
        worst_ag = max(c.max_rel_error for c in e.autograd.values())
        line += f" and agrees with torch autograd (max rel. error {worst_ag:.1e})"
    grad.append(line + ".")
    out.append(("2. The wrong hand-written gradient", grad))

    init = []
    for run in r.runs:
        if run.w1_rows_identical:
            rows = "its 3 hidden units stayed identical (the rows of W1 are equal" + (
                ")" if run.w1_row_spread == 0 else f" up to rounding, {run.w1_row_spread:.2g})"
            )
        elif run.distinct_units < N_HIDDEN:
            rows = f"its {N_HIDDEN} hidden units act as {run.distinct_units} distinct ones"
        else:
            rows = f"its hidden units differ (rows of W1 spread {run.w1_row_spread:.2g})"
        init.append(
            f"Trained {r.epochs} epochs from {run.init} (SGD, lr {r.lr:g}, one step per "
            f"sample): final loss {run.final_loss:.4f}; {rows}."
        )
    init.append(
        "Units that start with the same weights get the same gradient at every step and stay "
        "the same forever: with all-zero weights the 3 hidden units compute the same thing, so "
        "the network acts as if it had one. Random (Xavier) weights break the tie."
    )
    zero_run = runs.get("zeros")
    if zero_run is not None and zero_run.distinct_units > 1:
        init.append(
            "In exact arithmetic that is so. On this machine the matrix products round the "
            "identical units' sums in different orders, and the differences of about 1e-16 "
            f"grew until the units split into {zero_run.distinct_units}: the zero-init run ends "
            f"at {zero_run.final_loss:.4f}, not at the rank-1 bound {code.at_rank(1):.4f}. "
            "Rounding is no way to break symmetry: it is slow and depends on the machine."
        )
    out.append(("3. The zero init", init))

    k = N_HIDDEN
    bound = [
        "What any linear code of this data can achieve (loss per sample):",
        f"best constant {baseline:.4f}; best rank-1 code {code.at_rank(1):.4f}; "
        f"best rank-{k} code {code.at_rank(k):.4f}",
        f"{code.spectrum(k)[:1].upper()}{code.spectrum(k)[1:]}.",
    ]
    for run in r.runs:
        rank = run.distinct_units
        b = code.at_rank(rank)
        why = (
            "identical hidden units act as one"
            if rank == 1
            else f"{rank} distinct units"
            + (" (rounding split the identical ones apart)" if rank < k else "")
        )
        bound.append(
            f"{run.init}: {run.final_loss:.4f} is {run.final_loss / b:.3f} x the rank-{rank} "
            f"bound ({why})."
        )
    zero = runs.get("zeros")
    ours = f"ours {zero.final_loss:.2f}" if zero is not None else "ours"
    bound.append(
        f"Why the answer's 2.33 and {ours} differ: 2.33 = (8 - 1) / 3 = "
        f"{population_bound(1):.4f} is the rank-1 bound of the population (every element "
        f"uniform, variance exactly 1/12); the bound of this sample of {r.n_samples} matrices "
        f"is {code.at_rank(1):.4f}, lower because a finite sample has some directions with more "
        "variance than 1/12, and the best code keeps exactly those."
    )
    out.append(("4. The bound", bound))
    t = r.timing
    out.append(
        (
            "5. Speed of one training step on one 8x8 sample",
            [
                f"Your Python loops: {t.asker_us:.1f} us; the engine, vectorised: "
                f"{t.engine_us:.1f} us ({t.ratio:.0f}x faster)."
            ],
        )
    )
    return out


def format_seed_case(result: SeedCaseResult, verbosity: int = 1, color: bool = False) -> str:
    """The story of :func:`run_seed_case` in the order the asker met it, then the doctor's
    report (in colour when ``color``)."""
    r = result
    lines = [
        "The seed case: an 8-3-8 sigmoid autoencoder whose output was always about 0.5",
        f"Data: {r.n_samples} matrices 8x8, uniform on [0, 1) (seed {r.seed}): mean "
        f"{r.data_mean:.3f}, variance {r.data_var:.4f} (1/12 = {1 / 12:.4f})",
    ]
    for heading, paragraphs in story(r):
        lines += ["", heading]
        for paragraph in paragraphs:
            lines += textwrap.wrap(paragraph, 100, initial_indent="   ", subsequent_indent="   ")
    if r.report is not None:
        lines += ["", "6. The doctor on the zero-init setup"]
        if color:
            import io

            buffer = io.StringIO()
            r.report.render(buffer, verbosity, color=True)
            lines.append(buffer.getvalue().rstrip("\n"))
        else:
            from nndoctor.render.terminal import plain_text

            lines.append(plain_text(r.report, verbosity))
    return "\n".join(lines)


def seed_page(result: SeedCaseResult) -> str:
    """The seed case as one self-contained HTML page: the doctor's report, then the story."""
    from nndoctor.render.html import Section, render_page

    if result.report is None:
        raise ValueError("the seed case ran without the doctor: nothing to draw")
    r = result
    intro = [
        f"An 8-3-8 sigmoid autoencoder trained on {r.n_samples} random 8x8 matrices (uniform "
        f"on [0, 1), seed {r.seed}) from all-zero weights, {r.epochs} epochs of SGD (lr "
        f"{r.lr:g}): its output was always about 0.5 and its loss stopped far above what "
        "three units can reach. First the doctor's report, then the story step by step."
    ]
    return render_page(
        [Section("The doctor on the zero-init setup", r.report)],
        title="The seed case: why was the autoencoder's output always 0.5?",
        intro=intro,
        story=story(r),
    )
