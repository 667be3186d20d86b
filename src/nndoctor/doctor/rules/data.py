"""The data against the achievable bounds: rank-k codes, predictability, capacity."""

from __future__ import annotations

import math

import numpy as np

from nndoctor.doctor.changes import Shuffle
from nndoctor.doctor.finding import CAUSE, ERROR, INFO, NOTE, SYMPTOM, WARNING, Finding
from nndoctor.doctor.rule import TARGETS, Rule
from nndoctor.doctor.rules.common import baseline
from nndoctor.doctor.rules.setup import CAPACITY_SKILL_MARGIN, skills
from nndoctor.doctor.schema import AUTOENCODER, BINARY, CLASSIFICATION, TOKENS, Context, Probes

# the final loss matches the rank-r bound when it is within this share of the gap to the
# neighbouring bounds
RANK_MATCH = 0.25
# ... and sits clearly above the width's bound: by more than this share of it
RANK_GAP = 0.05
# spectrum "nearly flat": effective rank at least this share of all components (as bounds)
FLAT_SPECTRUM = 0.9
# an autoencoder's bottleneck is too narrow when the data needs more components than it has
# units for this share of its variance (and the loss sits at the width's own rank bound)
BOTTLENECK_SHARE = 0.9
# the net sits at the best affine map's loss: within this share of the constant baseline
AFFINE_TOL = 0.05
# the net's training skill (1 - loss / baseline) below the best held-out skill by this much
CAPACITY_GAP = 0.3
# ... after learning at least this much (a net at the constant is stuck, not too small)
CAPACITY_MIN_SKILL = 0.05
# "converged": the loss changed by less than this share over the last half of training; looser
# than a plateau because a too-small net keeps creeping towards its limit
CAPACITY_CHANGE = 0.05


def _bottleneck(ctx: Context) -> int | None:
    hidden = ctx.hidden_widths
    return min(hidden) if hidden else None


def loss_at_lower_rank_bound(probes: Probes, ctx: Context) -> list[Finding]:
    L = ctx.bounds.get("loss_at_rank")
    w = _bottleneck(ctx)
    if ctx.task != AUTOENCODER or L is None or w is None or w < 2 or w >= len(L) - 1:
        return []
    final = probes.final_loss
    if not math.isfinite(final) or final - L[w] <= RANK_GAP * L[w]:
        return []
    for r in range(1, w):
        gap = min(L[r - 1] - L[r], L[r] - L[r + 1])
        if abs(final - L[r]) <= RANK_MATCH * gap:
            narrow = min(range(len(probes.layers) - 1), key=lambda i: probes.layers[i].out_features)
            act = probes.layers[narrow].act_rank
            return [
                LOSS_AT_LOWER_RANK_BOUND.finding(
                    WARNING,
                    f"the loss {final:.4g} sits at the best rank-{r} code ({L[r]:.4g}) although "
                    f"{w} units allow the rank-{w} bound {L[w]:.4g}",
                    evidence={
                        "final_loss": final,
                        f"rank_{r}_bound": float(L[r]),
                        f"rank_{w}_bound": float(L[w]),
                        "bottleneck_units": w,
                        "effective_rank": r,
                        "bottleneck_activation_rank": float(act[-1]) if act.size else np.nan,
                    },
                    why=f"a code of {w} units that reaches only the rank-{r} bound uses {r} "
                    "effective unit(s): the others duplicate them or carry nothing",
                    fix="see the causes above (identical or dead units)",
                    score=1.0 - r / w,
                )
            ]
    return []


