"""Where a NaN or an inf came from, and whether the run grew before it.

A loss that becomes NaN is not always a learning rate too high. A softmax over a row whose every
entry is masked (an all-padding sequence in ``key_padding_mask``), a ``log`` of 0 in a
hand-written loss, a division by a standard deviation of 0, a float16 overflow: each makes a NaN
at the first step that meets it, whatever the step size. The PyTorch backend replays the
failing step on a copy and names the operation that first made a NaN or an inf out of finite
numbers (:class:`~nndoctor.doctor.schema.NanSource`); :func:`growth_before_nan` says whether the
loss or the weights grew before it, which is what a learning rate too high does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nndoctor.doctor.finding import CAUSE, ERROR, WARNING, Finding
from nndoctor.doctor.rule import Rule
from nndoctor.doctor.schema import (
    BACKWARD,
    DIVISION_BY_ZERO,
    EXP_OVERFLOW,
    IN_LOSS,
    INVALID,
    LOG_OF_NEGATIVE,
    LOG_OF_ZERO,
    MASKED_SOFTMAX,
    NON_FINITE_DATA,
    NON_FINITE_WEIGHTS,
    OVERFLOW,
    SQRT_OF_NEGATIVE,
    Context,
    NanSource,
    Probes,
)

# before the first non-finite loss, the run "grew" when the mean of its last finite step losses
# rose above the mean of its first ones by this share of the first's size (the rise lr-too-high
# calls growth: 1.5 times) ...
NAN_LOSS_ROSE = 0.5
# ... or any finite step loss rose this far above it (a spike: 10 times) ...
NAN_LOSS_SPIKE = 9.0
# ... or the weights' norm grew this many times from the start (as lr-too-high's "blown")
NAN_WEIGHTS_GREW = 10.0
# step losses averaged at each end: at most this many, and at most a quarter of them; no
# fewer than LOSS_WINDOW_MIN (12 finite steps at least: else only a spike, a climb or the
# weights tell)
LOSS_WINDOW = 10
LOSS_WINDOW_MIN = 3
# ... or the last CLIMB_STEPS finite losses (3 at least) rose at every step, doubling overall
CLIMB_STEPS = 4
NAN_LOSS_CLIMB = 1.0

# kinds a growing run can make (a logit driven to where a probability is exactly 0, a number
# beyond the dtype, an update that overflowed): after growth they are the learning rate's
GROWTH_KINDS = frozenset(
    {LOG_OF_ZERO, EXP_OVERFLOW, OVERFLOW, INVALID, NON_FINITE_WEIGHTS, BACKWARD, IN_LOSS}
)


def relative_rise(first: float, value: float) -> float:
    """How far ``value`` rose above ``first``, in units of ``|first|`` (a difference: a
    negative loss, an NLL of probabilities, rises towards 0); inf when ``first`` is 0 and
    ``value`` above it."""
    if first == 0:
        return math.inf if value > 0 else 0.0
    return (value - first) / abs(first)


def growth_before_nan(probes: Probes) -> dict[str, Any]:
    """What grew before the first non-finite loss.

    Returns
    -------
    dict
        ``loss_rise``: how far the mean of the last finite step losses before it rose above
        the mean of the first ones (:func:`relative_rise`; NaN with fewer than two);
        ``loss_spike``: the same for the largest finite step loss; ``weight_growth``: the
        weights' norm at the failing step over the start (the backend's replay), else at the
        last probe before it over the first probe; ``grew``: any of them beyond
        ``NAN_LOSS_ROSE``, ``NAN_LOSS_SPIKE``, ``NAN_WEIGHTS_GREW``.
    """
    losses = np.asarray(probes.step_loss, dtype=np.float64)
    stop = probes.diverged.get("step", len(losses)) if probes.diverged else len(losses)
    before = losses[: int(stop)]
    finite = before[np.isfinite(before)]
    first = top = rise = spike = math.nan
    climbing = False
    if finite.size >= 2:
        w = min(LOSS_WINDOW, finite.size // 4)
        start, top = float(np.mean(finite[: max(w, 1)])), float(finite.max())
        # one minibatch's loss against another's is noise: a rise of the means needs windows
        # of a few steps each
        if w >= LOSS_WINDOW_MIN:
            rise = relative_rise(start, float(np.mean(finite[-w:])))
        spike = relative_rise(start, top)
        first = float(finite[0])
        last = finite[-CLIMB_STEPS:]
        climbing = bool(
            len(last) >= CLIMB_STEPS - 1
            and np.all(np.diff(last) > 0)
            and relative_rise(float(last[0]), float(last[-1])) > NAN_LOSS_CLIMB
        )
    source = probes.nan_source
    growth = source.weight_growth if source is not None else math.nan
    if not math.isfinite(growth):
        growth = _probe_weight_growth(probes, int(stop))
    grew = bool(
        rise > NAN_LOSS_ROSE or spike > NAN_LOSS_SPIKE or climbing or growth > NAN_WEIGHTS_GREW
    )
    return {
        "loss_first": first,
        "loss_max": top,
        "loss_rise": rise,
        "loss_spike": spike,
        "climbing": climbing,
        "weight_growth": growth,
        "grew": grew,
    }


def growth_words(growth: dict[str, Any]) -> str:
    """What grew, in words: ``"the weights grew 40-fold"``, ``"the loss rose from 1 to 80"``."""
    parts = []
    if growth["weight_growth"] > NAN_WEIGHTS_GREW:
        parts.append(f"the weights grew {growth['weight_growth']:.3g}-fold")
    if (
        growth["loss_rise"] > NAN_LOSS_ROSE
        or growth["loss_spike"] > NAN_LOSS_SPIKE
        or growth["climbing"]
    ):
        parts.append(f"the loss rose from {growth['loss_first']:.4g} to {growth['loss_max']:.4g}")
    return " and ".join(parts)


def _probe_weight_growth(probes: Probes, stop: int) -> float:
    """Largest ratio over the layers of the weights' norm at the last probe before ``stop``
    (finite) to the first probe's."""
    ratios = []
    for t in probes.layers:
        norms = np.asarray(t.weight_norm, dtype=np.float64)[: int(np.sum(probes.steps < stop))]
        norms = norms[np.isfinite(norms)]
        if norms.size and norms[0] > 0:
            ratios.append(float(norms[-1] / norms[0]))
    return max(ratios, default=math.nan)


