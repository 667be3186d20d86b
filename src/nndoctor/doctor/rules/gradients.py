"""Gradients and the learning rate: flow through depth, size of updates, correctness."""

from __future__ import annotations

import math

import numpy as np

from nndoctor.doctor.changes import Change, LearningRate, ReplaceActivations
from nndoctor.doctor.finding import CAUSE, ERROR, WARNING, Finding
from nndoctor.doctor.rule import Rule
from nndoctor.doctor.rules.common import improvement, nanmedian, reinit, rms, stuck
from nndoctor.doctor.rules.numerics import growth_before_nan, growth_words, relative_rise, short
from nndoctor.doctor.rules.units import DEAD_WARNING, KILLED_LR_CUT, killed_early
from nndoctor.doctor.schema import Context, Probes

# first-layer RMS gradient over last-layer RMS gradient (median over probes): warning, error
VANISHING_WARNING = 1e-3
VANISHING_ERROR = 1e-5
# a later hidden layer's RMS pre-activation at init below this share of the first's, in a
# net that got stuck: weights too small (healthy Xavier/He nets of the catalog and the three
# held-out sets: at least 0.74; N(0, 0.05) tanh nets of depth 5-6: below 0.01)
VANISHING_FORWARD = 0.05
# growth of the gradient (or weight) norm from the first probe to its maximum
EXPLODING_GROWTH = 1e4
# a gradient below this share of its weights' norm is about nothing: growth is not counted
# from it (a healthy GAN's generator, against a confident discriminator, starts at 1e-12)
FELT_GRADIENT = 1e-8
# gradient norm over weight norm of a layer before any update (healthy inits: below about 3)
EXPLODING_AT_INIT = 1e3
# ... blamed on the init only when a later layer's RMS pre-activation is this many times the
# first layer's (Xavier/He inits: at most 3 over 60 nets of depth 1-11, see docs/findings.md)
EXPLODING_FORWARD = 10.0
# median last-layer gradient norm over weight norm below which updates are small because the
# gradient is, not the learning rate
LR_LOW_MIN_GRAD = 1e-3
# weights grown this many times while the loss barely moved: steps too large
LR_HIGH_WEIGHT_GROWTH = 10.0
# median update / weight norm ratio per step; healthy training sits near 1e-3
LR_LOW_UPDATE = 1e-5
LR_LOW_SLOW_UPDATE = 1e-4
# ... or no layer's weights changed by more than this share of their norm over the whole run
LR_LOW_TOTAL_MOVE = 0.1
LR_HIGH_UPDATE = 0.3
# the suggested learning rates aim the per-step update/weight ratio at these: the healthy
# rule of thumb (1e-3) from below, its upper end (1e-2) from above so that the lowered rate
# still trains within the budget
HEALTHY_UPDATE = 1e-3
LR_HIGH_TARGET_UPDATE = 1e-2
# a run whose loss fell by less than this share of its first epoch "barely moved"
BARELY_MOVED = 0.1
# epoch loss rising above this multiple of its first value: training made things worse
LOSS_GREW = 1.5
# ... or spiking above this multiple at any epoch
LOSS_SPIKE = 10.0


# a first learning rate to try when the given one is 0 (or far outside USUAL_LR, with no
# better guess): the optimisers' usual defaults
DEFAULT_LR = {"Adam": 1e-3}
DEFAULT_LR_OTHER = 1e-2
# learning rates outside this range are almost never what a network needs: a suggestion
# beyond it (a rate of 1e12 cut a thousandfold is still 1e9) is replaced by one inside it
USUAL_LR = (1e-6, 1.0)


