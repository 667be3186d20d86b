"""Trials: re-train with ONE change and judge it against the same run without it, seed by seed.

How a trial is judged (``docs/findings.md``, "How trials are judged"):

- **Pairs.** Pair ``k`` trains the original (its weights re-drawn under ``seed + k``; ``k = 0``:
  the user's own weights) and the same run with the change, both shuffled by ``seed + k``: the
  two runs of a pair share their initial weights and batch order, so their difference is the
  change's effect and not seed-to-seed noise. A deterministic original (constant init, no
  shuffling) is trained once and paired with every changed seed.
- **Measure.** Each run is scored by its *skill*, ``1 - metric / baseline``: the metric (the
  final epoch loss, or for a change of loss or targets a metric both runs share, on the
  original data in the original units) relative to the constant-prediction baseline of that
  metric, floored at ``SKILL_FLOOR``. A run whose metric is non-finite, or worse than twice
  the baseline, scores the floor: an ``inf`` that "improves" to ``1e25`` gains nothing.
- **Verdict.** With ``d_k`` the paired skill gains, ``mean`` and ``sem`` their mean and
  standard error: *confirmed* when every changed run is finite, every ``d_k > MIN_GAIN`` and
  ``mean - NOISE_FACTOR * sem > MIN_GAIN``; *refuted* when a changed run is non-finite or
  ``mean + NOISE_FACTOR * sem < MIN_GAIN`` (the change clearly does not help); otherwise
  undecided.
- **Stopping rule.** Every trial starts with ``MIN_PAIRS`` pairs and adds one pair at a time
  while undecided, up to ``MAX_PAIRS`` and while the time budget lasts; undecided at the end
  is *inconclusive* (not confirmed).
- **Budget.** Trials share ``TRIAL_COST`` times the plain run's wall time (at least
  ``MIN_TRIAL_SECONDS``), a run priced by a plain run of ``PRICE_SHARE`` of the epochs; the
  top trials train the full epoch count, as many as fit; when not even one fits, every run of
  the trials (original and changed alike) trains the same shorter count, and the trial says so.
  Pairs run in parallel processes when one run takes ``PARALLEL_MIN_SECONDS`` or more, cores
  are free and the backend allows forking; the results are the same as in one process.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from nndoctor._progress import ProgressBar
from nndoctor.doctor.changes import Change
from nndoctor.doctor.finding import Finding
from nndoctor.doctor.rule import ChangeFor
from nndoctor.doctor.rules import RULES
from nndoctor.doctor.schema import Context, Fit, Run

MAX_TRIALS = 3
MIN_PAIRS = 2
MAX_PAIRS = 5
NOISE_FACTOR = 2.0
MIN_GAIN = 0.05
SKILL_FLOOR = -1.0
TRIAL_COST = 1.2
MIN_TRIAL_SECONDS = 1.5
PARALLEL_MIN_SECONDS = 1.0
PRICE_SHARE = 0.05

CONFIRMED, REFUTED, UNDECIDED, INCONCLUSIVE = "confirmed", "refuted", "undecided", "inconclusive"
# a trial whose runs had to be shorter than the original and did not confirm its fix
TOO_SHORT = "too short to decide"


# code -> the change its trial makes (the rules' records)
FIXES: dict[str, ChangeFor] = {r.code: r.change for r in RULES if r.change is not None}


def changed(run: Run, change: Change) -> Run | None:
    """``run`` with ``change`` made by its backend and judged by the change's metric."""
    out = run.backend.apply(run, change)
    return None if out is None else replace(out, metric=change.metric)


# --- the measure ---


def _metric(s: Run, fit: Fit, original: Run) -> float:
    """The trial metric of a trained run: the final epoch loss, or, when the change alters the
    loss or the targets' units, a metric both runs share (on the original data)."""
    if fit.diverged is not None:
        return math.inf
    if s.metric == "loss" and s.unscale is None:
        return fit.final_loss
    with np.errstate(all="ignore"):
        P = s.backend.predict(fit.model, s.X)
        if s.unscale is not None:
            P = s.unscale(P)
    if not np.all(np.isfinite(P)):
        return math.inf
    if s.metric == "error rate":
        return float(np.mean(P.argmax(axis=1) != _labels(original)))
    if s.metric == "mse":
        return float(np.mean((P - original.Y.reshape(P.shape)) ** 2))
    return original.backend.loss_value(original, P, original.Y)