def incompressible_data(probes: Probes, ctx: Context) -> list[Finding]:
    evr = ctx.bounds.get("explained_variance_ratio")
    L = ctx.bounds.get("loss_at_rank")
    w = _bottleneck(ctx)
    if (
        ctx.task != AUTOENCODER
        or evr is None
        or L is None
        or w is None
        or w >= len(evr)
        or not evr.any()
    ):
        return []
    eff = float(ctx.bounds["effective_rank"])
    if eff < FLAT_SPECTRUM * len(evr):
        return []
    share = float(np.sum(evr[:w]))
    return [
        INCOMPRESSIBLE_DATA.finding(
            NOTE,
            f"the data is nearly incompressible: the top {w} of {len(evr)} components explain "
            f"{share:.0%}, so about {L[w]:.4g} is the best any {w}-unit linear code can do "
            f"(constant: {L[0]:.4g})",
            evidence={
                f"rank_{w}_bound": float(L[w]),
                "baseline": float(L[0]),
                "explained_share": share,
                "effective_rank": eff,
                "components": len(evr),
            },
            why="with a flat spectrum every direction holds about the same variance, so a "
            f"{w}-unit bottleneck must drop most of it whatever the training does",
            fix=f"expect no loss much below {L[w]:.4g} with {w} units; widen the bottleneck "
            "if a lower loss is needed",
            score=eff / len(evr),
        )
    ]


def no_signal(probes: Probes, ctx: Context) -> list[Finding]:
    pred = ctx.bounds.get("predictability")
    if ctx.task == AUTOENCODER or not pred or pred["has_signal"]:
        return []
    if not np.any(ctx.data.y_std > 0):
        return []
    # the test saw token ids as a bag (bag_of_ids): additive effects only, so a target made by
    # an interaction of ids (a user with an item) reads as no signal too: information, said so
    ids = ctx.structure.inputs == TOKENS
    return [
        NO_SIGNAL.finding(
            NOTE if ids else WARNING,
            "no single id predicts the targets (an interaction of ids would not show here): "
            "check that the labels belong to their inputs"
            if ids
            else "the targets are not predictable from the inputs: a constant output is the "
            "right answer here",
            evidence={
                "held_out_skill": pred["skill"],
                "skill_std": pred["skill_std"],
                "shuffled_quantile": pred["shuffled_quantile"],
                "p_value": pred["p_value"],
                "best_model": pred["best_model"],
            },
            why="no model (linear or nearest-neighbour) predicts held-out targets better than "
            "with the inputs shuffled"
            + (
                " (the ids read as a bag: one id's effect, not two ids' interaction)"
                if ids
                else "; the net is right to output "
                + (
                    "the class shares"
                    if ctx.task in (CLASSIFICATION, BINARY)
                    else "the mean target"
                )
            ),
            fix="check that inputs and targets are paired correctly (no shuffling of one "
            "without the other) and that the inputs contain the information at all",
            score=min(1.0, pred["p_value"] * 2),
        )
    ]


def narrow_bottleneck(probes: Probes, ctx: Context) -> list[Finding]:
    """An autoencoder at its own width's rank bound on data that needs more components."""
    evr = ctx.bounds.get("explained_variance_ratio")
    L = ctx.bounds.get("loss_at_rank")
    w = _bottleneck(ctx)
    final = probes.final_loss
    if evr is None or L is None or w is None or w >= len(L) - 1 or not math.isfinite(final):
        return []
    # a flat spectrum is incompressible-data: no width short of all of it does much better
    if float(ctx.bounds["effective_rank"]) >= FLAT_SPECTRUM * len(evr):
        return []
    needed = int(np.searchsorted(np.cumsum(evr), BOTTLENECK_SHARE)) + 1
    if needed <= w or final > L[w] + RANK_MATCH * (L[w - 1] - L[w]):
        return []
    k = min(needed, len(L) - 1)
    return [
        INSUFFICIENT_CAPACITY.finding(
            WARNING,
            f"the loss {final:.4g} is at the best any {w}-unit linear code can do "
            f"({L[w]:.4g}), while the data needs {needed} components for "
            f"{BOTTLENECK_SHARE:.0%} of its variance",
            evidence={
                "final_loss": final,
                f"rank_{w}_bound": float(L[w]),
                f"rank_{k}_bound": float(L[k]),
                "bottleneck_units": w,
                "components_needed": needed,
                "baseline": float(L[0]),
            },
            why=f"an autoencoder passes at most {w} direction(s) of the data through its "
            f"{w}-unit bottleneck; this data spreads over {needed}, so the reconstruction keeps "
            "only the strongest and the loss stops at the architecture's limit, not at a "
            "training fault",
            fix=f"widen the bottleneck to about {needed} units (the best rank-{k} code reaches "
            f"{L[k]:.4g}), or accept this loss as the price of a {w}-unit code",
            score=1.0 - w / needed,
        )
    ]