def where(source: NanSource) -> str:
    if source.phase == "input":
        what = f"the model's {source.module}" if source.module else "the model's inputs"
        return f"the computation of {what}, outside the model"
    if source.module == "loss":
        return "the loss"
    if source.module == "":
        kind = f" ({source.module_type})" if source.module_type else ""
        return f"the model's own forward{kind}"
    kind = f" ({source.module_type})" if source.module_type else ""
    return f"module {source.module}{kind}"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def describe(source: NanSource) -> tuple[str, str, str]:
    """``(what, title, fix)`` of a located source: what it is in a few words, the finding's
    title (with the numbers), the fix in words."""
    v, op, place, step = source.values, source.op, where(source), source.step
    at = f" (first at index {v['first_index']})" if v.get("first_index") else ""
    kind = source.kind
    if kind == MASKED_SOFTMAX:
        mask = f" of {v['mask']}" if v.get("mask") else ""
        rows = v.get("batch_rows") or v.get("first_row")
        return (
            "a softmax over a fully masked row",
            f"the NaN at step {step} comes from a softmax over fully masked rows: {op} in "
            f"{place} got {v.get('masked_rows')} row(s){mask} whose every entry is masked "
            f"(batch row(s) {rows}), and a softmax of nothing but -inf is 0/0",
            "give every row at least one position to attend to: drop all-padding sequences "
            "from the batch, or leave one token of them unmasked (the first), or zero the "
            "output of fully masked rows afterwards (torch.nan_to_num)",
        )
    if kind == LOG_OF_ZERO:
        return (
            "a log of 0",
            f"the first non-finite value at step {step} is a log of 0: {op} in {place} got "
            f"{v.get('zeros')} zero(s){at}, and log(0) = -inf",
            "clamp before the log (torch.log(p.clamp_min(1e-7))) or, better, compute it from "
            "the logits: F.logsigmoid, F.log_softmax, F.binary_cross_entropy_with_logits "
            "instead of log(sigmoid(z)) or log(softmax(z))",
        )
    if kind == LOG_OF_NEGATIVE:
        return (
            "a log of a negative number",
            f"the first NaN at step {step} is a log of a negative number: {op} in {place} got "
            f"{v.get('negatives')} negative input(s){at}, down to {_fmt(v.get('min_input'))}",
            "take the log only of positive numbers: check what feeds it (a difference, a raw "
            "output) and make it positive (softplus, clamp_min)",
        )
    if kind == DIVISION_BY_ZERO:
        both = v.get("zero_over_zero")
        nan = f", {both} of them 0/0" if both else ""
        return (
            "a division by 0",
            f"the first non-finite value at step {step} is a division by 0: {op} in {place} "
            f"divided by {v.get('zero_divisors')} zero(s){at}{nan}",
            "add a small eps to the divisor (x / (d + 1e-8)) or guard it (torch.where(d == 0, "
            "...)); a hand-written standardisation of a constant row divides by a std of 0",
        )
    if kind == EXP_OVERFLOW:
        return (
            f"an exp overflow in {source.dtype}",
            f"the first non-finite value at step {step} is an exp overflow: {op} in {place} got "
            f"{_fmt(v.get('max_input', math.nan))}, beyond {_fmt(v.get('limit'))}, the largest "
            f"exponent {source.dtype} holds",
            "subtract the maximum before the exp (torch.logsumexp and softmax do), clamp its "
            "input, or compute it in float32",
        )
    if kind == OVERFLOW:
        half = source.dtype in ("float16", "bfloat16")
        return (
            f"an overflow of {source.dtype}",
            f"the first non-finite value at step {step} is a {source.dtype} overflow: {op} in "
            f"{place} made inf out of finite numbers (largest input "
            f"{_fmt(v.get('max_abs_input'))}; {source.dtype} holds at most "
            f"{_fmt(v.get('dtype_max'))})",
            (
                f"run {op} in float32 (keep {place} out of autocast or cast it with .float()), "
                "or scale its inputs down (normalise the data, a LayerNorm before it)"
                if half
                else "scale the inputs or the weights down: the values exceed the dtype's range"
            ),
        )
    if kind == SQRT_OF_NEGATIVE:
        return (
            "a square root of a negative number",
            f"the first NaN at step {step} is a square root of a negative number: {op} in "
            f"{place} got {v.get('negatives')} negative input(s){at}",
            "clamp before the square root (x.clamp_min(0)); round-off makes a variance or a "
            "squared distance slightly negative",
        )
    if kind == NON_FINITE_DATA:
        return (
            "NaN or inf in the data",
            f"the batch of step {step} already holds {v.get('count')} NaN or inf value(s) in "
            f"its {v.get('argument')}{at}",
            "clean the data: drop or impute the rows with NaN or inf (torch.nan_to_num, "
            "np.isfinite to find them) and check the loader's transforms",
        )
    if kind == NON_FINITE_WEIGHTS:
        how = (
            ", with finite gradients: the update itself overflowed"
            if v.get("update_overflowed")
            else ""
        )
        return (
            "weights made non-finite by an update",
            f"the weights {v.get('parameter')} were already NaN or inf at step {step}: the "
            f"update of step {step - 1} made them so{how}",
            "run nndoctor.diagnose on the same setup to replay the step before; clip the "
            "gradients (torch.nn.utils.clip_grad_norm_) and look for a NaN gradient "
            "(torch.autograd.detect_anomaly)",
        )
    if kind == BACKWARD:
        zeros = v.get("saved_zeros")
        infinite = (
            f" ({zeros} zero(s) in what it saved: its derivative at 0 is infinite)" if zeros else ""
        )
        return (
            "a gradient that is not finite",
            f"the loss at step {step} is finite but a gradient is not: {op} in {place} passes "
            f"on {v.get('count')} non-finite gradient(s){infinite}",
            "add an eps inside the square root or the norm (torch.sqrt(x + 1e-12)), or mask "
            "the zero distances before it: the derivative of sqrt, of a norm, of x ** 0.5 at "
            "0 is infinite",
        )
    if kind == IN_LOSS:
        return (
            "the loss function",
            f"the model's output at step {step} is finite (largest |output| "
            f"{_fmt(v.get('max_abs_output'))}) but the loss is not: the loss function made "
            "the NaN or inf",
            "check the loss for a log of 0 or a division by 0; pass it to watch(loss=...) as "
            "a module, or run nndoctor.diagnose, to have the operation named",
        )
    return (
        f"{op} making a NaN",
        f"the first NaN at step {step} comes from {op} in {place}, which made a NaN out of "
        "numbers holding none",
        f"check the inputs of {op} in {place}",
    )