def usual_lr(suggested: float, implied: float, optimizer: str) -> tuple[float, str]:
    """``suggested`` and no words when it lies in :data:`USUAL_LR`; else, with why in words,
    ``implied`` (the rate whose update-to-weight ratio would be healthy, taking the update to
    scale with the rate, as it does in a first SGD or Adam step) to one digit and clamped
    into the range, or the optimiser's usual default where that is unknown (the update was
    NaN, inf or 0)."""
    lo, hi = USUAL_LR
    if lo <= suggested <= hi:
        return suggested, ""
    outside = (
        f"a power-of-ten step from your rate gives {suggested:g}, outside the usual range "
        f"{lo:g} to {hi:g}"
    )
    if implied > 0 and math.isfinite(implied):
        rate = min(max(float(f"{implied:.0e}"), lo), hi)
        return rate, f"{outside}, and {rate:g} is the rate that update ratio implies"
    rate = DEFAULT_LR.get(optimizer, DEFAULT_LR_OTHER)
    return rate, f"{outside}, and {rate:g} is {optimizer}'s usual starting rate"


def lr_factor(excess: float) -> float:
    """The power of ten, 10 to 1000, closest above ``excess`` (how many times too large or too
    small the per-step update is); 10 when unknown or below 10."""
    if not (excess > 0 and math.isfinite(excess)):
        return 10.0
    return 10.0 ** min(max(math.ceil(math.log10(excess)), 1), 3)


def _layer_rms(probes: Probes) -> list[np.ndarray]:
    return [rms(t.grad_norm, t.in_features * t.out_features) for t in probes.layers]


def forward_shrink(probes: Probes) -> float:
    """Smallest RMS pre-activation of a later hidden layer over the first one's, before any
    update (NaN with fewer than two hidden layers, or when a layer's output is exactly 0:
    that is dead or zero-initialised units, not shrinking)."""
    z = [t.z_rms[0] for t in probes.layers[:-1] if t.z_rms.size]
    if len(z) < 2 or not min(z) > 0:
        return math.nan
    return float(min(z[1:]) / z[0])


def _first_to_last(probes: Probes, ctx: Context) -> tuple[float, int, float, float]:
    """The smallest ratio of a first layer's RMS gradient to a last layer's, over the layers
    of one kind (convolutions apart from the rest), with the probe index and both RMS values
    (NaN and -1 where no kind has two layers with a gradient). A convolution's weight is used
    at every position of its feature map and its gradient sums over them, so per weight it is
    larger than a Linear layer's by about the map's size: a decoder's Linear projection is not
    a vanishing first layer beside its last convolution."""
    conv = {s.name: s.conv for s in ctx.layers if s.kind == "dense"}
    g = _layer_rms(probes)
    best = (math.nan, -1, math.nan, math.nan)
    for kind in (False, True):
        same = [x for t, x in zip(probes.layers, g, strict=True) if conv.get(t.name, False) == kind]
        if len(same) < 2:
            continue
        first, last = same[0], same[-1]
        # judged at the first probe where the last layer has a gradient: once the output has
        # collapsed to a constant every gradient is small, which says nothing about depth
        ok = np.flatnonzero((first > 0) & (last > 0) & np.isfinite(first) & np.isfinite(last))
        if ok.size and not first[ok[0]] / last[ok[0]] >= best[0]:
            best = (float(first[ok[0]] / last[ok[0]]), int(ok[0]), first[ok[0]], last[ok[0]])
    return best


def vanishing_gradients(probes: Probes, ctx: Context) -> list[Finding]:
    if len(probes.layers) < 2:
        return []
    ratio, at, first, last = _first_to_last(probes, ctx)
    shrink = forward_shrink(probes)
    depth = len(probes.layers)
    evidence = {
        "first_to_last_rms_ratio": ratio,
        "forward_shrink_at_init": shrink,
        "depth": depth,
    }
    if ratio < VANISHING_WARNING:
        return [
            VANISHING_GRADIENTS.finding(
                ERROR if ratio < VANISHING_ERROR else WARNING,
                f"first-layer gradients are {ratio:.1e} times the last layer's",
                evidence={
                    **evidence,
                    "small_init": False,
                    "step": int(probes.steps[at]),
                    "first_layer_rms_grad": float(first),
                    "last_layer_rms_grad": float(last),
                },
                why="each sigmoid/tanh layer multiplies the backward signal by its derivative "
                "(at most 0.25 for sigmoid); through many layers the early layers get almost "
                "no gradient and stay near their initial values",
                fix="use ReLU hidden activations with He initialisation, fewer layers, or "
                "normalisation between layers",
                score=min(1.0, -math.log10(max(ratio, 1e-12)) / 8),
            )
        ]
    # weights drawn too small shrink the signal at every layer, forward and backward alike:
    # every layer's gradient is tiny, so the first-to-last ratio stays near 1
    if not (shrink < VANISHING_FORWARD and stuck(probes, ctx)):
        return []
    per_layer = shrink ** (1.0 / (depth - 2))
    return [
        VANISHING_GRADIENTS.finding(
            ERROR,
            f"at initialisation each layer scales the signal by about {per_layer:.2g}: a later "
            f"hidden layer's pre-activations are only {shrink:.1e} times the first's",
            evidence={**evidence, "small_init": True},
            why="weights drawn too small for their fan-in scale the signal down at every "
            "layer, forward and backward alike: the output hardly depends on the input and "
            "every layer's gradient, a product of those factors, is tiny, so the net sits at "
            "the constant prediction",
            fix="initialise with Xavier/Glorot scaling (variance 1/fan_in; He, 2/fan_in, for "
            "ReLU) instead of a fixed small standard deviation",
            score=min(1.0, -math.log10(max(shrink, 1e-12)) / 8),
        )
    ]


