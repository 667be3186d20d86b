"""Faults visible before training: architecture, loss and data (no probes needed)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from nndoctor.doctor.changes import (
    Change,
    InsertActivation,
    MapTargets,
    RemoveOutputActivation,
    ReplaceLoss,
    ReplaceOutput,
    Standardize,
)
from nndoctor.doctor.finding import CAUSE, ERROR, NOTE, WARNING, Finding
from nndoctor.doctor.rule import TARGETS, Rule
from nndoctor.doctor.rules.common import baseline, units
from nndoctor.doctor.schema import (
    AUTOENCODER,
    BINARY,
    CLASSIFICATION,
    REGRESSION,
    TOKENS,
    UNKNOWN,
    Context,
    Probes,
)

# a feature is constant when its std is below this times max(1, |mean|)
CONSTANT_STD = 1e-12
# inputs (targets) with max |x| above this are unscaled (weights start at about
# 1/sqrt(fan_in), outputs at about unit size)
UNSCALED_MAX = 20.0
# ... and above this they are a warning even without other evidence
UNSCALED_SEVERE = 1000.0
# hidden saturation in the first layer that turns unscaled inputs into an error
FIRST_LAYER_SATURATION = 0.5
# majority class share that counts as imbalanced
IMBALANCE_SHARE = 0.8
# share of probe predictions on the majority class that counts as collapsed onto it
MAJORITY_PREDICTED = 0.98
# ... and collapsed onto it only when at most this share of the other classes' units is
# predicted as anything else (a healthy net on a mask with 1% foreground finds 76-100% of it;
# collapsed MLPs of the held-out sets found 0-11%)
MINORITY_FOUND = 0.5
# target elements outside the output's range, tolerance for round-off
RANGE_TOL = 1e-9

_RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, np.inf), "softmax": (0.0, 1.0)}
_AFFINE = ("identity",)
# output activations with a bounded range: targets beyond it are targets-out-of-range
_BOUNDED = ("sigmoid", "tanh", "softmax")


def missing_nonlinearity(probes: Probes, ctx: Context) -> list[Finding]:
    specs = [s for s in ctx.layers if s.kind not in _AFFINE]
    kinds = [s.kind for s in specs]
    # (a Linear projected into a feature map, then a convolution, as a VAE's decoder or a
    # GAN's generator starts, or the reverse: a projection by design, not a missing activation)
    pairs = [
        i
        for i, (a, b) in enumerate(itertools.pairwise(specs))
        if a.kind == b.kind == "dense" and a.conv == b.conv
    ]
    if not pairs:
        return []
    dense_at = [i for i, k in enumerate(kinds) if k == "dense"]
    if pairs == [dense_at[-2]] and any(k != "dense" for k in kinds[: pairs[0]]):
        # the last two Dense layers only, after an activation, embedding or recurrent layer: a
        # linear head on non-linear features, by design in an embedding model (the embedding,
        # then its classifier); the net is not affine
        return []
    # index of the Dense layers (counting Dense only) that are followed directly by Dense
    where = [dense_at.index(i) for i in pairs]
    n_dense = len(dense_at)
    all_affine = len(pairs) == n_dense - 1 and kinds[-1] == "dense"
    severity = WARNING
    knn, ridge = skills(ctx)
    ls = ctx.bounds.get("least_squares")
    # an error only where the linear bound is a real limit: a linear model that fits the
    # training set almost perfectly (many inputs, few samples) loses nothing by being linear
    L0 = baseline(ctx)
    if (
        ls is not None
        and not (math.isfinite(L0) and ls < LINEAR_FIT_SHARE * L0)
        and knn - ridge > CAPACITY_SKILL_MARGIN
        and probes.final_loss >= 0.95 * ls
    ):
        severity = ERROR
    return [
        MISSING_NONLINEARITY.finding(
            severity,
            f"Dense layers {units(where)} feed the next Dense layer with no activation between",
            evidence={
                "consecutive_dense_pairs": len(pairs),
                "whole_net_affine": all_affine,
                "final_loss": probes.final_loss,
                "best_affine_loss": ls if ls is not None else float("nan"),
            },
            why="a product of affine maps is one affine map: the extra layers add parameters "
            "but no expressive power, so the net can do no better than linear regression",
            fix="put an activation (ReLU, tanh) between consecutive Dense layers",
            score=0.9,
        )
    ]


# k-NN held-out skill above the best ridge skill by this much: a nonlinear model does better
CAPACITY_SKILL_MARGIN = 0.1
# the best linear model's loss below this share of the constant baseline: it fits the data
LINEAR_FIT_SHARE = 0.05


def skills(ctx: Context) -> tuple[float, float]:
    """Best k-NN and best ridge held-out skill from the predictability test (NaN if absent)."""
    pred = ctx.bounds.get("predictability")
    if not pred:
        return float("nan"), float("nan")
    skills = pred["model_skill"]
    knn = max((v for k, v in skills.items() if "NN" in k), default=float("nan"))
    ridge = max((v for k, v in skills.items() if "ridge" in k), default=float("nan"))
    return knn, ridge


def wrong_loss_for_targets(probes: Probes, ctx: Context) -> list[Finding]:
    out_act, width = ctx.output_activation, ctx.dense_widths[-1] if ctx.dense_widths else 0
    d = ctx.data
    case = None
    if ctx.loss_name == "cross_entropy" and width == 1:
        case, title, why, fix = (
            "cross-entropy-one-output",
            "CrossEntropy over a single output",
            "softmax of one logit is always 1: the loss is 0 and every gradient is 0 from the "
            "first step, so nothing learns",
            "use one output per class with CrossEntropy, or one sigmoid output with BCE",
        )
    elif out_act == "softmax" and width == 1:
        case, title, why, fix = (
            "softmax-one-output",
            "softmax over a single output: the prediction is always exactly 1.0",
            "softmax normalises across outputs; over one output it is the constant 1, whose "
            "gradient is 0",
            "use a sigmoid for one output, or one output per class",
        )
    elif ctx.loss_name == "bce" and _bce_outside(ctx) and not _rescaled(probes, ctx):
        lo, hi = float(np.min(d.y_min)), float(np.max(d.y_max))
        two = _bce_two_labels(probes, ctx)
        classes = label_classes(ctx)
        case, title, why, fix = (
            "bce-two-labels-outside-unit-interval" if two else "bce-targets-outside-unit-interval",
            f"BCE on targets in [{lo:.3g}, {hi:.3g}], outside [0, 1]" + _below_zero(probes),
            _BCE_OUTSIDE_WHY,
            f"the targets look like class labels {{{lo:g}, {hi:g}}}: map them to {{0, 1}} "
            f"with (y - {lo:g}) / {hi - lo:g} and keep BCE"
            if two
            else f"the targets look like {classes} class labels 0..{int(hi)}: use "
            f"CrossEntropy with {classes} outputs and the labels as class indices"
            if classes
            else "use MSE with an identity output for real-valued targets, or rescale the "
            "targets into [0, 1]",
        )
    elif (
        ctx.loss_name == "bce"
        and out_act not in ("sigmoid", "softmax", UNKNOWN)
        and not ctx.loss.from_logits
    ):
        case, title, why, fix = (
            "bce-without-sigmoid",
            f"BCE on a {out_act} output: the predictions are not probabilities",
            "BCE takes log(p) and log(1 - p); outside (0, 1) these are undefined or clamped, "
            "so the loss and its gradient are meaningless",
            "end the net with a sigmoid before BCE",
        )
    elif probes.loop is not None and probes.loop.nll_scores is not None:
        lse, top = probes.loop.nll_scores
        case, title, why, fix = (
            "nll-on-scores",
            "NLLLoss on scores that are not log-probabilities: the exponentials of a row sum "
            f"to e^{lse:.3g}, not 1, and scores reach {top:.3g}" + _below_zero(probes),
            "NLLLoss only takes -input[target]: it expects log-probabilities (log_softmax), "
            "whose rows are tied together, so raising the true class lowers the others. Raw "
            "scores are tied to nothing: the loss falls without bound as the picked score "
            "grows, the other classes are never pushed down, and the scores drift instead of "
            "separating the classes",
            "apply log_softmax(dim=1) to the scores before NLLLoss, or use CrossEntropyLoss "
            "on the raw scores (it applies log_softmax itself)",
        )
    elif ctx.loss_name == "cross_entropy" and out_act == "softmax" and probes.loop is None:
        # (a loop whose facts were recorded names it double-activation, with the other
        # activations a loss applies itself)
        # the best the double softmax allows: probability 1 on the true class, 0 elsewhere,
        # read as logits
        floor = float(np.log(np.e + width - 1) - 1.0)
        case, title, why, fix = (
            "softmax-before-cross-entropy",
            "a Softmax layer before CrossEntropy (which applies softmax itself): the loss "
            f"cannot go below {floor:.4g} (final {probes.final_loss:.4g})",
            "CrossEntropy reads its inputs as logits; probabilities in [0, 1] as logits give "
            f"a second softmax that is at most e / (e + {width - 1}) on the true class, so the "
            f"loss has a floor of ln(e + {width - 1}) - 1 = {floor:.4g} and its gradient shrinks "
            "long before the net is confident: the loss stalls there and the predicted "
            "probabilities stay near uniform, even when the predicted classes are right",
            "remove the final Softmax layer: CrossEntropy takes logits (apply softmax only "
            "when you need probabilities, after training)",
        )
    if case is None:
        return []
    severity = WARNING if case == "softmax-before-cross-entropy" else ERROR
    return [
        WRONG_LOSS_FOR_TARGETS.finding(
            severity,
            title,
            evidence={
                "case": case,
                "loss": ctx.loss_name,
                "output_activation": out_act,
                "outputs": width,
            },
            why=why,
            fix=fix,
            score=1.0,
        )
    ]


def _below_zero(probes: Probes) -> str:
    """A title's note of a final loss below 0 (impossible for a loss on valid inputs)."""
    final = probes.final_loss
    return f" (final loss {final:.4g}, below 0)" if final < 0 else ""