def insufficient_capacity(probes: Probes, ctx: Context) -> list[Finding]:
    if ctx.task == AUTOENCODER:
        return narrow_bottleneck(probes, ctx)
    pred = ctx.bounds.get("predictability")
    L0 = baseline(ctx)
    final = probes.final_loss
    if not pred or not (L0 > 0 and math.isfinite(final)):
        return []
    knn, ridge = skills(ctx)
    best = max(knn, ridge)
    # the net's skill on its own training data, on the scale of the held-out skill
    net_skill = 1.0 - final / L0
    if not best - net_skill > CAPACITY_GAP:
        return []
    ls = ctx.bounds.get("least_squares")
    # at the affine map's loss, neither clearly below nor clearly above it: a net stuck far
    # above the affine loss has not reached what even its linear part can do
    linear_like = (
        ls is not None
        and abs(final - ls) <= AFFINE_TOL * L0
        and knn - ridge > CAPACITY_SKILL_MARGIN
    )
    curve = probes.finite_epoch_loss
    converged = curve.size >= 2 and abs(curve[curve.size // 2] - curve[-1]) <= (
        CAPACITY_CHANGE * abs(curve[curve.size // 2])
    )
    # a net stuck at the constant has not met its capacity: something else stops it
    if not (linear_like or (converged and net_skill > CAPACITY_MIN_SKILL)):
        return []
    return [
        INSUFFICIENT_CAPACITY.finding(
            ERROR if final >= 0.95 * L0 else WARNING,
            f"training converged at skill {net_skill:.2f} on its own data while a "
            f"{pred['best_model']} model reaches {best:.2f} on held-out data",
            evidence={
                "final_loss": final,
                "net_skill": net_skill,
                "best_heldout_skill": best,
                "knn_skill": knn,
                "ridge_skill": ridge,
                "best_affine_loss": ls if ls is not None else math.nan,
                "hidden_widths": ctx.hidden_widths,
            },
            why="the loss has stopped falling far above what even a simple nonlinear model "
            "reaches: the architecture cannot represent the function "
            + (
                "(with no hidden layer the net is a linear model: it cannot represent "
                "products or curved boundaries)"
                if not ctx.hidden_widths
                else "(too few units, or no nonlinearity)"
            ),
            fix="add a hidden layer with a nonlinearity (e.g. 32 ReLU units)"
            if not ctx.hidden_widths
            else "add hidden units or a hidden layer with a nonlinearity",
            score=min(1.0, best - net_skill),
        )
    ]


# consecutive targets correlated above this: the data comes in order (shuffled data: about
# +-2/sqrt(n), below 0.2 from 100 rows on; sorted by class or a smooth time series: near 1)
ORDER_CORR = 0.5
# the end weights' loss on the probe batch above this multiple of the last epoch's mean batch
# loss, and above it by this share of the constant baseline: the net fits the batches it has
# just seen, not the data
ORDER_GAP_RATIO = 2.0
ORDER_GAP_BASELINE = 0.1
# ... or, whatever the running loss says, the end weights still lose at least this share of
# the constant baseline: ordered batches are a cause to try (the shuffled trial decides)
ORDER_POOR = 0.5


def unshuffled_data(probes: Probes, ctx: Context) -> list[Finding]:
    corr = ctx.data.y_order_corr
    L0 = baseline(ctx)
    held, seen = probes.probe_loss, probes.final_loss
    # a watched loop: the order is that of the rows its probed batches held, and the end
    # weights are not scored on the data; only a run that stays poor tells
    watched = ctx.shuffle is None and not math.isfinite(held)
    if watched:
        held = seen
    if (
        ctx.shuffle
        or probes.steps_per_epoch < 2
        or probes.diverged is not None
        or not corr > ORDER_CORR
        or not (math.isfinite(L0) and L0 > 0 and math.isfinite(held))
    ):
        return []
    gap = not watched and held > ORDER_GAP_RATIO * seen and held - seen > ORDER_GAP_BASELINE * L0
    if not (gap or held >= ORDER_POOR * L0):
        return []
    scored = (
        f"the batches of the last stretch averaged {seen:.4g}"
        if watched
        else f"the end weights score {held:.4g} on the data"
    )
    return [
        UNSHUFFLED_DATA.finding(
            ERROR if held >= 0.95 * L0 else WARNING,
            f"the samples come ordered by target (consecutive targets correlate {corr:.2f}) "
            f"and are not shuffled: {scored}"
            + (
                f" while the batches of the last epoch averaged {seen:.4g}"
                if gap
                else f" ({held / L0:.0%} of the baseline)"
            )
            + f" (constant baseline {L0:.4g})",
            evidence={
                "target_order_correlation": corr,
                **({} if watched else {"loss_of_end_weights": held}),
                "last_epoch_batch_loss": seen,
                "baseline": L0,
                "batches_per_epoch": probes.steps_per_epoch,
            },
            why="without shuffling, each stretch of batches holds one class (or one range of "
            "targets) and drags the weights towards it: at every moment the net fits the "
            "batches it has just seen and forgets the rest, so the training loss, averaged "
            "over batches as they come, looks good while the net as a whole predicts what "
            "the last stretch held",
            fix="shuffle the samples every epoch (train(..., shuffle=True), or "
            "DataLoader(shuffle=True)); at the least permute them once before training",
            score=min(1.0, max(held - seen, held) / L0),
        )
    ]


# --- the records ---

LOSS_AT_LOWER_RANK_BOUND = Rule(
    code="loss-at-lower-rank-bound",
    kind=SYMPTOM,
    tier=1,
    meaning="at the bound of a narrower code than built",
    sentence=(
        "your loss ({final_loss}) stopped where a network with only {effective_rank} hidden unit(s)"
        " would stop, although you built {bottleneck_units}|your loss stopped where a network with "
        "fewer hidden units would stop"
    ),
    detect=loss_at_lower_rank_bound,
    needs=frozenset({TARGETS}),
    subsumes=("loss-plateau",),
    plots=("loss", "spectrum"),
    terms=("bound", "rank"),
)

INCOMPRESSIBLE_DATA = Rule(
    code="incompressible-data",
    kind=INFO,
    tier=0,
    meaning="an autoencoder's bottleneck against a flat spectrum",
    sentence=(
        "your data has little structure to compress: no {bottleneck}-unit code can do much better "
        "than {bound}|your data has little structure to compress: a narrow bottleneck must drop "
        "most of it"
    ),
    detect=incompressible_data,
    needs=frozenset({TARGETS}),
    plots=("spectrum",),
    terms=("bound", "effective rank"),
)

NO_SIGNAL = Rule(
    code="no-signal",
    kind=CAUSE,
    tier=1,
    meaning="targets are not predictable from the inputs",
    sentence=(
        "your targets cannot be predicted from your inputs, even by simple models, so the best any "
        "network can do is predict their average"
    ),
    detect=no_signal,
    needs=frozenset({TARGETS}),
    plots=("loss",),
    terms=("baseline",),
)

INSUFFICIENT_CAPACITY = Rule(
    code="insufficient-capacity",
    kind=CAUSE,
    tier=3,
    meaning="at the best the architecture allows",
    sentence=(
        "your network already does about as well as its size allows ({final_loss}); to do better it"
        " needs more units, not more training|your network already does about as well as its size "
        "allows; to do better it needs more units, not more training"
    ),
    detect=insufficient_capacity,
    needs=frozenset({TARGETS}),
    explains=("saturated-units",),
    plots=("loss", "spectrum"),
    terms=("bound",),
)

UNSHUFFLED_DATA = Rule(
    code="unshuffled-data",
    kind=CAUSE,
    tier=1,
    meaning=(
        "ordered data, not shuffled: each stretch of batches pulls the net towards its own targets"
    ),
    sentence=(
        "your data is sorted and not shuffled, so each stretch of batches pulls the network towards"
        " its own targets and it ends where the last batches left it"
    ),
    detect=unshuffled_data,
    change=lambda f, ctx: Shuffle(),
    fix="shuffle every epoch",
    needs=frozenset({TARGETS}),
    plots=("loss",),
)

RULES = (
    LOSS_AT_LOWER_RANK_BOUND,
    INCOMPRESSIBLE_DATA,
    NO_SIGNAL,
    INSUFFICIENT_CAPACITY,
    UNSHUFFLED_DATA,
)