def initial_gradient_ratio(probes: Probes) -> float:
    """Largest gradient-to-weight norm ratio over the layers at the first probe (before any
    update)."""
    ratios = [
        t.grad_norm[0] / t.weight_norm[0]
        for t in probes.layers
        if t.grad_norm.size and t.weight_norm[0] > 0 and np.isfinite(t.grad_norm[0])
    ]
    return max(ratios, default=math.nan)


def _felt_from(probes: Probes) -> int:
    """The first probe at which some layer's gradient is at least :data:`FELT_GRADIENT` of its
    weights (0 when none is). A gradient that starts at about nothing, a loss saturated at
    initialisation (a GAN's generator against a confident discriminator: 1e-12 of its weights),
    grows from there without exploding, so the growth counts from this probe."""
    m = len(probes.layers[0].grad_norm) if probes.layers else 0
    for i in range(m):
        if any(
            t.weight_norm[i] > 0 and t.grad_norm[i] >= FELT_GRADIENT * t.weight_norm[i]
            for t in probes.layers
        ):
            return i
    return 0


def forward_growth(probes: Probes) -> float:
    """Largest RMS pre-activation of a later layer over the first layer's, before any update.

    A variance-preserving init (Xavier, He) keeps this within a few-fold at any depth; an init
    whose layers multiply the signal makes it grow geometrically with depth.
    """
    z = [t.z_rms[0] for t in probes.layers if t.z_rms.size]
    if len(z) < 2 or not z[0] > 0:
        return math.nan
    return float(max(z[1:]) / z[0])


def exploding_init(probes: Probes) -> bool:
    """Gradients huge before the first update *because* the layers amplify the signal.

    A huge initial gradient with activations of sane size comes from the loss's scale (targets
    in the thousands, a sum over a large batch), which the learning rate or the data must
    absorb; it is not the initialisation's fault.
    """
    return bool(
        initial_gradient_ratio(probes) > EXPLODING_AT_INIT
        and forward_growth(probes) > EXPLODING_FORWARD
    )