_BCE_OUTSIDE_WHY = (
    "BCE, -t log p - (1 - t) log(1 - p), is a loss for targets in [0, 1]: outside it one of the "
    "two weights is negative, the loss has no minimum inside (0, 1) and falls without bound (a "
    "negative BCE is impossible with valid targets) as the output is pushed to 0 or 1, so the "
    "prediction is pinned at an edge"
)


def _bce_outside(ctx: Context) -> bool:
    d = ctx.data
    return bool(np.any(d.y_min < -RANGE_TOL) or np.any(d.y_max > 1 + RANGE_TOL))


def _bce_two_labels(probes: Probes, ctx: Context) -> bool:
    """Exactly two target values, the smallest and the largest: a binary label (a mask of 0
    and 255) on the wrong scale."""
    labels = np.unique(probes.probe_target)
    d = ctx.data
    return bool(labels.size == 2 and labels[0] == np.min(d.y_min) and labels[1] == np.max(d.y_max))


def _rescaled(probes: Probes, ctx: Context) -> bool:
    """Targets of a per-element BCE (a pixel's, a label's) that are a 0/1 target on another
    scale: two values (a mask of 0 and 255) or real values (pixels normalised by a mean and
    std), not class labels 0..K. One target per sample outside [0, 1] reads as a label
    encoding the loss does not take ({-1, 1}, classes 0..9): wrong-loss-for-targets."""
    if ctx.structure.per_sample:
        return False
    return _bce_two_labels(probes, ctx) or not label_classes(ctx)