def _labels(run: Run) -> np.ndarray:
    return run.Y.reshape(len(run.Y), -1)[:, 0].astype(np.intp)


def metric_baseline(metric: str, original: Run, ctx: Context) -> float:
    """The metric of the best constant prediction: the constant-baseline loss for the loss
    metrics, the targets' variance for MSE, one minus the largest class share for the error
    rate; NaN when unknown."""
    if metric == "error rate":
        counts = np.bincount(_labels(original))
        return float(1.0 - counts.max() / counts.sum())
    if metric == "mse":
        return float(np.mean(np.var(original.Y.reshape(len(original.Y), -1), axis=0)))
    return float(ctx.bounds.get("baseline", math.nan))


def skill(value: float, base: float) -> float:
    """``1 - value / base`` floored at ``SKILL_FLOOR``; the floor for a non-finite value."""
    if not math.isfinite(value):
        return SKILL_FLOOR
    return max(SKILL_FLOOR, 1.0 - value / base)


def judge(before: list[float], after: list[float], base: float) -> tuple[str, dict[str, Any]]:
    """The verdict on paired runs: ``before[k]`` and ``after[k]`` share seed ``k`` (a single
    ``before`` pairs with every ``after``: a deterministic original).

    Parameters
    ----------
    before, after : list of float
        The metric of each run (lower is better; inf for a run that diverged).
    base : float
        The metric's constant baseline (> 0), which makes the metric a skill.

    Returns
    -------
    verdict : {"confirmed", "refuted", "undecided"}
    numbers : dict
        ``skill_before``, ``skill_after``, ``gains`` (paired), ``mean_gain``, ``sem``.
    """
    if len(before) == 1:
        before = before * len(after)
    sb = [skill(b, base) for b in before]
    sa = [skill(a, base) for a in after]
    gains = [a - b for a, b in zip(sa, sb, strict=True)]
    mean = statistics.fmean(gains)
    sem = statistics.stdev(gains) / math.sqrt(len(gains)) if len(gains) > 1 else math.inf
    numbers = {
        "skill_before": sb,
        "skill_after": sa,
        "gains": gains,
        "mean_gain": mean,
        "sem": sem,
    }
    if not all(math.isfinite(a) for a in after):
        return REFUTED, numbers
    if min(gains) > MIN_GAIN and mean - NOISE_FACTOR * sem > MIN_GAIN:
        return CONFIRMED, numbers
    if mean + NOISE_FACTOR * sem < MIN_GAIN:
        return REFUTED, numbers
    return UNDECIDED, numbers


# --- running: jobs of (run, epochs, seed), serial or in forked processes ---

_JOBS: list[tuple[Run, int, Run]] = []


def _do(i: int) -> tuple[float, list[float]]:
    """The metric of job ``i`` and its loss curve (for the report's plot)."""
    s, epochs, original = _JOBS[i]
    try:
        fit = s.backend.fit(s, epochs, s.seed)
    except Exception:  # the change broke the user's model (standardised token ids, say)
        return math.inf, []  # a run that does not train is no improvement
    return _metric(s, fit, original), [float(x) for x in fit.epoch_loss]


def _workers(run_seconds: float, backend: Any) -> int:
    if run_seconds < PARALLEL_MIN_SECONDS or not backend.fork_safe:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return 1
    # the load average counts this process too: it is one of the workers
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores - round(load) + 1, cores))


def _run_jobs(jobs: list[tuple[Run, int, Run]], workers: int) -> list[tuple[float, list[float]]]:
    """The metric and loss curve of every job, in order; in ``workers`` forked processes
    when > 1 (each job seeds its own run, so the results do not depend on where it ran)."""
    global _JOBS
    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        _JOBS = jobs
        try:
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx) as pool:
                return list(pool.map(_do, range(len(jobs))))
        except (OSError, ValueError, RuntimeError, ImportError):
            pass  # no fork or no processes here: run them in this one
        finally:
            _JOBS = []
    _JOBS = jobs
    try:
        return [_do(i) for i in range(len(jobs))]
    finally:
        _JOBS = []