def exploding_gradients(probes: Probes, ctx: Context) -> list[Finding]:
    g = _layer_rms(probes)
    if not g or not g[0].size:
        return []
    total = np.sqrt(np.sum([x**2 for x in g], axis=0))
    start = _felt_from(probes)
    later = total[start + 1 :][np.isfinite(total[start + 1 :])]
    growth = float(later.max() / total[start]) if later.size and total[start] > 0 else math.nan
    at_init = initial_gradient_ratio(probes)
    w0 = np.array([t.weight_norm[0] for t in probes.layers])
    w1 = np.array([t.W_final.size and np.linalg.norm(t.W_final) for t in probes.layers])
    weight_growth = float(np.max(w1[w0 > 0] / w0[w0 > 0])) if (w0 > 0).any() else math.nan
    grew = growth > EXPLODING_GROWTH or weight_growth > EXPLODING_GROWTH
    born = exploding_init(probes)
    if not (grew or born):
        return []
    if born:
        title = f"at initialisation the gradients are {at_init:.1e} times the weights' size"
    elif growth > EXPLODING_GROWTH:
        title = f"the gradient norm grew {growth:.1e}-fold during training"
    else:
        title = f"the weights grew {weight_growth:.1e}-fold during training"
    return [
        EXPLODING_GRADIENTS.finding(
            ERROR if (born or probes.diverged is not None) else WARNING,
            title,
            evidence={
                "initial_grad_to_weight": at_init,
                "forward_growth_at_init": forward_growth(probes),
                "gradient_growth": growth,
                "weight_growth": weight_growth,
            },
            why="large gradients make large updates, which push the weights to where the "
            "gradients are larger still; with weights drawn too large, each layer multiplies "
            "the signal forward and backward until it overflows",
            fix="initialise with Xavier/He scaling (variance 1/fan_in, 2/fan_in for ReLU), "
            "lower the learning rate, or clip gradients",
            score=1.0 if born else 0.6,
        )
    ]


def _update_ratios(probes: Probes) -> np.ndarray:
    return (
        np.concatenate([t.update_ratio for t in probes.layers]) if probes.layers else np.array([])
    )


def _killed_units(probes: Probes) -> tuple[str, float] | None:
    """(layer, dead share at the end) of the ReLU layer most killed during training: below
    the dead-units warning share at the first probe, at or above it at the end."""
    killed = [
        (t.name, float(np.mean(t.dead_units)))
        for t in probes.layers
        if t.frac_dead.size
        and t.frac_dead[0] < DEAD_WARNING
        and np.mean(t.dead_units) >= DEAD_WARNING
    ]
    return max(killed, key=lambda k: k[1], default=None)