def _bce_out_of_range(probes: Probes, ctx: Context) -> list[Finding]:
    """BCE per element on targets outside [0, 1] that want rescaling (:func:`_rescaled`); the
    loss may stay."""
    if not (_bce_outside(ctx) and _rescaled(probes, ctx)):
        return []
    d = ctx.data
    lo, hi = float(np.min(d.y_min)), float(np.max(d.y_max))
    two = _bce_two_labels(probes, ctx)
    T = probes.probe_target
    share = float(np.mean((T < -RANGE_TOL) | (T > 1 + RANGE_TOL))) if T.size else math.nan
    return [
        TARGETS_OUT_OF_RANGE.finding(
            ERROR,
            f"BCE on {'two labels' if two else 'targets'} in [{lo:.3g}, {hi:.3g}], outside "
            "[0, 1]" + _below_zero(probes),
            evidence={
                "case": "bce-two-labels-outside-unit-interval"
                if two
                else "bce-targets-outside-unit-interval",
                "share_outside": share,
                "target_min": lo,
                "target_max": hi,
                "loss": ctx.loss_name,
            },
            why=_BCE_OUTSIDE_WHY,
            fix=f"the targets look like binary labels {{{lo:g}, {hi:g}}}: map them to {{0, 1}} "
            f"with (y - {lo:g}) / {hi - lo:g} and keep BCE"
            if two
            else "rescale the targets into [0, 1] (undo a normalisation by mean and std), or "
            "use MSE with an identity output for real-valued targets",
            score=1.0,
        )
    ]