def short(source: NanSource) -> str:
    """A located source in a few words: ``"a log of 0 (log in the loss)"``."""
    what = describe(source)[0]
    if source.kind == IN_LOSS:
        return what
    return f"{what} ({source.op} in {where(source)})" if source.op else f"{what} ({where(source)})"


def nan_source(probes: Probes, ctx: Context) -> list[Finding]:
    source = probes.nan_source
    if source is None or not source.located:
        return []
    growth = growth_before_nan(probes)
    if growth["grew"] and source.kind in GROWTH_KINDS:
        return []  # the run grew into it: lr-too-high says so, with where it overflowed
    what, title, fix = describe(source)
    evidence = {
        "kind": source.kind,
        "step": source.step,
        "operation": source.op,
        "module": source.module,
        "module_type": source.module_type,
        "dtype": source.dtype,
        "what": what,
        "where": where(source),
        "loss_rise": growth["loss_rise"],
        "weight_growth": growth["weight_growth"],
    }
    evidence.update(source.values)
    return [
        NAN_SOURCE.finding(
            WARNING if source.kind == NON_FINITE_WEIGHTS else ERROR,
            title,
            evidence=evidence,
            why=(
                f"{what} makes a NaN or an inf whatever the step size; "
                + (
                    f"{growth_words(growth)} before it, but a lower learning rate would meet it too"
                    if growth["grew"]
                    else "neither the loss nor the weights grew before it, so the learning rate "
                    "is not the cause and a lower one would meet it too"
                )
            ),
            fix=fix,
            score=1.0,
        )
    ]