def lr_too_high(probes: Probes, ctx: Context) -> list[Finding]:
    # no probe means the loss was non-finite before the first update: not the step size
    if not probes.layers or not probes.steps.size:
        return []
    # the first probes with nonzero weights: later ones may be after units died
    early = np.concatenate([t.update_ratio[:3] for t in probes.layers])
    early_update = float(np.nanmax(early)) if np.isfinite(early).any() else math.nan
    # the first step's ratio sizes the cut: later ones are inflated by the blow-up itself
    first = np.array([t.update_ratio[0] for t in probes.layers if t.update_ratio.size])
    first_update = float(np.nanmax(first)) if np.isfinite(first).any() else math.nan
    suggested = ctx.lr / lr_factor(first_update / LR_HIGH_TARGET_UPDATE)
    curve = probes.finite_epoch_loss
    # where the loss started: the first epoch's mean, or, in a loop without epochs, its first
    # step (a window of steps would average the blow-up of the first steps into its start);
    # rises as differences relative to the start's size: a negative loss (an NLL of
    # probabilities) rises towards 0
    steps = probes.step_loss[np.isfinite(probes.step_loss)]
    if steps.size and not probes.epochs_known:
        start = float(steps[0])
    else:
        start = float(curve[0]) if curve.size else math.nan  # no finite epoch: nothing grew
    grew = bool(
        curve.size >= 2
        and (
            relative_rise(start, curve[-1]) > LOSS_GREW - 1
            or relative_rise(start, curve.max()) > LOSS_SPIKE - 1
        )
    )
    if probes.loop is not None and probes.loop.adversarial:
        grew = False  # a discriminator's loss rises as its generator improves: no evidence
    w0 = np.array([t.weight_norm[0] for t in probes.layers])
    w1 = np.array([np.linalg.norm(t.W_final) for t in probes.layers])
    weight_growth = float(np.median(w1[w0 > 0] / w0[w0 > 0])) if (w0 > 0).any() else math.nan
    no_progress = stuck(probes, ctx)
    diverged = probes.diverged is not None
    # a NaN is the step size's doing only when the loss or the weights grew before it: a
    # softmax over a fully masked row or a log of 0 makes one at any rate (nan-source). The
    # rise before it is judged on the steps' losses (a few epochs' means, or a watched
    # loop's stretches of single steps, say little about a run cut short)
    before_nan = growth_before_nan(probes) if diverged else {"grew": False}
    blew_up = diverged and before_nan["grew"]
    grew = grew and not (diverged and not blew_up)
    mismatch = ctx.gradcheck is not None and not ctx.gradcheck.get("passed", True)
    # gradients already huge before the first update from an amplifying init: its fault
    born = exploding_init(probes)
    big = early_update > LR_HIGH_UPDATE and no_progress
    blown = weight_growth > LR_HIGH_WEIGHT_GROWTH and no_progress
    # ReLU units alive at the start and dead at the end, after steps of this size: the steps
    # threw them into the dead zone (the catalog of causes: "afterwards ReLU layers all zero")
    killed = _killed_units(probes)
    # ... or in the first steps, even when each step moved the weights only a few percent
    # (momentum, or a rate too high for the batch size): the step size, not the units
    early_death = killed_early(probes)
    died = killed is not None and (early_update > LR_HIGH_UPDATE or early_death is not None)
    if mismatch or born or not (blew_up or grew or big or blown or died):
        return []
    if died and not (blew_up or grew or big or blown):
        # the update ratio did not size this: cut as for dead units, so both name one trial
        suggested = ctx.lr / KILLED_LR_CUT
    implied = ctx.lr * LR_HIGH_TARGET_UPDATE / first_update if first_update > 0 else math.nan
    suggested, outside = usual_lr(suggested, implied, str(ctx.optimizer.get("name")))
    if blew_up and probes.diverged is not None:
        title = (
            f"the loss became non-finite at step {probes.diverged['step']} after "
            f"{growth_words(before_nan)}"
        )
        source = probes.nan_source
        if source is not None and source.located:
            title += f"; first non-finite: {short(source)}"
    elif grew:
        title = (
            f"the loss rose from {start:.4g} to {curve.max():.4g} during training "
            f"(final {curve[-1]:.4g})"
        )
    elif big:
        title = f"the first steps change the weights by {early_update:.0%} of their norm"
    elif died and early_death is not None:
        title = (
            f"{early_death[1]:.0%} of layer {early_death[0]}'s ReLU units, alive at the start, "
            f"were dead by step {early_death[2]} of {len(probes.step_loss)} (first steps "
            f"changed the weights by {early_update:.0%} of their norm)"
        )
    elif died:
        assert killed is not None
        title = (
            f"the first steps change the weights by {early_update:.0%} of their norm and "
            f"{killed[1]:.0%} of layer {killed[0]}'s ReLU units died during training"
        )
    else:
        title = f"the weights grew {weight_growth:.0f}-fold while the loss did not improve"
    return [
        LR_TOO_HIGH.finding(
            ERROR if (blew_up or grew or blown) else WARNING,
            title + f" (learning rate {ctx.lr:g})",
            evidence={
                "lr": ctx.lr,
                "early_update_ratio": early_update,
                "weight_growth": weight_growth,
                "diverged": diverged,
                "loss_grew": grew,
                "units_died": killed[1] if killed is not None else 0.0,
                "first_update_ratio": first_update,
                "suggested_lr": suggested,
            },
            why="a step larger than the curvature allows overshoots the minimum: the loss "
            "oscillates, grows, or overflows, and ReLU units pushed far negative die",
            fix=f"lower the learning rate (try {suggested:g}: the first step changed the "
            f"weights by {first_update:.1e} of their norm, about 1e-3 to 1e-2 is healthy"
            + (f"; {outside}" if outside else "")
            + ")",
            score=1.0 if blew_up else 0.8 if (grew or blown) else 0.5,
        )
    ]


def total_move(probes: Probes) -> float:
    """Largest change of a layer's weights over the whole run, relative to its initial norm."""
    moves = [
        float(np.linalg.norm(t.W_final - t.W_init) / np.linalg.norm(t.W_init))
        for t in probes.layers
        if np.linalg.norm(t.W_init) > 0
    ]
    return max(moves, default=math.nan)