def targets_out_of_range(probes: Probes, ctx: Context) -> list[Finding]:
    if ctx.loss_name == "bce":
        return _bce_out_of_range(probes, ctx)
    act = ctx.output_activation
    if act not in _RANGES or ctx.task in (CLASSIFICATION,):
        return []
    lo, hi = _RANGES[act]
    T = probes.probe_target
    outside = (lo - RANGE_TOL > T) | (hi + RANGE_TOL < T)
    share = float(np.mean(outside))
    if share == 0.0:
        return []
    d = ctx.data
    return [
        TARGETS_OUT_OF_RANGE.finding(
            ERROR if share > 0.01 else WARNING,
            f"{share:.0%} of targets lie outside the {act} output's range [{lo:g}, {hi:g}]",
            evidence={
                "share_outside": share,
                "target_min": float(np.min(d.y_min)),
                "target_max": float(np.max(d.y_max)),
                "prediction_min": float(np.min(probes.probe_output)),
                "prediction_max": float(np.max(probes.probe_output)),
            },
            why=f"a {act} output cannot reach those targets: the loss is smallest with the "
            "output pinned at the edge of its range, so it stops depending on the input",
            fix="use an identity output for real-valued targets, or rescale the targets into "
            "the output's range",
            score=min(1.0, 0.5 + share),
        )
    ]


def constant_inputs(probes: Probes, ctx: Context) -> list[Finding]:
    d = ctx.data
    constant = np.flatnonzero(d.x_std <= CONSTANT_STD * np.maximum(1.0, np.abs(d.x_mean)))
    if constant.size == 0:
        return []
    if ctx.structure.inputs == TOKENS and constant.size < d.x_std.size:
        return []  # a position that always holds one token (a start token) is not a feature
    share = constant.size / d.x_std.size
    all_constant = constant.size == d.x_std.size
    severity = ERROR if all_constant else WARNING if share >= 0.5 else NOTE
    title = (
        "every input feature is constant: all inputs are the same"
        if all_constant
        else f"{constant.size} of {d.x_std.size} input features are constant"
    )
    return [
        CONSTANT_INPUTS.finding(
            severity,
            title,
            evidence={
                "constant_features": constant.size,
                "features": d.x_std.size,
                "constant_value": float(d.x_mean[constant[0]]),
                "feature_indices": constant[:16].tolist(),
            },
            why="features without variance carry no information; when none varies, the best "
            "the net can do is a constant output (the mean target or class prior)"
            if all_constant
            else "features without variance carry no information; a few of them (blank image "
            "borders, an unused sensor) are harmless, the other features still carry the signal",
            fix="check the preprocessing (integer division like x // 255 turns pixels into "
            "0; a wrong column or a broadcast copies one value)"
            if share >= 0.5
            else "nothing to fix if these features are constant by nature; otherwise check how "
            "they were made. Dropping them saves parameters",
            score=share,
        )
    ]