def _epoch_seconds(run: Run) -> float:
    """Seconds per epoch of a plain run of ``PRICE_SHARE`` of the epochs (at least one, so
    that the fixed cost of a fit weighs as in a full run); NaN when it diverged."""
    epochs = max(1, math.ceil(PRICE_SHARE * run.epochs))
    tick = time.perf_counter()
    fit = run.backend.fit(run, epochs, run.seed)
    seconds = time.perf_counter() - tick
    return math.nan if fit.diverged is not None else seconds / epochs


@dataclass
class _Trial:
    finding: Finding
    change: Change
    runs: list[Run]  # the changed run of each pair
    after: list[float] = field(default_factory=list)
    verdict: str = UNDECIDED
    numbers: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    curve: list[float] | None = None  # seed 0's loss curve (the user's weights, changed)


def run_trials(
    findings: list[Finding],
    original: Run,
    original_epoch_loss: np.ndarray,
    ctx: Context,
    *,
    run_seconds: float = 0.0,
    max_trials: int = MAX_TRIALS,
    cost: float = TRIAL_COST,
    progress: bool | None = False,
) -> None:
    """Try the fixes of the top causes; fill ``confirmed`` and ``trial`` in place.

    ``run_seconds`` is the wall time of the watched run: it sizes the time budget. A fix the
    backend cannot make is named in ``evidence["trial_skipped"]``. ``progress``: a bar over
    the training runs the trials make (None = on a terminal or in a notebook).
    """
    start = time.perf_counter()
    backend = original.backend
    bases = [original] + [
        replace(backend.reinitialise(original, original.seed + k), seed=original.seed + k)
        for k in range(1, MAX_PAIRS)
    ]
    trials: list[_Trial] = []
    same_fix: list[tuple[Finding, _Trial]] = []
    for f in findings:
        if f.kind != "cause" or f.severity == "info" or f.code not in FIXES:
            continue
        change = FIXES[f.code](f, ctx)
        if change is None:
            continue
        twin = next((t for t in trials if t.change.describe() == change.describe()), None)
        if twin is not None:
            same_fix.append((f, twin))
            continue
        if len(trials) >= max_trials:
            continue
        runs = [changed(base, change) for base in bases]
        if not all(r is not None for r in runs):
            f.evidence["trial_skipped"] = (
                f"{change.describe()}: the {backend.name} backend cannot make this change"
            )
            continue
        trials.append(_Trial(f, change, runs))  # type: ignore[arg-type]
    if not trials:
        return
    deterministic = not original.shuffle and backend.same_weights(bases[1], original)
    budget = max(cost * run_seconds, MIN_TRIAL_SECONDS)
    workers = _workers(run_seconds, backend)
    # a plain run of PRICE_SHARE of the epochs prices a trial run (the watched run pays for
    # its probes); a changed run's when the original diverges (it stops early)
    per_epoch = _epoch_seconds(original)
    if math.isnan(per_epoch):
        per_epoch = _epoch_seconds(trials[0].runs[0])
    if math.isnan(per_epoch):
        per_epoch = run_seconds / max(original.epochs, 1)

    def first_round(planned: list[_Trial]) -> int:
        # the original's seed-0 loss is read off the watched run's curve
        return MIN_PAIRS * len(planned) + sum(
            (1 if deterministic else MIN_PAIRS) - (m == "loss")
            for m in {t.change.metric for t in planned}
        )

    # full epochs for as many of the top trials as the budget allows (a shortened run can
    # miss a true fix); when not even the first fits, all of them share a shorter count
    def affordable(planned: list[_Trial]) -> float:
        return budget * workers / max(first_round(planned) * per_epoch, 1e-12)

    full = [k for k in range(1, len(trials) + 1) if affordable(trials[:k]) >= original.epochs]
    if full:
        for t in trials[full[-1] :]:
            t.finding.evidence["trial_skipped"] = (
                f"{t.change.describe()}: not tried, the time budget of the trials "
                f"({budget:.1f} s) went to the causes ranked above at the full epoch count"
            )
        trials = trials[: full[-1]]
    epochs = max(1, min(original.epochs, math.floor(affordable(trials))))
    metrics = sorted({t.change.metric for t in trials})
    base_of = {m: metric_baseline(m, original, ctx) for m in metrics}
    before: dict[str, list[float]] = {m: [] for m in metrics}

    def before_job(metric: str, k: int) -> tuple[Run, int, Run] | None:
        if metric == "loss" and k == 0 and epochs <= len(original_epoch_loss):
            return None  # read off the watched run's curve: the same run
        return (replace(bases[k], metric=metric), epochs, original)

    pairs, elapsed = 0, 0.0
    # the bar's length: every pair of every trial and its original, at most
    ran, most = 0, MAX_PAIRS * (len(trials) + len(metrics))
    bar = ProgressBar(most, "trial runs", enabled=progress)
    while True:
        target = MIN_PAIRS if pairs == 0 else pairs + 1
        open_trials = [t for t in trials if t.verdict == UNDECIDED]
        jobs: list[tuple[Run, int, Run]] = []
        slots: list[tuple[str, Any]] = []
        for m in metrics:
            if deterministic and before[m]:
                continue
            if not any(t.change.metric == m for t in open_trials):
                continue
            for k in range(len(before[m]), 1 if deterministic else target):
                job = before_job(m, k)
                if job is None:
                    value = float(original_epoch_loss[epochs - 1])
                    before[m].append(value if math.isfinite(value) else math.inf)
                else:
                    jobs.append(job)
                    slots.append(("before", m))
        for t in open_trials:
            for k in range(len(t.after), target):
                jobs.append((t.runs[k], epochs, original))
                slots.append(("after", t))
        for (kind, key), (value, curve) in zip(slots, _run_jobs(jobs, workers), strict=True):
            if kind == "before":
                before[key].append(value)
            else:
                if not key.after:
                    key.curve = curve
                key.after.append(value)
        ran += len(jobs)
        bar.update(min(ran, most))
        done, pairs = pairs, target
        last, elapsed = elapsed, time.perf_counter() - start
        for t in open_trials:
            m = t.change.metric
            t.verdict, t.numbers = judge(before[m], t.after, _positive(base_of[m], before[m]))
            t.seconds = elapsed
        still = [t for t in trials if t.verdict == UNDECIDED]
        # one more pair only when it fits in what is left of the budget
        per_pair = (elapsed - last) / (pairs - done)
        if not still or pairs >= MAX_PAIRS or elapsed + per_pair > budget:
            break
    note = (
        "the original is deterministic (constant init, no shuffling): one run pairs with "
        "every changed seed"
        if deterministic
        else "pair k: the original and the changed run share seed k (weights and batch order)"
    )
    for t in trials:
        m = t.change.metric
        verdict = INCONCLUSIVE if t.verdict == UNDECIDED else t.verdict
        if verdict != CONFIRMED and epochs < original.epochs:
            # shorter runs than the one it is compared with: a fix whose effect needs the whole
            # run (identical units split by rounding late, a slow descent) cannot show it; no
            # verdict rather than "not confirmed" (issue 20)
            verdict = TOO_SHORT
        b, a = before[m], t.after
        t.finding.confirmed = (
            True if verdict == CONFIRMED else None if verdict == TOO_SHORT else False
        )
        t.finding.trial = {
            "change": t.change.describe(),
            "metric": m,
            "verdict": verdict,
            "loss_before": float(np.mean(b)),
            "loss_after": float(np.mean(a)),
            "before_seeds": [float(x) for x in b],
            "after_seeds": [float(x) for x in a],
            "pairs": len(a),
            "baseline": base_of[m],
            "measure": f"skill = 1 - {m} / constant baseline, floored at {SKILL_FLOOR:g}",
            **t.numbers,
            "noise": float(np.std(t.numbers["gains"])) if t.numbers else math.nan,
            "budget": f"{epochs} of {original.epochs} epochs per run",
            "noise_note": note,
            "seconds": t.seconds,
        }
        if m == "loss" and t.runs[0].unscale is None and t.curve is not None:
            # seed 0 (the user's own weights, changed): its curve is in the original's units
            t.finding.trial["curve"] = t.curve
    bar.close()
    for f, twin in same_fix:
        f.confirmed, f.trial = twin.finding.confirmed, twin.finding.trial


def _positive(base: float, before: list[float]) -> float:
    """The baseline when it is a positive number, else the original's own metric (a gain is
    then relative to where the original ended), else 1."""
    if math.isfinite(base) and base > 0:
        return base
    finite = [abs(b) for b in before if math.isfinite(b) and b != 0]
    return max(finite) if finite else 1.0
