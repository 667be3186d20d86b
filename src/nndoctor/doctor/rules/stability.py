"""Training stability: loss spikes that recover or start a divergence, gradient-norm spikes and
the layer they start in, the layer whose update jumped first, attention logits that grow until
the softmax saturates, output logits that drift, a float16 loss scaler that collapses.

The signals are the loss of every step (``probes.step_loss``), the per-step gradient norm and the
per-probe summaries of :class:`~nndoctor.doctor.schema.StabilityTrace` (a backend that records
them: PyTorch's watch), and the layers' update ratios at the probes. A spike is a step far above
the mean of the steps before it: ``SPIKE_SIGMAS`` of their spread (OLMo-core's threshold) and a
visible share above the mean; it *recovers* when the loss comes back within a few spreads of
that mean, and *starts a divergence* when it never does (or turns into NaN).

One instability sets off the others (too large a step grows the attention logits, which spike
the loss, which explodes the gradients): a cause is named at its full severity only when no
other cause of this family began before it (:func:`onsets`); a later one is kept as information
that says what came first. Thresholds and false alarms are in ``docs/findings.md``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndoctor.doctor.changes import (
    Change,
    ClipGradients,
    Float32,
    LearningRate,
    QKNorm,
    Warmup,
    ZLoss,
)
from nndoctor.doctor.finding import CAUSE, ERROR, INFO, NOTE, SYMPTOM, WARNING, Finding
from nndoctor.doctor.rule import Rule
from nndoctor.doctor.rules.gradients import LR_TOO_HIGH, lr_too_high
from nndoctor.doctor.schema import Context, Probes, StabilityTrace

# --- spikes in a series of steps ---
# the previous steps whose mean and spread a step is judged against
SPIKE_WINDOW = 32
# finite steps before a step can be a spike
SPIKE_HISTORY = 3
# a spike: above the mean by this many spreads (OLMo-core's 6 standard deviations) ...
SPIKE_SIGMAS = 6.0
# ... and by this share of the mean (the loss); twice the mean for the gradient norm
LOSS_SPIKE_RISE = 0.25
GRAD_SPIKE_RISE = 1.0
# the spread is taken as at least this share of the mean (a loss flat to rounding)
NOISE_FLOOR = 0.02
# recovered: the median of RECOVER_STEPS steps back within RECOVER_SIGMAS spreads (or
# RECOVER_RISE of the mean, whichever is wider) of the mean before the spike
RECOVER_SIGMAS = 3.0
RECOVER_RISE = 0.1
RECOVER_STEPS = 3
# ... or the median back below the level plus this share of the peak's rise above it
RECOVER_HALFWAY = 0.5
# a spike not recovered with fewer steps than this after it has not had the time to
UNRESOLVED_TAIL = 20
# spikes followed at most (a run with more is one long instability)
MAX_SPIKES = 50

# --- the layer a gradient spike starts in ---
# a layer's largest gradient norm over its median before, to count as spiking with the total
LAYER_SPIKE = 4.0
# a gradient spike this many steps before a divergent loss spike (or at it) set it off
GRAD_LEAD = 5
# clipping threshold of the trial: this many times the median gradient norm before the spike
CLIP_FACTOR = 2.0

# --- the update of a layer ---
# the first update changing a layer by more than this share of its norm: the run starts at a
# learning rate its fresh optimizer state cannot take (healthy: 1e-3 to 1e-2)
UPDATE_FIRST = 0.1
# steps of the warmup a trial adds
WARMUP_STEPS = 50
# later (once SETTLE_STEPS passed and the warmup ended), the update ratio per unit of learning
# rate this many times its median before, and above UPDATE_FLOOR
SETTLE_STEPS = 20
UPDATE_JUMP = 10.0
UPDATE_FLOOR = 0.01
# ... with the layer's gradient not grown by a third as much (then it is a gradient spike)
UPDATE_GRAD_SHARE = 1.0 / 3.0
# a jump counts as harmful when a loss spike starts within this many steps after it (or two
# probe intervals, when the probes are further apart: the jump is seen at a probe)
HARM_STEPS = 20

# --- attention and output logits ---
# the largest attention logit above this (a softmax of such logits is one-hot) ...
ATTENTION_LOGIT_HIGH = 50.0
# ... and this many times its first value (at least 1): it grew there
ATTENTION_GROWTH = 20.0
# the mean log-sum-exp of the output logits (log Z) beyond this in size ...
LOG_Z_HIGH = 30.0
# ... and drifted this far from its first value
LOG_Z_DRIFT = 20.0
# z-loss weight of the trial (PaLM's; Wortsman et al. 2023)
Z_LOSS_WEIGHT = 1e-4

# --- the loss scaler ---
# a collapse: this many skipped steps in a row (the scale divided by 2 ** 16), or the scale
# fallen below SCALE_FLOOR (gradients overflow float16 even unscaled)
SCALER_RUN = 16
SCALE_FLOOR = 1.0
# log of float16's largest number (65504): a logit above it overflows exp in float16
FLOAT16_LOG_MAX = math.log(65504.0)


@dataclass
class Spike:
    """One spike of a series of steps.

    ``start``: the first step above the band; ``peak``/``peak_value``: its highest step (the
    first non-finite one when there is one); ``reference``/``noise``: the mean and spread of
    the steps before it; ``end``: the step it was back within the band (None: it never was);
    ``finite``: no NaN/inf from its start to its end.
    """

    start: int
    peak: int
    peak_value: float
    reference: float
    noise: float
    end: int | None
    finite: bool
    length: int

    @property
    def recovered(self) -> bool:
        return self.end is not None and self.finite

    @property
    def diverged(self) -> bool:
        """Never back, with the time to come back (or NaN/inf on the way)."""
        if self.recovered:
            return False
        return not self.finite or self.length - self.start >= UNRESOLVED_TAIL

    @property
    def size(self) -> float:
        """The peak over the mean before it (inf for a non-finite peak)."""
        if not math.isfinite(self.peak_value):
            return math.inf
        return self.peak_value / self.reference if self.reference > 0 else math.inf


def _rolling(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every step: mean and standard deviation of the finite values among the ``window``
    steps before it, and how many there were (cumulative sums: O(steps))."""
    finite = np.isfinite(x)
    v = np.where(finite, x, 0.0)
    c1 = np.concatenate([[0.0], np.cumsum(v)])
    c2 = np.concatenate([[0.0], np.cumsum(v * v)])
    cn = np.concatenate([[0], np.cumsum(finite)])
    idx = np.arange(len(x))
    lo = np.maximum(idx - window, 0)
    count = cn[idx] - cn[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (c1[idx] - c1[lo]) / count
        var = np.maximum((c2[idx] - c2[lo]) / count - mean**2, 0.0)
    return mean, np.sqrt(var), count


def find_spikes(x: np.ndarray, rise: float, sigmas: float = SPIKE_SIGMAS) -> list[Spike]:
    """The spikes of the series ``x`` (one value per step, NaN where unknown): steps above the
    mean of the ``SPIKE_WINDOW`` steps before them by ``sigmas`` spreads and by ``rise`` of the
    mean, or not finite; each followed to its recovery (see :class:`Spike`)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n <= SPIKE_HISTORY:
        return []
    mean, std, count = _rolling(x, SPIKE_WINDOW)
    with np.errstate(invalid="ignore"):
        noise = np.maximum(std, NOISE_FLOOR * np.abs(mean))
        above = (x > mean + sigmas * noise) & (x > mean + rise * np.abs(mean))
    nonfinite = ~np.isfinite(x) & ~np.isnan(x)  # inf, and NaN below
    candidates = np.flatnonzero((count >= SPIKE_HISTORY) & (above | nonfinite | np.isnan(x)))
    # NaN marks a step whose loss was not seen (a gap): only a NaN after finite values that
    # then never come back is a divergence; a gap inside a run is skipped
    spikes: list[Spike] = []
    pos = 0
    for s in (int(c) for c in candidates):
        if s < pos or len(spikes) >= MAX_SPIKES:
            continue
        if np.isnan(x[s]) and np.isfinite(x[s:]).any():
            continue
        ref, nz = float(mean[s]), float(noise[s])
        band = ref + max(RECOVER_SIGMAS * nz, RECOVER_RISE * abs(ref))
        end = _back_within(x, s + 1, band)
        if end is None and np.isfinite(x[s:]).all():
            # back at least halfway from the peak to the level before: not a divergence. A
            # classifier's per-step losses are heavy-tailed, and a stretch of easy batches
            # sets a level the run need not return to for it to keep what it learned
            half = ref + RECOVER_HALFWAY * (float(np.max(x[s:])) - ref)
            end = _back_within(x, s + 1, half)
        stop = end if end is not None else n
        seg = x[s:stop]
        bad = ~np.isfinite(seg)
        peak = s + int(np.argmax(bad)) if bad.any() else s + int(np.argmax(seg))
        spikes.append(Spike(s, peak, float(x[peak]), ref, nz, end, not bad.any(), n))
        pos = stop
    return spikes


def _back_within(x: np.ndarray, start: int, band: float) -> int | None:
    """The first step from ``start`` on whose ``RECOVER_STEPS``-step median is within
    ``band`` (None: none is)."""
    rest = x[start:]
    if len(rest) < RECOVER_STEPS:
        return None
    windows = np.lib.stride_tricks.sliding_window_view(rest, RECOVER_STEPS)
    finite = np.all(np.isfinite(windows), axis=1)
    med = np.median(np.where(finite[:, None], windows, np.inf), axis=1)
    ok = np.flatnonzero(finite & (med <= band))
    return start + int(ok[0]) if ok.size else None


def loss_spikes(probes: Probes) -> list[Spike]:
    return find_spikes(probes.step_loss, LOSS_SPIKE_RISE)


def grad_spikes(trace: StabilityTrace | None) -> list[Spike]:
    if trace is None:
        return []
    return find_spikes(trace.grad_norm, GRAD_SPIKE_RISE)


# --- where a gradient spike starts ---


def _column_medians(a: np.ndarray) -> np.ndarray:
    """The median of each column's finite entries (NaN for a column with none; no warning)."""
    finite = np.isfinite(a)
    out = np.full(a.shape[1], math.nan)
    some = finite.any(axis=0)
    if some.any():
        out[some] = np.nanmedian(np.where(finite, a, np.nan)[:, some], axis=0)
    return out


def spike_layer(trace: StabilityTrace, step: int) -> dict[str, Any] | None:
    """The layer a gradient spike at ``step`` started in: of the layers whose largest gradient
    norm in the probe interval holding ``step`` is ``LAYER_SPIKE`` times their median before,
    the one whose largest came first (ties: the larger jump); else the largest jump."""
    # the rows that summarise gradients (a row of a forward pass alone has none)
    rows = np.flatnonzero(np.isfinite(trace.grad_max).any(axis=1)) if trace.layers else None
    if rows is None or not len(rows):
        return None
    k = int(np.searchsorted(trace.steps[rows], step))
    if k >= len(rows):
        return None
    i = rows[k]
    before = trace.grad_mean[rows[:k]] if k else trace.grad_mean[rows[:1]]
    with np.errstate(all="ignore"):
        ratio = trace.grad_max[i] / _column_medians(before)
    ratio = np.where(np.isnan(ratio), 0.0, ratio)
    when = trace.grad_max_step[i]
    cand = np.flatnonzero(ratio >= LAYER_SPIKE)
    if cand.size:
        order = sorted(cand, key=lambda j: (when[j], -ratio[j]))
        j = int(order[0])
    else:
        j = int(np.argmax(ratio))
    return {
        "layer": trace.layers[j],
        "layer_jump": float(ratio[j]),
        "layer_step": int(when[j]) if np.isfinite(when[j]) else step,
    }


# --- the onsets of the causes of this family ---


@dataclass
class Onset:
    """When one cause's signal began (``step``), how strong (``severity``), and its numbers."""

    step: int
    severity: str
    evidence: dict[str, Any]


def _harm(probes: Probes, step: int, soon: bool = False) -> Spike | None:
    """The first loss spike that starts at ``step`` or after it (``soon``: within
    ``HARM_STEPS`` or two probe intervals)."""
    horizon = max(HARM_STEPS, 2 * probes.probe_every) if soon else len(probes.step_loss)
    return next((s for s in loss_spikes(probes) if step <= s.start <= step + horizon), None)


def _severity(harm: Spike | None) -> str | None:
    if harm is None:
        return None
    return ERROR if harm.diverged else WARNING


def grad_spike_onset(probes: Probes) -> Onset | None:
    """A gradient-norm spike that set off a loss spike which never recovered."""
    trace = probes.stability
    if trace is None:
        return None
    diverging = [s for s in loss_spikes(probes) if s.diverged]
    for g in grad_spikes(trace):
        lead = next((s for s in diverging if g.start <= s.start <= g.start + GRAD_LEAD), None)
        if lead is None:
            continue
        before = trace.grad_norm[max(0, g.start - SPIKE_WINDOW) : g.start]
        before = before[np.isfinite(before)]
        median = float(np.median(before)) if before.size else g.reference
        where = spike_layer(trace, g.start) or {}
        return Onset(
            g.start,
            ERROR,
            {
                "step": g.start,
                "grad_norm_before": median,
                "grad_norm_peak": g.peak_value,
                "grad_jump": g.size,
                **where,
                "loss_spike_step": lead.start,
                "clip_norm": float(f"{CLIP_FACTOR * median:.2g}"),
            },
        )
    return None


def _lr_at(probes: Probes, steps: np.ndarray) -> np.ndarray:
    """The learning rate at each of ``steps`` (from the loop's facts; 1 where unknown)."""
    changes = probes.loop.lr_steps if probes.loop is not None else []
    if not changes:
        return np.ones(len(steps))
    at = np.array([c[0] for c in changes])
    lr = np.array([c[1] for c in changes], dtype=np.float64)
    idx = np.clip(np.searchsorted(at, steps, side="right") - 1, 0, len(lr) - 1)
    return lr[idx]


def _settled(probes: Probes) -> int:
    """The first step after which update sizes can be compared: the optimizer's state settled
    (``SETTLE_STEPS``: momentum builds up over about ten steps) and the learning rate stopped
    rising (a warmup's end)."""
    changes = probes.loop.lr_steps if probes.loop is not None else []
    rising = [b[0] for a, b in itertools.pairwise(changes) if b[1] > a[1]]
    return max(SETTLE_STEPS, (rising[-1] + 1) if rising else 0)


def update_jump_onset(probes: Probes) -> Onset | None:
    """The first layer whose update jumped (the first update too large; or, once the run
    settled, ten times its median before at the same learning rate, its gradient not grown as
    much) shortly before a loss spike or another instability of this family."""
    if not probes.layers or not probes.steps.size:
        return None
    lr_steps = probes.loop.lr_steps if probes.loop is not None else []
    # a learning rate that rose over the first steps: a warmup (its first steps are small)
    warmed = len(lr_steps) > 1 and lr_steps[1][1] > lr_steps[0][1]
    settle = _settled(probes)
    events: list[tuple[int, float, dict[str, Any]]] = []
    for t in probes.layers:
        r = np.asarray(t.update_ratio, dtype=np.float64)
        g = np.asarray(t.grad_norm, dtype=np.float64)[: len(r)]
        steps = probes.steps[: len(r)]
        # ... unless even a warmup's first step (1/WARMUP_STEPS of the rate) would move the
        # weights by their whole size: then the peak rate is too high, not the start too steep
        first = r[0] if r.size else math.nan
        if UPDATE_FIRST < first <= WARMUP_STEPS and not warmed and probes.loop is not None:
            events.append(
                (int(steps[0]), first / UPDATE_FIRST, {"layer": t.name, "update_ratio": first})
            )
        with np.errstate(all="ignore"):
            per_lr = r / _lr_at(probes, steps)  # the step size the schedule did not set
            late = np.flatnonzero(steps >= settle)
            for k, j in enumerate(late[2:], start=2):
                prior = per_lr[late[:k]]
                prior = prior[np.isfinite(prior)]
                ref = float(np.median(prior)) if prior.size else math.nan
                jump = per_lr[j] / ref
                if not (jump > UPDATE_JUMP and r[j] > UPDATE_FLOOR):
                    continue
                gp = g[late[:k]][np.isfinite(g[late[:k]])]
                grad_jump = g[j] / np.median(gp) if gp.size else math.nan
                if grad_jump >= UPDATE_GRAD_SHARE * jump:
                    continue  # the gradient spiked: the update only followed it
                events.append(
                    (
                        int(steps[j]),
                        jump,
                        {"layer": t.name, "update_ratio": r[j], "update_jump": jump},
                    )
                )
                break
    if not events:
        return None
    step, _, evidence = min(events, key=lambda e: (e[0], -e[1]))
    # what followed: a loss spike soon after, or another instability of this family
    harm = _harm(probes, step, soon=True)
    later = [
        (code, o) for code, o in _other_onsets(probes).items() if o is not None and o.step >= step
    ]
    if harm is None and not later:
        return None
    severe = (harm is not None and harm.diverged) or any(o.severity == ERROR for _, o in later)
    followed: dict[str, Any] = {}
    if harm is not None:
        followed = {"loss_spike_step": harm.start, "loss_spike_size": harm.size}
    if later:
        code, o = min(later, key=lambda co: co[1].step)
        followed |= {"followed_by": code, "followed_by_step": o.step}
    return Onset(
        step,
        ERROR if severe else WARNING,
        {
            "step": step,
            **evidence,
            "first_update": step == int(probes.steps[0]),
            "warmup_seen": warmed,
            **followed,
        },
    )


def _other_onsets(probes: Probes) -> dict[str, Onset | None]:
    """The onsets of the causes an update jump can set off."""
    return {
        ATTENTION_CODE: attention_onset(probes),
        LOGIT_CODE: logit_onset(probes),
        GRAD_NORM_SPIKE_CODE: grad_spike_onset(probes),
        SCALER_CODE: scaler_onset(probes),
    }


def attention_onset(probes: Probes) -> Onset | None:
    """The first attention site whose largest logit grew past ``ATTENTION_LOGIT_HIGH``."""
    trace = probes.stability
    if trace is None or not trace.attention or not trace.attention_logit_max.size:
        return None
    A = trace.attention_logit_max
    best: tuple[int, int, int] | None = None  # (row, site, first row)
    for j in range(A.shape[1]):
        col = A[:, j]
        seen = np.flatnonzero(np.isfinite(col))
        if not seen.size:
            continue
        first = max(float(col[seen[0]]), 1.0)
        with np.errstate(invalid="ignore"):
            grown = np.flatnonzero((col > ATTENTION_LOGIT_HIGH) & (col > ATTENTION_GROWTH * first))
        if grown.size and (best is None or grown[0] < best[0]):
            best = (int(grown[0]), j, int(seen[0]))
    if best is None:
        return None
    row, j, first_row = best
    step = int(trace.steps[row])
    harm = _harm(probes, step)
    E = trace.attention_entropy[:, j]
    return Onset(
        step,
        ERROR if harm is not None and harm.diverged else WARNING,
        {
            "step": step,
            "attention_site": trace.attention[j],
            "attention_logit_first": float(A[first_row, j]),
            "attention_logit_at": float(A[row, j]),
            "attention_logit_max": float(np.nanmax(A[:, j])),
            "attention_entropy_first": float(E[first_row]),
            "attention_entropy_at": float(E[row]),
            "loss_spike_step": harm.start if harm is not None else None,
        },
    )


def logit_onset(probes: Probes) -> Onset | None:
    """The first probe where the output logits' log-sum-exp (log Z) drifted far from where it
    started."""
    trace = probes.stability
    if trace is None or not trace.logit_lse.size:
        return None
    z = trace.logit_lse
    seen = np.flatnonzero(np.isfinite(z))
    if not seen.size:
        return None
    z0 = float(z[seen[0]])
    with np.errstate(invalid="ignore"):
        far = np.flatnonzero((np.abs(z) > LOG_Z_HIGH) & (np.abs(z - z0) > LOG_Z_DRIFT))
    if not far.size:
        return None
    row = int(far[0])
    step = int(trace.steps[row])
    harm = _harm(probes, step)
    return Onset(
        step,
        ERROR if harm is not None and harm.diverged else WARNING,
        {
            "step": step,
            "log_z_first": z0,
            "log_z_at": float(z[row]),
            "log_z_max": float(np.nanmax(np.abs(z))),
            "max_logit": float(trace.logit_max[row]),
            "loss_spike_step": harm.start if harm is not None else None,
        },
    )


def scaler_onset(probes: Probes) -> Onset | None:
    """A loss scaler that skipped ``SCALER_RUN`` steps in a row or whose scale fell below
    ``SCALE_FLOOR``."""
    trace = probes.stability
    if trace is None or trace.scaler_updates == 0:
        return None
    low = np.flatnonzero(trace.scaler_scale < SCALE_FLOOR)
    collapsed = trace.scaler_longest_skip_run >= SCALER_RUN or low.size > 0
    if not collapsed:
        return None
    steps = trace.steps
    # output logits above log(float16's largest) before the collapse: their exp overflows
    # float16 (a softmax or a log-sum-exp without the max subtracted): the output layer in
    # float32 is the trial; else the whole model
    finite = trace.logit_max[np.isfinite(trace.logit_max)]
    over = finite.size > 0 and float(finite.max()) > FLOAT16_LOG_MAX
    module = probes.layers[-1].name if over and probes.layers else ""
    # the start of the episode of skipped steps that collapsed, or the first probe with the
    # scale below the floor
    if trace.scaler_longest_skip_run >= SCALER_RUN and trace.scaler_collapse_start >= 0:
        step = trace.scaler_collapse_start
    else:
        step = int(steps[low[0]]) if len(steps) else len(probes.step_loss)
    return Onset(
        step,
        ERROR,
        {
            "step": step,
            "compute_dtype": trace.compute_dtype,
            "scaler_updates": trace.scaler_updates,
            "skipped_steps": trace.scaler_skipped_total,
            "skipped_share": trace.scaler_skipped_total / trace.scaler_updates,
            "longest_skip_run": trace.scaler_longest_skip_run,
            "scale_first": trace.scaler_scale_first,
            "scale_last": trace.scaler_scale_last,
            "float32_module": module,
        },
    )


def onsets(probes: Probes) -> dict[str, Onset]:
    """The onset of every cause of this family that was found, by code."""
    found = {**_other_onsets(probes), UPDATE_RATIO_JUMP_CODE: update_jump_onset(probes)}
    return {code: o for code, o in found.items() if o is not None}


def peak_too_high(probes: Probes, ctx: Context) -> Onset | None:
    """The first update moved a layer by more than ``WARMUP_STEPS`` times its weights, and the
    learning-rate rule names the rate: a rate no warmup rescues, the first thing that went wrong
    (at the first probe)."""
    if not probes.layers or not probes.steps.size:
        return None
    first = [t.update_ratio[0] for t in probes.layers if t.update_ratio.size]
    if not first or not np.nanmax(first) > WARMUP_STEPS or not lr_too_high(probes, ctx):
        return None
    return Onset(int(probes.steps[0]), ERROR, {"first_update_ratio": float(np.nanmax(first))})


def _earlier(code: str, probes: Probes, ctx: Context) -> tuple[str, Onset] | None:
    """The cause that began strictly before ``code``'s (the earliest of this family, or a
    learning rate no warmup rescues), or None when ``code``'s began first."""
    all_ = onsets(probes)
    mine = all_.get(code)
    if mine is None:
        return None
    peak = peak_too_high(probes, ctx)
    if peak is not None:
        all_[LR_TOO_HIGH_CODE] = peak
    others = [(c, o) for c, o in all_.items() if c != code and o.step < mine.step]
    nan = probes.nan_source
    if nan is not None and nan.step <= mine.step:
        # the step whose loss or gradient was not finite: an inf gradient norm, a loss that
        # never came back, are that NaN's consequences (its finding names the operation)
        others.append(("nan-source", Onset(nan.step, ERROR, {})))
    return min(others, key=lambda co: co[1].step) if others else None


def _finding(
    rule: Rule,
    onset: Onset,
    probes: Probes,
    ctx: Context,
    title: str,
    why: str,
    fix: str,
    score: float,
) -> list[Finding]:
    """A cause at its onset's severity, or as information when another began first."""
    evidence = dict(onset.evidence)
    severity = onset.severity
    first = _earlier(rule.code, probes, ctx)
    if first is not None:
        code, other = first
        severity = NOTE
        evidence["began_after"] = code
        evidence["began_after_step"] = other.step
        title += f" (after {code} at step {other.step}, which came first)"
    return [rule.finding(severity, title, evidence=evidence, why=why, fix=fix, score=score)]


# --- the rules ---


def loss_spike(probes: Probes, ctx: Context) -> list[Finding]:
    """Loss spikes that recovered (or that the run ended too soon after to judge)."""
    spikes = [s for s in loss_spikes(probes) if not s.diverged]
    if not spikes:
        return []
    big = max(spikes, key=lambda s: s.size)
    evidence: dict[str, Any] = {
        "loss_spikes": len(spikes),
        "step": big.start,
        "loss_before": big.reference,
        "loss_peak": big.peak_value,
        "spike_size": big.size,
        "recovery_steps": (big.end - big.start) if big.end is not None else None,
    }
    grads = [g for g in grad_spikes(probes.stability) if big.start - GRAD_LEAD <= g.start]
    grad = next((g for g in grads if g.start <= big.start), None)
    if grad is not None and probes.stability is not None:
        evidence["grad_jump"] = grad.size
        evidence.update(spike_layer(probes.stability, grad.start) or {})
    back = (
        f"back to its level after {big.end - big.start} steps"
        if big.end is not None
        else "the run ended before it came back"
    )
    return [
        LOSS_SPIKE.finding(
            NOTE,
            f"{len(spikes)} loss spike(s) that recovered; the largest: from {big.reference:.4g} "
            f"to {big.peak_value:.4g} ({big.size:.3g}x) at step {big.start}, {back}",
            evidence=evidence,
            why="a hard or corrupted batch, or a step a little too large, throws the loss up for "
            "a few steps; the optimizer brings it back: harmless unless it recurs or grows",
            fix="nothing to do; if spikes recur, lower the peak learning rate or clip gradients",
            score=min(1.0, big.size / 10),
        )
    ]


def spike_divergence(probes: Probes, ctx: Context) -> list[Finding]:
    """A loss spike after which the loss never came back (or became NaN/inf)."""
    spike = next((s for s in loss_spikes(probes) if s.diverged), None)
    if spike is None:
        return []
    found = onsets(probes)
    first = min(found.items(), key=lambda co: co[1].step, default=None)
    evidence: dict[str, Any] = {
        "step": spike.start,
        "loss_before": spike.reference,
        "loss_peak": spike.peak_value,
        "spike_size": spike.size,
        "became_nonfinite": not spike.finite,
    }
    if first is not None:
        evidence["first_signal"] = first[0]
        evidence["first_signal_step"] = first[1].step
    peak = "NaN/inf" if not spike.finite else f"{spike.peak_value:.4g}"
    return [
        SPIKE_DIVERGENCE.finding(
            ERROR,
            f"the loss spiked at step {spike.start} from {spike.reference:.4g} to {peak} and "
            "never came back"
            + (f" (first sign: {first[0]} at step {first[1].step})" if first else ""),
            evidence=evidence,
            why="after this spike the run lost what it had learned: the weights were thrown to "
            "where the loss is high (or overflows) and training did not find its way back",
            fix="see the causes above: usually a lower peak learning rate, a warmup, gradient "
            "clipping, or the instability named first",
            score=1.0,
        )
    ]


def grad_norm_spike(probes: Probes, ctx: Context) -> list[Finding]:
    onset = grad_spike_onset(probes)
    if onset is None:
        return []
    e = onset.evidence
    layer = f", first in layer {e['layer']} ({e['layer_jump']:.3g}x)" if "layer" in e else ""
    return _finding(
        GRAD_NORM_SPIKE,
        onset,
        probes,
        ctx,
        f"the gradient norm jumped {e['grad_jump']:.3g}x at step {e['step']}{layer}; the loss "
        f"spiked at step {e['loss_spike_step']} and never recovered",
        why="one step with a gradient many times the usual size moves the weights many times "
        "as far: a bad batch, or a layer whose gradient blew up, throws the net off and the "
        "next gradients are larger still",
        fix=f"clip the gradient norm (torch.nn.utils.clip_grad_norm_ at about {e['clip_norm']:g}, "
        "twice the usual norm); check the batch at that step",
        score=1.0,
    )


def update_ratio_jump(probes: Probes, ctx: Context) -> list[Finding]:
    onset = update_jump_onset(probes)
    if onset is None:
        return []
    e = onset.evidence
    if e["first_update"] and str(ctx.optimizer.get("name", "")).lower().startswith("sgd"):
        # SGD's first step is no larger than its next ones (no fresh second moment to divide
        # by): a first update this large is the learning rate itself (lr-too-high)
        return []
    if e["first_update"]:
        what = (
            f"the very first update changed layer {e['layer']} by {e['update_ratio']:.3g} of its "
            f"norm"
        )
        why = (
            "a fresh optimizer has no history of the gradients: Adam's first steps move every "
            "weight by about the learning rate, which at the peak rate is a large share of "
            "small initial weights; without a warmup the net is thrown far from its start"
        )
        fix = "warm the learning rate up over the first steps (linear warmup), or lower its peak"
    else:
        what = (
            f"layer {e['layer']}'s update jumped to {e['update_ratio']:.3g} of its norm at step "
            f"{e['step']} ({e['update_jump']:.3g}x its usual size at that learning rate), its "
            "gradient not grown as much"
        )
        why = (
            "the step size of this layer grew while its gradient did not: the optimizer's state "
            "(a second moment that shrank) or the schedule makes its steps too large"
        )
        fix = "lower the peak learning rate (or this layer's)"
    after = []
    if "loss_spike_step" in e:
        after.append(
            f"the loss spiked at step {e['loss_spike_step']} ({e['loss_spike_size']:.3g}x)"
        )
    if "followed_by" in e:
        after.append(f"{e['followed_by']} followed at step {e['followed_by_step']}")
    return _finding(
        UPDATE_RATIO_JUMP,
        onset,
        probes,
        ctx,
        f"{what}; " + " and ".join(after),
        why=why,
        fix=fix,
        score=0.9,
    )


def attention_logit_growth(probes: Probes, ctx: Context) -> list[Finding]:
    onset = attention_onset(probes)
    if onset is None:
        return []
    e = onset.evidence
    return _finding(
        ATTENTION_LOGIT_GROWTH,
        onset,
        probes,
        ctx,
        f"the largest attention logit in {e['attention_site']} grew from "
        f"{e['attention_logit_first']:.3g} to {e['attention_logit_at']:.4g} by step {e['step']} "
        f"(at most {e['attention_logit_max']:.4g}); attention entropy "
        f"{e['attention_entropy_first']:.3g} -> {e['attention_entropy_at']:.3g} nats",
        why="queries and keys grew until their dot products are huge: the softmax is one-hot, "
        "its gradient vanishes for all but one key, and small weight changes flip which key wins "
        "(Wortsman et al. 2023: attention-logit growth, visible at small scale with a high "
        "learning rate)",
        fix="normalise queries and keys (qk-layernorm) before their dot products, or lower the "
        "learning rate",
        score=0.95,
    )


def output_logit_divergence(probes: Probes, ctx: Context) -> list[Finding]:
    onset = logit_onset(probes)
    if onset is None:
        return []
    e = onset.evidence
    return _finding(
        OUTPUT_LOGIT_DIVERGENCE,
        onset,
        probes,
        ctx,
        f"the output logits' log-sum-exp (log Z) drifted from {e['log_z_first']:.3g} to "
        f"{e['log_z_at']:.4g} by step {e['step']} (largest logit {e['max_logit']:.4g})",
        why="the softmax ignores a shift of all logits, so nothing in the loss holds their level: "
        "at a high learning rate they drift far from 0, the normaliser overflows or underflows "
        "and the loss becomes unstable (Wortsman et al. 2023: output-logit divergence)",
        fix="add a z-loss (1e-4 * log(Z)^2) to the loss, or weight decay on the output layer",
        score=0.9,
    )


def loss_scaler_collapse(probes: Probes, ctx: Context) -> list[Finding]:
    onset = scaler_onset(probes)
    if onset is None:
        return []
    e = onset.evidence
    return _finding(
        LOSS_SCALER_COLLAPSE,
        onset,
        probes,
        ctx,
        f"the loss scaler skipped {e['skipped_steps']} of {e['scaler_updates']} steps "
        f"({e['longest_skip_run']} in a row) and its scale fell from {e['scale_first']:.3g} to "
        f"{e['scale_last']:.3g} ({e['compute_dtype']})",
        why="a float16 GradScaler skips every step whose gradients hold an inf or a NaN and "
        "halves its scale; when they are non-finite whatever the scale (an overflow in the "
        "forward pass, an op beyond float16's range), it skips step after step: the weights "
        "stop changing while the scale falls towards 0",
        fix="run the op that overflows in float32 (or train in bfloat16, whose range is "
        "float32's); the nan-source finding, when present, names the op",
        score=1.0,
    )


# --- the changes the trials make ---


def _clip(f: Finding, ctx: Context) -> Change | None:
    norm = f.evidence.get("clip_norm")
    return ClipGradients(float(norm)) if norm else None


def _warmup_or_lower(f: Finding, ctx: Context) -> Change | None:
    if f.evidence.get("first_update") and not f.evidence.get("warmup_seen"):
        return Warmup(WARMUP_STEPS)
    lr = ctx.lr
    return LearningRate(lr / 3) if lr > 0 and math.isfinite(lr) else None


# the codes (onsets() refers to them before the records exist)
LR_TOO_HIGH_CODE = LR_TOO_HIGH.code
GRAD_NORM_SPIKE_CODE = "grad-norm-spike"
UPDATE_RATIO_JUMP_CODE = "update-ratio-jump"
ATTENTION_CODE = "attention-logit-growth"
LOGIT_CODE = "output-logit-divergence"
SCALER_CODE = "loss-scaler-collapse"

# the causes of this family (one onset each)
CAUSE_CODES = (
    GRAD_NORM_SPIKE_CODE,
    UPDATE_RATIO_JUMP_CODE,
    ATTENTION_CODE,
    LOGIT_CODE,
    SCALER_CODE,
)

# the generic causes and symptoms an instability of this family accounts for
_EXPLAINS = ("lr-too-high", "exploding-gradients")
_EXPLAINS_SYMPTOMS = ("oscillating-loss",)

_LABELS = {
    "loss_spikes": "loss spikes that recovered",
    "spike_size": "the spike's peak over the loss before it (spike size)",
    "loss_before": "loss before the spike (mean of the steps before)",
    "loss_peak": "highest loss of the spike",
    "recovery_steps": "steps until the loss was back to its level",
    "grad_jump": "the gradient norm's peak over its mean before (gradient jump)",
    "layer_jump": "that layer's largest gradient over its usual size",
    "layer_step": "step of that layer's largest gradient",
    "grad_norm_before": "usual gradient norm before the spike (median)",
    "grad_norm_peak": "gradient norm at the spike",
    "loss_spike_step": "step where the loss spike began",
    "loss_spike_size": "the loss spike's peak over the loss before it",
    "clip_norm": "suggested clipping threshold (gradient norm)",
    "update_ratio": "the update's size over the layer's weights (update ratio)",
    "update_jump": "that update over the layer's usual one at the same learning rate",
    "first_update": "on the very first update",
    "warmup_seen": "the learning rate rose over the first steps (warmup)",
    "attention_site": "the attention (module that called it)",
    "attention_logit_first": "largest attention logit at the first probe",
    "attention_logit_at": "largest attention logit when it passed the threshold",
    "attention_logit_max": "largest attention logit of the run",
    "attention_entropy_first": "attention entropy at the first probe (nats)",
    "attention_entropy_at": "attention entropy then (nats)",
    "log_z_first": "log-sum-exp of the output logits at the first probe (log Z)",
    "log_z_at": "log Z when it passed the threshold",
    "log_z_max": "largest size of log Z in the run",
    "max_logit": "largest output logit (absolute)",
    "compute_dtype": "number type of the forward pass (dtype)",
    "scaler_updates": "loss-scaler updates (steps tried)",
    "skipped_steps": "steps the loss scaler skipped",
    "skipped_share": "share of the steps skipped",
    "longest_skip_run": "most steps skipped in a row",
    "scale_first": "loss scale at the start",
    "scale_last": "loss scale at the end",
    "float32_module": "the layer to run in float32 (its outputs overflow float16's exp)",
    "followed_by": "the instability that followed",
    "followed_by_step": "step where that one began",
    "began_after": "the instability that began first",
    "began_after_step": "step where that one began",
    "became_nonfinite": "the loss became NaN or inf",
    "first_signal": "the first sign of instability",
    "first_signal_step": "step of that first sign",
}


def _labels(*keys: str) -> dict[str, str]:
    return {k: _LABELS[k] for k in keys}


_ORDER = ("began_after", "began_after_step")

LOSS_SPIKE = Rule(
    code="loss-spike",
    kind=INFO,
    tier=3,
    meaning="loss spikes that recovered (size, recovery time)",
    sentence=(
        "your loss jumped up {spike_size} times its level at step {step} and came back after "
        "{recovery_steps} steps: a harmless spike|your loss jumped up for a few steps and came "
        "back: a harmless spike"
    ),
    detect=loss_spike,
    plots=("loss",),
    labels=_labels(
        "loss_spikes",
        "spike_size",
        "loss_before",
        "loss_peak",
        "recovery_steps",
        "grad_jump",
        "layer_jump",
        "layer_step",
    ),
)

SPIKE_DIVERGENCE = Rule(
    code="spike-divergence",
    kind=SYMPTOM,
    tier=1,
    meaning="a loss spike after which the loss never came back",
    sentence=(
        "your loss spiked at step {step} and never came back down: training lost what it had "
        "learned there|your loss spiked and never came back down: training lost what it had "
        "learned there"
    ),
    detect=spike_divergence,
    subsumes=_EXPLAINS_SYMPTOMS,
    plots=("loss", "gradients"),
    labels=_labels(
        "loss_before",
        "loss_peak",
        "spike_size",
        "became_nonfinite",
        "first_signal",
        "first_signal_step",
    ),
)

GRAD_NORM_SPIKE = Rule(
    code=GRAD_NORM_SPIKE_CODE,
    kind=CAUSE,
    tier=1,
    meaning="a gradient-norm spike (and the layer it began in) set off a divergence",
    sentence=(
        "at step {step} your gradients jumped to {grad_jump} times their usual size, first in "
        "layer {layer}, and the loss never recovered from that step|at one step your gradients "
        "jumped far above their usual size and the loss never recovered from that step"
    ),
    detect=grad_norm_spike,
    change=_clip,
    fix="clip the gradient norm",
    refutable=True,
    explains_if_severe=_EXPLAINS,
    plots=("loss", "gradients"),
    labels=_labels(
        "grad_norm_before",
        "grad_norm_peak",
        "grad_jump",
        "layer_jump",
        "layer_step",
        "loss_spike_step",
        "clip_norm",
        *_ORDER,
    ),
)

UPDATE_RATIO_JUMP = Rule(
    code=UPDATE_RATIO_JUMP_CODE,
    kind=CAUSE,
    tier=1,
    meaning="the layer whose update jumped first, before a loss spike",
    sentence=(
        "the update of layer {layer} jumped to {update_ratio} of its weights at step {step}, "
        "before anything else went wrong, and training became unstable after it|the update of "
        "one layer jumped far above its usual size before anything else went wrong, and training "
        "became unstable after it"
    ),
    detect=update_ratio_jump,
    change=_warmup_or_lower,
    fix="learning-rate warmup, or a lower peak rate",
    refutable=True,
    explains_if_severe=_EXPLAINS,
    plots=("gradients", "loss"),
    terms=("update-to-weight ratio",),
    labels=_labels(
        "update_ratio",
        "update_jump",
        "first_update",
        "warmup_seen",
        "loss_spike_step",
        "loss_spike_size",
        "followed_by",
        "followed_by_step",
        *_ORDER,
    ),
)

ATTENTION_LOGIT_GROWTH = Rule(
    code=ATTENTION_CODE,
    kind=CAUSE,
    tier=1,
    meaning="attention logits grew until the softmax saturated",
    sentence=(
        "the attention logits of {attention_site} grew to {attention_logit_at}: its softmax "
        "picks one key and stops learning|the attention logits grew until the softmax picks one "
        "key and stops learning"
    ),
    detect=attention_logit_growth,
    change=lambda f, ctx: QKNorm(),
    fix="qk-layernorm",
    refutable=True,
    explains_if_severe=_EXPLAINS,
    plots=("loss",),
    labels=_labels(
        "attention_site",
        "attention_logit_first",
        "attention_logit_at",
        "attention_logit_max",
        "attention_entropy_first",
        "attention_entropy_at",
        "loss_spike_step",
        *_ORDER,
    ),
)

OUTPUT_LOGIT_DIVERGENCE = Rule(
    code=LOGIT_CODE,
    kind=CAUSE,
    tier=1,
    meaning="the output logits drifted far from 0 (log Z)",
    sentence=(
        "your output logits drifted until their log-sum-exp reached {log_z_at}: nothing in the "
        "loss holds their level, and the softmax becomes unstable|your output logits drifted far "
        "from 0: nothing in the loss holds their level, and the softmax becomes unstable"
    ),
    detect=output_logit_divergence,
    change=lambda f, ctx: ZLoss(Z_LOSS_WEIGHT),
    fix="z-loss",
    refutable=True,
    explains_if_severe=_EXPLAINS,
    plots=("loss",),
    labels=_labels("log_z_first", "log_z_at", "log_z_max", "max_logit", "loss_spike_step", *_ORDER),
)

LOSS_SCALER_COLLAPSE = Rule(
    code=SCALER_CODE,
    kind=CAUSE,
    tier=1,
    meaning="a float16 loss scaler skips step after step, its scale falling",
    sentence=(
        "your float16 loss scaler skipped {skipped_steps} steps ({longest_skip_run} in a row) "
        "and its scale fell to {scale_last}: the weights stopped changing|your float16 loss "
        "scaler skips step after step: the weights stopped changing"
    ),
    detect=loss_scaler_collapse,
    change=lambda f, ctx: Float32(str(f.evidence.get("float32_module", ""))),
    fix="float32 for the op that overflows (or bfloat16)",
    refutable=True,
    explains_if_severe=(*_EXPLAINS, "lr-too-low"),
    plots=("loss",),
    labels=_labels(
        "compute_dtype",
        "scaler_updates",
        "skipped_steps",
        "skipped_share",
        "longest_skip_run",
        "scale_first",
        "scale_last",
        "float32_module",
        *_ORDER,
    ),
)

RULES = (
    LOSS_SCALER_COLLAPSE,
    UPDATE_RATIO_JUMP,
    GRAD_NORM_SPIKE,
    ATTENTION_LOGIT_GROWTH,
    OUTPUT_LOGIT_DIVERGENCE,
    SPIKE_DIVERGENCE,
    LOSS_SPIKE,
)