def unscaled_inputs(probes: Probes, ctx: Context) -> list[Finding]:
    d = ctx.data
    # token ids are ids: an embedding looks them up, nothing multiplies them
    if d.x_absmax <= UNSCALED_MAX or ctx.structure.inputs == TOKENS:
        return []
    first = probes.layers[0] if probes.layers else None
    saturated = bool(
        first is not None
        and first.frac_saturated.size
        and first.frac_saturated[-1] >= FIRST_LAYER_SATURATION
    )
    at_base = probes.final_loss >= 0.95 * baseline(ctx)
    harm = saturated or probes.diverged is not None or at_base
    severity = ERROR if harm else WARNING if d.x_absmax > UNSCALED_SEVERE else NOTE
    return [
        UNSCALED_INPUTS.finding(
            severity,
            f"inputs reach |x| = {d.x_absmax:.3g} (largest feature std {np.max(d.x_std):.3g})",
            evidence={
                "max_abs_input": d.x_absmax,
                "max_feature_std": float(np.max(d.x_std)),
                "first_layer_saturated_share": float(first.frac_saturated[-1])
                if saturated and first is not None
                else 0.0,
            },
            why="with weights initialised for unit-scale inputs, large inputs drive the first "
            "pre-activations far from 0: sigmoid/tanh saturate and gradients vanish, or the "
            "updates overshoot and the loss blows up",
            fix="standardise the inputs (subtract the mean, divide by the std of each "
            "feature, computed on the training set)",
            score=min(1.0, np.log10(d.x_absmax) / 4),
        )
    ]


def constant_targets(probes: Probes, ctx: Context) -> list[Finding]:
    d = ctx.data
    # an autoencoder's targets are its inputs: constant-inputs speaks for them
    if ctx.task == AUTOENCODER or not np.all(d.y_max == d.y_min):
        return []
    seen = probes.loop.target_range if probes.loop is not None else None
    if seen is not None and seen[0] != seen[1]:
        return []  # a watched loop's later batches held other targets than its kept sample
    value = np.round(d.y_min[:8], 6).tolist()
    return [
        CONSTANT_TARGETS.finding(
            ERROR,
            f"every target is the same ({value[0] if len(value) == 1 else value}): there is "
            "nothing to learn but that constant",
            evidence={"target_value": value, "samples": d.n_samples},
            why="with one target value the loss is minimised by outputting it for every input, "
            "which the net learns quickly; its constant output is right for these labels",
            fix="check how the targets were made: labels // 255 or int(label / 255) turn every "
            "label into 0; a wrong column or a broadcast copies one value",
            score=1.0,
        )
    ]


def unscaled_targets(probes: Probes, ctx: Context) -> list[Finding]:
    d = ctx.data
    if ctx.task != REGRESSION or ctx.output_activation in _BOUNDED or d.y_min.size == 0:
        return []
    y_absmax = float(max(np.max(np.abs(d.y_min)), np.max(np.abs(d.y_max))))
    if y_absmax <= UNSCALED_MAX:
        return []
    at_base = probes.final_loss >= 0.95 * baseline(ctx)
    harm = probes.diverged is not None or at_base
    severity = ERROR if harm else WARNING if y_absmax > UNSCALED_SEVERE else NOTE
    return [
        UNSCALED_TARGETS.finding(
            severity,
            f"targets reach |y| = {y_absmax:.3g} (mean {float(np.mean(probes.probe_target)):.3g}"
            f", largest std {float(np.max(d.y_std)):.3g}) while the output starts near unit "
            "scale",
            evidence={
                "max_abs_target": y_absmax,
                "max_target_std": float(np.max(d.y_std)),
                "final_loss": probes.final_loss,
                "baseline": baseline(ctx),
            },
            why=f"an initialised net outputs values of about unit size; reaching targets of "
            f"about {y_absmax:.3g} takes output weights about that many times larger, which "
            "small steps do not reach in the budget, while the large errors give large "
            "gradients that make larger steps overshoot",
            fix="standardise the targets (subtract their mean, divide by their std) and undo "
            "it on the predictions",
            score=min(1.0, np.log10(y_absmax) / 4),
        )
    ]


def _classes(probes: Probes, ctx: Context) -> tuple[np.ndarray, np.ndarray | None]:
    """The predicted and the true class of each unit of the loss on the probe rows (a sample;
    each element of a 0/1 target row: a pixel, a label); the true classes are None where the
    targets do not line up with the predictions."""
    P, T = probes.probe_output, probes.probe_target
    aligned = T.shape == P.shape
    if ctx.task == BINARY or P.shape[1] == 1:
        return (P > 0.5).astype(int).ravel(), np.round(T).astype(int).ravel() if aligned else None
    return P.argmax(axis=1), T.argmax(axis=1) if aligned else None