# --- the records ---

NAN_SOURCE = Rule(
    code="nan-source",
    kind=CAUSE,
    tier=0,
    meaning="the operation that first made a NaN or inf: log of 0, division by 0, a fully "
    "masked softmax row, a float16 overflow",
    sentence=(
        "the loss became NaN because of {what} in {where}; a lower learning rate would meet it "
        "too|the loss became NaN because of one operation of your model or loss; a lower "
        "learning rate would meet it too"
    ),
    detect=nan_source,
    fix="fix the operation named (mask, eps, clamp, float32)",
    explains=(
        "diverged",
        "spike-divergence",
        "exploding-gradients",
        "vanishing-gradients",
        "saturated-units",
        "dead-units",
        "symmetric-units",
        "lr-too-low",
        "loss-at-baseline",
        "loss-plateau",
        "output-collapse",
        "cannot-overfit",
        "loss-at-init-high",
        "not-using-inputs",
        "insufficient-capacity",
        "no-signal",
    ),
    plots=("loss",),
    labels={
        "kind": "what made it (kind)",
        "operation": "the operation that made it",
        "module": "module it ran in",
        "module_type": "the module's class",
        "dtype": "number type of its output (dtype)",
        "what": "what happened",
        "where": "where",
        "loss_rise": "rise of the loss before it, in units of its first value",
        "weight_growth": "growth of the weights' norm before it",
        "zeros": "zeros among its inputs",
        "first_index": "index of the first bad input",
        "count": "how many",
        "of": "out of",
        "nan": "of them NaN",
        "negatives": "negative inputs",
        "min_input": "smallest input",
        "zero_divisors": "divisors equal to 0",
        "zero_over_zero": "0 divided by 0",
        "masked_rows": "rows masked whole",
        "rows": "rows in all",
        "first_row": "index of the first row masked whole",
        "batch_rows": "batch rows masked whole",
        "row_length": "entries per row",
        "mask": "the mask",
        "max_input": "largest input",
        "limit": "largest input it can take",
        "dtype_max": "largest number of the dtype",
        "max_abs_input": "largest input in size",
        "then": "the operation where a NaN appeared next",
        "inf_inputs": "inputs held an inf",
        "argument": "the argument",
        "parameter": "the parameter",
        "node": "the backward step (autograd node)",
        "saved": "what the node kept from the forward pass",
        "saved_zeros": "zeros in it",
        "update_overflowed": "the update overflowed",
        "max_abs_output": "largest output in size",
    },
)

RULES = (NAN_SOURCE,)