def lr_zero(probes: Probes, ctx: Context) -> list[Finding]:
    """A learning rate of exactly 0 (a typo, a scheduler that decayed to 0): nothing moves."""
    if ctx.lr != 0.0 or probes.diverged is not None:
        return []
    suggested = DEFAULT_LR.get(str(ctx.optimizer.get("name")), DEFAULT_LR_OTHER)
    return [
        LR_TOO_LOW.finding(
            ERROR,
            "the learning rate is 0: no step changes the weights",
            evidence={
                "lr": ctx.lr,
                "median_update_ratio": nanmedian(_update_ratios(probes)),
                "total_weight_change": total_move(probes),
                "loss_improvement": improvement(probes),
                "suggested_lr": suggested,
            },
            why="every update is the learning rate times a step direction, so with a rate of "
            "0 the weights, and the output, stay exactly at their initial values (a typo, or "
            "a schedule that decayed the rate to 0)",
            fix=f"set a positive learning rate (try {suggested:g})",
            score=1.0,
        )
    ]


def lr_too_low(probes: Probes, ctx: Context) -> list[Finding]:
    if ctx.lr == 0.0:
        return lr_zero(probes, ctx)
    ratios = _update_ratios(probes)
    update = nanmedian(ratios)
    if not np.isfinite(update) or probes.diverged is not None:
        return []
    moved = improvement(probes)
    move = total_move(probes)
    t = probes.layers[-1]
    last = nanmedian(t.update_ratio)
    # small updates in every layer, not just the first (that is vanishing gradients): the
    # last layer's per-step ratio is small, or no layer moved much over the whole run
    uniformly_small = last < LR_LOW_SLOW_UPDATE or move < LR_LOW_TOTAL_MOVE
    # when the targets are unpredictable the loss has nowhere to go: a flat curve is right
    signal = (ctx.bounds.get("predictability") or {}).get("has_signal", True)
    # the loss barely fell, or fell without getting anywhere (still near the baseline)
    no_progress = moved < BARELY_MOVED or stuck(probes, ctx)
    slow = no_progress and signal and uniformly_small
    if not (update < LR_LOW_UPDATE or slow):
        return []
    # the gradient itself is not small (zero gradients are dead or saturated units)
    grad = nanmedian(t.grad_norm / np.where(t.weight_norm > 0, t.weight_norm, np.nan))
    if not (uniformly_small and grad >= LR_LOW_MIN_GRAD) or not update > 0:
        # no update at all is a frozen or cut-off net (or a learning rate of 0), not a
        # small step
        return []
    # an update that underflowed to 0 (inputs of scale 1e-300) is infinitely too small
    suggested = ctx.lr * lr_factor(HEALTHY_UPDATE / update if update > 0 else math.inf)
    suggested, outside = usual_lr(
        suggested, ctx.lr * HEALTHY_UPDATE / update, str(ctx.optimizer.get("name"))
    )
    return [
        LR_TOO_LOW.finding(
            ERROR if no_progress else WARNING,
            f"each step changes the weights by only {update:.1e} of their norm "
            f"(learning rate {ctx.lr:g}), {move:.1%} over the whole run; the loss fell by "
            f"{moved:.1%}",
            evidence={
                "lr": ctx.lr,
                "median_update_ratio": update,
                "total_weight_change": move,
                "grad_to_weight": grad,
                "loss_improvement": moved,
                "suggested_lr": suggested,
            },
            why="with updates this small the weights hardly move within the training budget, "
            "so the output stays near what the initial weights give",
            fix=f"raise the learning rate (try {suggested:g}, which brings the update ratio "
            "to about 1e-3" + (f"; {outside}" if outside else "") + ") or train much longer",
            score=min(1.0, -math.log10(max(update, 1e-12)) / 8),
        )
    ]


def gradient_mismatch(probes: Probes, ctx: Context) -> list[Finding]:
    gc = ctx.gradcheck
    if not gc or gc.get("passed", True):
        return []
    return [
        GRADIENT_MISMATCH.finding(
            ERROR,
            f"the backward pass disagrees with finite differences for {', '.join(gc['failed'])}",
            evidence={
                "failed": gc["failed"],
                "worst_parameter": gc["worst"],
                "worst_index": gc["worst_index"],
                "analytic": gc["analytic"],
                "finite_difference": gc["numeric"],
                "max_rel_error": gc["max_rel_error"],
            },
            why="training follows the computed gradient; when it is not the derivative of "
            "the loss, the updates do not reduce the loss and the net stalls or drifts",
            fix="fix the layer's backward rule (check each derivative against finite "
            "differences or autograd)",
            score=1.0,
        )
    ]