def class_imbalance(probes: Probes, ctx: Context) -> list[Finding]:
    counts = ctx.data.class_counts
    if counts is None or counts.sum() == 0 or ctx.task not in (CLASSIFICATION, BINARY):
        return []
    share = float(counts.max() / counts.sum())
    if share < IMBALANCE_SHARE or np.count_nonzero(counts) < 2:
        return []
    majority = int(np.argmax(counts))
    predicted, true = _classes(probes, ctx)
    on_majority = float(np.mean(predicted == majority))
    # the minority's units the net does not put in the majority class: a healthy net on a
    # mask with 1% foreground predicts background for 99% of pixels, and still finds the rest
    minority = predicted[true != majority] if true is not None else predicted[:0]
    escaped = float(np.mean(minority != majority)) if minority.size else math.nan
    collapsed = on_majority >= MAJORITY_PREDICTED and not escaped > MINORITY_FOUND
    units = f"{ctx.structure.unit}s"
    return [
        CLASS_IMBALANCE.finding(
            ERROR if collapsed else NOTE,
            f"class {majority} holds {share:.0%} of the {units}"
            + (f" and the net predicts it for {on_majority:.0%} of them" if collapsed else ""),
            evidence={
                "majority_class": majority,
                "majority_share": share,
                "predicted_majority_share": on_majority,
                "minority_found_share": escaped,
                "class_counts": counts.tolist(),
            },
            why="predicting the majority class for everything already scores "
            f"{share:.0%} accuracy and sits near the loss minimum of a constant, so the "
            "minority classes give too little gradient to move away from it",
            fix="weight the loss by inverse class frequency, or oversample the minority "
            "classes; judge the model by per-class recall, not accuracy",
            score=share if collapsed else share / 2,
        )
    ]


# --- the changes the trials make ---

# the largest class count read off integer labels given to BCE (more: not classes)
MAX_CLASSES = 1000


def _range_change(f: Finding, ctx: Context) -> Change | None:
    if f is not None and str(f.evidence.get("case", "")).startswith("bce-"):
        return _loss_change(f, ctx)  # the labels mapped to {0, 1}, or MSE on real values
    out = ctx.output_activation
    return None if out == "identity" else ReplaceOutput("identity", replaced=out)


def label_classes(ctx: Context) -> int:
    """How many classes one column of small non-negative integer labels names (0: not labels)."""
    d = ctx.data
    if not d.y_integer or d.y_min.size != 1 or d.y_min.min() < 0:
        return 0
    top = int(d.y_max.max())
    return top + 1 if 2 <= top < MAX_CLASSES else 0


def _loss_change(f: Finding, ctx: Context) -> Change | None:
    case = f.evidence.get("case")
    out = ctx.output_activation
    if case == "softmax-before-cross-entropy" and out == "softmax":
        return RemoveOutputActivation("Softmax")
    if case == "softmax-one-output" and out == "softmax":
        return ReplaceOutput("sigmoid", replaced="softmax")
    if case == "bce-two-labels-outside-unit-interval":
        return MapTargets(float(ctx.data.y_min.min()), float(ctx.data.y_max.max()))
    if case == "bce-targets-outside-unit-interval":
        # labels 0..9 are ten classes, not a quantity: what an expert changes is the loss
        classes = label_classes(ctx)
        return ReplaceLoss("cross_entropy", classes) if classes else ReplaceLoss("mse")
    if case == "bce-without-sigmoid":
        return ReplaceOutput("sigmoid")
    return None


# --- the records ---

MISSING_NONLINEARITY = Rule(
    code="missing-nonlinearity",
    kind=CAUSE,
    tier=0,
    meaning="consecutive Dense layers: the whole net is affine",
    sentence=(
        "two Dense layers follow each other with no activation between them, so your whole network "
        "can only draw straight lines (an affine map)"
    ),
    detect=missing_nonlinearity,
    change=lambda f, ctx: InsertActivation("relu"),
    fix="insert the activation",
    needs=frozenset({TARGETS}),
    explains=("insufficient-capacity",),
    plots=("loss",),
)

WRONG_LOSS_FOR_TARGETS = Rule(
    code="wrong-loss-for-targets",
    kind=CAUSE,
    tier=0,
    meaning="the loss does not fit the targets or the output",
    sentence=(
        "the loss you chose does not fit your targets or your output layer ({case}), so its minimum"
        " is not the answer you want|the loss you chose does not fit your targets or your output "
        "layer, so its minimum is not the answer you want"
    ),
    detect=wrong_loss_for_targets,
    change=_loss_change,
    fix="matching loss/output",
    needs=frozenset({TARGETS}),
    explains=("targets-out-of-range", "insufficient-capacity"),
)

TARGETS_OUT_OF_RANGE = Rule(
    code="targets-out-of-range",
    kind=CAUSE,
    tier=0,
    meaning="targets the output activation cannot reach",
    sentence=(
        "{share_outside} of your targets lie outside what your output layer can produce, so the "
        "network can never reach them|some of your targets lie outside what your output layer can "
        "produce, so the network can never reach them"
    ),
    detect=targets_out_of_range,
    change=_range_change,
    fix="identity output",
    needs=frozenset({TARGETS}),
    explains=("insufficient-capacity",),
)

CONSTANT_INPUTS = Rule(
    code="constant-inputs",
    kind=CAUSE,
    tier=0,
    meaning="features or whole inputs have no variance",
    sentence=(
        "{constant_features} of your {features} input features never change, so the network cannot "
        "learn anything from them|some of your input features never change, so the network cannot "
        "learn anything from them"
    ),
    detect=constant_inputs,
    needs=frozenset({TARGETS}),
    explains_if_severe=("no-signal", "dead-units"),
)

CONSTANT_TARGETS = Rule(
    code="constant-targets",
    kind=CAUSE,
    tier=0,
    meaning="every target (label) is the same value",
    sentence=(
        "every target in your data is the same value, so there is nothing to learn beyond that one "
        "number"
    ),
    detect=constant_targets,
    needs=frozenset({TARGETS}),
    plots=("output-spread",),
)

UNSCALED_INPUTS = Rule(
    code="unscaled-inputs",
    kind=CAUSE,
    tier=1,
    meaning="inputs far from unit scale",
    sentence=(
        "your inputs are far from the usual scale (up to {max_abs_input}), which pushes units to "
        "their limits and makes steps too big or too small|your inputs are far from the usual "
        "scale, which pushes units to their limits and makes steps too big or too small"
    ),
    detect=unscaled_inputs,
    change=lambda f, ctx: Standardize("inputs"),
    fix="standardise inputs",
    needs=frozenset({TARGETS}),
    explains=("saturated-units", "vanishing-gradients", "exploding-gradients", "lr-too-high"),
    plots=("activations", "gradients"),
)

UNSCALED_TARGETS = Rule(
    code="unscaled-targets",
    kind=CAUSE,
    tier=1,
    meaning="regression targets far from unit scale",
    sentence=(
        "your targets are far from the usual scale (up to {max_abs_target}), so the errors and the "
        "steps they cause are huge|your targets are far from the usual scale, so the errors and the"
        " steps they cause are huge"
    ),
    detect=unscaled_targets,
    change=lambda f, ctx: Standardize("targets"),
    fix="standardise targets",
    needs=frozenset({TARGETS}),
    explains=("exploding-gradients", "lr-too-high", "lr-too-low", "dead-units", "saturated-units"),
    plots=("loss", "gradients"),
    terms=("baseline",),
)

CLASS_IMBALANCE = Rule(
    code="class-imbalance",
    kind=CAUSE,
    tier=1,
    meaning="one class dominates and the net predicts only it",
    sentence=(
        "one class makes up {majority_share} of your data; the network predicts it for "
        "{predicted_majority_share} of it and finds {minority_found_share} of the rest|one class "
        "dominates your data"
    ),
    detect=class_imbalance,
    needs=frozenset({TARGETS}),
    plots=("output-spread",),
)

RULES = (
    MISSING_NONLINEARITY,
    WRONG_LOSS_FOR_TARGETS,
    TARGETS_OUT_OF_RANGE,
    CONSTANT_INPUTS,
    CONSTANT_TARGETS,
    UNSCALED_INPUTS,
    UNSCALED_TARGETS,
    CLASS_IMBALANCE,
)