# --- the changes the trials make ---


def _lr_change(f: Finding, ctx: Context) -> Change | None:
    # the rate the finding suggests, so the report's fix and its trial are the same change
    lr = f.evidence.get("suggested_lr")
    return LearningRate(lr) if lr is not None and lr > 0 else None


def _unsquash_change(f: Finding, ctx: Context) -> Change | None:
    if f.evidence.get("small_init"):
        # not the activation's derivative: weights too small shrink the signal
        return reinit(f, ctx)
    kinds = [s.kind for s in ctx.layers]
    last_dense = max(i for i, k in enumerate(kinds) if k == "dense")
    if not any(k in ("sigmoid", "tanh") for k in kinds[:last_dense]):
        return reinit(f, ctx)
    return ReplaceActivations()


# --- the records ---

GRADIENT_MISMATCH = Rule(
    code="gradient-mismatch",
    kind=CAUSE,
    tier=0,
    meaning="layer gradients disagree with finite differences",
    sentence=(
        "your backward pass computes a different gradient from the one the loss really has "
        "({failed} wrong), so training follows the wrong direction|your backward pass computes a "
        "different gradient from the one the loss really has, so training follows the wrong "
        "direction"
    ),
    detect=gradient_mismatch,
    explains=(
        "saturated-units",
        "dead-units",
        "exploding-gradients",
        "vanishing-gradients",
        "lr-too-high",
        "lr-too-low",
        "insufficient-capacity",
    ),
    plots=("loss",),
)

LR_TOO_HIGH = Rule(
    code="lr-too-high",
    kind=CAUSE,
    tier=1,
    meaning="the learning rate makes the loss spike, oscillate or blow up",
    sentence=(
        "your learning rate ({lr}) is so large that each step overshoots, so the loss jumps around "
        "or blows up instead of going down|your learning rate is so large that each step "
        "overshoots, so the loss jumps around or blows up instead of going down"
    ),
    detect=lr_too_high,
    change=_lr_change,
    fix="learning rate x0.1 to x0.001",
    refutable=True,
    explains=("dead-units", "exploding-gradients"),
    plots=("loss", "gradients"),
    terms=("update-to-weight ratio",),
)

LR_TOO_LOW = Rule(
    code="lr-too-low",
    kind=CAUSE,
    tier=2,
    meaning="updates too small to move the weights",
    sentence=(
        "your learning rate ({lr}) is so small that the weights barely move, so the loss hardly "
        "goes down|your learning rate is so small that the weights barely move, so the loss hardly "
        "goes down"
    ),
    detect=lr_too_low,
    change=_lr_change,
    fix="learning rate x10 to x1000",
    refutable=True,
    plots=("gradients", "loss"),
    terms=("update-to-weight ratio",),
)

EXPLODING_GRADIENTS = Rule(
    code="exploding-gradients",
    kind=CAUSE,
    tier=2,
    meaning="gradients grow layer by layer or step by step",
    sentence=(
        "the gradients grow from layer to layer or from step to step, so updates become huge and "
        "training is unstable"
    ),
    detect=exploding_gradients,
    change=reinit,
    fix="re-initialise",
    refutable=True,
    explains=("dead-units",),
    plots=("gradients",),
)

VANISHING_GRADIENTS = Rule(
    code="vanishing-gradients",
    kind=CAUSE,
    tier=2,
    meaning="first-layer gradients far below last-layer ones",
    sentence=(
        "almost no gradient reaches the first layers, so they stop learning while the last one does"
        " all the work"
    ),
    detect=vanishing_gradients,
    change=_unsquash_change,
    fix="ReLU hidden layers, He init",
    refutable=True,
    plots=("gradients",),
)

RULES = (GRADIENT_MISMATCH, LR_TOO_HIGH, LR_TOO_LOW, EXPLODING_GRADIENTS, VANISHING_GRADIENTS)
