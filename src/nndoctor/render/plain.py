"""Words a beginner understands first, numbers second: one plain sentence per finding code,
readable evidence labels and values, the verdict line, and the glossary.

Everything the terminal, the HTML page and the notebook view print about a finding comes from
:func:`finding_view`, so the three never disagree. The sentence, glossary terms and plots of each
code come from its rule's record (``finding.rule``, :mod:`nndoctor.doctor.rules`).
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# evidence key -> what it is in plain words, then the name the doctor (and the JSON) gives it
# in parentheses where that name is a term of its own; a key not listed is shown with _ as
# spaces. One key can serve several findings (``ratio``: of the two numbers above it).
LABELS: dict[str, str] = {
    # units
    "layer": "layer",
    "units": "units built",
    "effective_units": "units that differ (effective units)",
    "groups": "identical unit groups",
    "activation_rank": "directions the layer's outputs use (activation rank)",
    "identical_at_init": "identical from the start (at init)",
    "constant_init": "every weight started at the same value (constant init)",
    "initial_weight": "the value every weight started at (constant init)",
    "dead_share": "units that output 0 for every input (dead share)",
    "dead_units": "dead units",
    "mean_bias_dead": "mean bias of the dead units",
    "mean_bias_alive": "mean bias of the live units",
    "mean_initial_bias_dead": "mean bias of the dead units at the start",
    "dead_from_start": "dead from the start",
    "killed_by_step": "dead by step",
    "saturated_share": "inputs of the activations beyond +-5 (saturated share)",
    "saturated_units": "most saturated units",
    # losses and what is achievable
    "final_loss": "final loss",
    "baseline": "loss of always predicting the mean (constant baseline)",
    "ratio": "ratio of the two above",
    "effective_rank": "directions really used (effective rank)",
    "bottleneck_units": "units in the narrowest layer (bottleneck)",
    "bottleneck_activation_rank": "directions the narrowest layer's outputs use (activation rank)",
    "explained_share": "variance of the data the bottleneck can keep (explained share)",
    "components": "directions of the data (principal components)",
    "components_needed": "directions needed for 90% of the variance (components)",
    "best_affine_loss": "best loss of a linear model (affine bound)",
    "whole_net_affine": "the whole network is a linear map (affine)",
    "consecutive_dense_pairs": "Dense layers with no activation between them",
    "loss_real": "loss on your inputs",
    "loss_zeroed": "loss with every input set to 0",
    "rows": "samples",
    "relative_change_last_half": "change of the loss over the last half of training",
    "sign_flip_share": "epochs where the loss turned back (sign flips)",
    "relative_amplitude": "typical change from one epoch to the next (relative amplitude)",
    "spikes": "epochs far above the best loss so far (spikes)",
    "output_std": "spread of the outputs across inputs (output std)",
    "target_std": "spread of the targets (target std)",
    "mean_output": "mean output",
    "first_nonfinite": "first value to become NaN or inf",
    "last_finite_loss": "last loss that was a number",
    # the data
    "held_out_skill": "how well simple models predict targets they did not see (held-out skill)",
    "shuffled_quantile": "skill that shuffled inputs reach 1 time in 100 (shuffled quantile)",
    "p_value": "chance of this skill if the inputs said nothing (p-value)",
    "best_model": "best simple model",
    "net_skill": "your network's skill on its own training data (net skill)",
    "best_heldout_skill": "best simple model's skill on data it did not see (held-out skill)",
    "knn_skill": "nearest-neighbour model's skill on data it did not see (k-NN skill)",
    "ridge_skill": "linear model's skill on data it did not see (ridge skill)",
    "hidden_widths": "units of each hidden layer",
    "target_order_correlation": "how alike neighbouring targets are (order correlation)",
    "loss_of_end_weights": "loss of the final weights on all the data",
    "last_epoch_batch_loss": "mean batch loss of the last epoch",
    "batches_per_epoch": "batches per epoch",
    "constant_features": "input features that never change",
    "constant_value": "value of the first of them",
    "feature_indices": "which features",
    "max_abs_input": "largest input value (max abs input)",
    "max_feature_std": "largest spread of a feature (max feature std)",
    "first_layer_saturated_share": "first layer's activation inputs beyond +-5 (saturated share)",
    "target_value": "the one target value",
    "max_abs_target": "largest target value (max abs target)",
    "max_target_std": "largest spread of a target (max target std)",
    "share_outside": "targets the output layer cannot produce (share outside)",
    "prediction_min": "lowest output",
    "prediction_max": "highest output",
    "majority_class": "most common class",
    "majority_share": "its share of the targets (majority share)",
    "predicted_majority_share": "outputs that predict it",
    "minority_found_share": "the other classes' targets predicted as anything but it",
    "class_counts": "samples of each class",
    "case": "what does not fit",
    "output_activation": "output activation",
    "target_min": "lowest target",
    "target_max": "highest target",
    # gradients and steps
    "lr": "learning rate",
    "suggested_lr": "learning rate to try",
    "first_to_last_rms_ratio": "first layer's gradient over the last layer's (RMS ratio)",
    "forward_shrink_at_init": "how much the signal shrinks through the layers at the start",
    "forward_growth_at_init": "how much the signal grows through the layers at the start",
    "first_layer_rms_grad": "first layer's typical gradient (RMS)",
    "last_layer_rms_grad": "last layer's typical gradient (RMS)",
    "small_init": "the weights started small",
    "depth": "layers",
    "initial_grad_to_weight": "gradient over weight size at the start (grad-to-weight)",
    "gradient_growth": "how much the gradients grew during training",
    "weight_growth": "how much the weights grew during training",
    "early_update_ratio": "early steps over the weights' size (update-to-weight ratio)",
    "first_update_ratio": "first step over the weights' size (update-to-weight ratio)",
    "median_update_ratio": "typical step over the weights' size (update-to-weight ratio)",
    "total_weight_change": "how far the weights moved in all (relative)",
    "grad_to_weight": "gradient over weight size (grad-to-weight)",
    "loss_improvement": "how much the loss went down (relative)",
    "diverged": "the loss became NaN or inf",
    "loss_grew": "the loss went up",
    "units_died": "units died",
    "failed": "parameters whose gradient is wrong",
    "worst_parameter": "worst parameter",
    "worst_index": "its worst element",
    "analytic": "your gradient there",
    "finite_difference": "the true gradient there (finite differences)",
    "max_rel_error": "largest relative error",
    # the PyTorch loop
    "parameters_without_gradient": "parameters that get no gradient",
    "share_of_parameters": "their share of all parameters",
    "backward_error": "error of the backward pass",
    "frozen": "frozen parameters",
    "not_in_optimizer": "parameters the optimiser does not hold",
    "requires_grad_false": "parameters with requires_grad=False",
    "output_layer_frozen": "the output layer is frozen",
    "prediction_shape": "shape of the predictions",
    "target_shape": "shape of the targets",
    "broadcast_shape": "shape the loss compared (broadcast)",
    "stale_checks": "checks that found last step's gradients still there (stale)",
    "leaked_checks": "checks that found gradients of another model's backward pass still there",
    "cut_term_steps": "probed steps whose loss added a term cut from this model",
    "steps_with_terms": "probed steps whose loss added several terms",
    "tensors_reached": "parameter tensors the cut term reached (another model's)",
    "eval_steps": "steps in eval() mode",
    "lr_start": "learning rate at the start",
    "lr_end": "learning rate at the end",
    "collapsed_at": "step where it reached about 0",
    "parameter": "parameter",
    "index": "element",
    "value": "value",
    "count": "NaN or inf values",
    "share": "share",
    "checks": "checks",
    # counts and names that say themselves
    "step": "step",
    "steps": "steps",
    "epoch": "epoch",
    "epochs": "epochs",
    "loss": "loss",
    "outputs": "outputs",
    "features": "input features",
    "samples": "samples",
}

# evidence shown in another key's row, as one point: key -> (that key, "{that} <sep> {this}")
JOINED: dict[str, tuple[str, str]] = {"skill_std": ("held_out_skill", "{} ± {}")}
# evidence that says nothing another key does not: left out when those keys all hold a
# value (a number that is not NaN, or any other value)
SAID_BY: dict[str, tuple[str, ...]] = {
    # the weight every unit started at says that they were constant and identical at init
    "constant_init": ("initial_weight",),
    "identical_at_init": ("initial_weight",),
    # the best of the two skills
    "best_heldout_skill": ("knn_skill", "ridge_skill"),
}
# numbers that exist only in some cases: left out when NaN (no such number) rather than
# shown as "n/a"
WHEN_KNOWN = frozenset({"initial_weight", "mean_bias_alive", "best_affine_loss"})


# glossary term -> (anchor, one-line definition); the long form is docs/glossary.md
GLOSSARY: dict[str, tuple[str, str]] = {
    "baseline": (
        "baseline",
        "the loss of always predicting the same value (the mean of the targets): a network "
        "that ignores its input can do this well and no better",
    ),
    "bound": (
        "bound",
        "the lowest loss any model of a given kind can reach on this data, computed exactly "
        "(for example by least squares or an SVD); training cannot beat it",
    ),
    "rank": (
        "rank",
        "how many independent directions a layer's outputs or a code uses; a rank-1 code "
        "behaves like one hidden unit",
    ),
    "effective rank": (
        "effective-rank",
        "how many directions of the data really carry its variance (a flat spectrum gives "
        "about all of them)",
    ),
    "symmetric units": (
        "symmetric-units",
        "units that start with identical weights get identical gradients and stay identical "
        "forever, so they act as one",
    ),
    "saturation": (
        "saturation",
        "a sigmoid or tanh unit whose input is far from 0 sits on the flat part of its curve, "
        "where its slope (and so its gradient) is almost 0",
    ),
    "dead unit": (
        "dead-unit",
        "a ReLU unit whose input is negative for every sample: it outputs 0 and gets no "
        "gradient, so it never recovers",
    ),
    "trial": (
        "trial",
        "the doctor re-trains your setup with one change (the fix) and checks that the loss "
        "improves by more than the seed-to-seed noise",
    ),
    "seed-to-seed noise": (
        "noise",
        "how much the final loss varies when only the random seed changes; a fix must beat it",
    ),
    "update-to-weight ratio": (
        "update-ratio",
        "the size of one step's change of a weight matrix divided by the matrix's size; about "
        "1e-3 is healthy, far below means too slow, far above too fast",
    ),
}


def fmt(value: Any) -> str:
    """A value as a reader wants it: 4 significant digits, ``yes``/``no`` for booleans,
    ``-`` for nothing, lists comma-separated; never Python's ``True`` or ``None``."""
    if value is None:
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        x = float(value)
        if math.isnan(x):
            return "n/a"
        if math.isinf(x):
            return "infinite" if x > 0 else "minus infinite"
        if x == 0:
            return "0"
        if x == int(x) and abs(x) < 1e6:
            return str(int(x))
        return f"{x:.4g}" if 1e-3 <= abs(x) < 1e5 else f"{x:.2e}"
    if isinstance(value, list | tuple | np.ndarray):
        items = list(value)
        if items and all(isinstance(v, list | tuple | np.ndarray) for v in items):
            return "; ".join("(" + ", ".join(fmt(v) for v in group) + ")" for group in items)
        return ", ".join(fmt(v) for v in items)
    if isinstance(value, dict):
        return ", ".join(f"{label(k)} {fmt(v)}" for k, v in value.items())
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return fmt(float(value))
    return str(value)


_SHARE_KEYS = ("share", "_share", "ratio_share")


def fmt_evidence(key: str, value: Any) -> str:
    """Evidence formatted for its meaning: shares as percentages, the rest with :func:`fmt`."""
    if (
        key.endswith("share")
        and isinstance(value, float | int | np.floating)
        and not isinstance(value, bool)
    ):
        return f"{float(value):.0%}"
    return fmt(value)


def label(key: str, rule: Any = None) -> str:
    """Evidence key -> what it is in plain words, the doctor's name after it
    (``held_out_skill`` -> ``how well simple models predict targets they did not see
    (held-out skill)``, ``rank_3_bound`` -> ``best loss of a 3-unit code (rank-3 bound)``);
    ``rule``: the record of the finding, whose ``labels`` name the keys it alone writes."""
    if rule is not None and key in rule.labels:
        return str(rule.labels[key])
    if key in LABELS:
        return LABELS[key]
    parts = key.split("_")
    if len(parts) == 3 and parts[0] == "rank" and parts[2] == "bound":
        return f"best loss of a {parts[1]}-unit code (rank-{parts[1]} bound)"
    return key.replace("_", " ")


def _known(value: Any) -> bool:
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return value is not None


def evidence_rows(evidence: dict[str, Any], rule: Any = None) -> list[tuple[str, str]]:
    """(label, value) of each point of a finding's evidence, once: a value joined to the row
    it qualifies (:data:`JOINED`: ``skill 0.02 ± 0.05``), rows another row already says
    left out (:data:`SAID_BY`), numbers that do not exist in this case left out
    (:data:`WHEN_KNOWN`)."""
    rows = []
    for key, value in evidence.items():
        if key in JOINED and JOINED[key][0] in evidence:
            continue
        if key in SAID_BY and all(k in evidence and _known(evidence[k]) for k in SAID_BY[key]):
            continue
        if key in WHEN_KNOWN and not _known(value):
            continue
        text = fmt_evidence(key, value)
        for extra, (into, template) in JOINED.items():
            if into == key and extra in evidence:
                text = template.format(text, fmt_evidence(extra, evidence[extra]))
        rows.append((label(key, rule), text))
    return rows


class _Evidence(dict):
    def __init__(self, evidence: dict[str, Any], extra: dict[str, Any]) -> None:
        super().__init__({**extra, **evidence})

    def __missing__(self, key: str) -> str:
        raise KeyError(key)


def _unit_count(n: Any) -> str:
    try:
        k = int(n)
    except (TypeError, ValueError):
        return fmt(n)
    return "one" if k == 1 else str(k)


def _percent(x: float) -> str:
    """0.000413 -> ``0.04%``, 0.25 -> ``25%``: two significant digits below 1%."""
    p = 100.0 * x
    return f"{p:.0f}%" if p >= 1 or p == 0 else f"{p:.2g}%"


def _in_sentence(key: str, value: Any) -> str:
    """A value inside a sentence: a list of numbers (one per output) becomes their mean."""
    if isinstance(value, list | tuple | np.ndarray) and len(value) > 1:
        try:
            return fmt(float(np.mean(np.asarray(value, dtype=float))))
        except (TypeError, ValueError):
            return fmt(value)
    return fmt_evidence(key, value)


def sentence(template: str | None, evidence: dict[str, Any], title: str = "") -> str:
    """The plain sentence of a finding from its rule's ``template`` (``{name}`` an evidence
    value, the text after ``|`` said when a value it names is missing); its title when there is
    no template."""
    text = template
    if text is None:
        return title
    template, _, fallback = text.partition("|")
    extra = {}
    for key, value in evidence.items():
        if key.startswith("rank_") and key.endswith("_bound"):
            extra.setdefault("bound", value)
            extra.setdefault("bottleneck", key.split("_")[1])
    values = {k: _in_sentence(k, v) for k, v in _Evidence(evidence, extra).items()}
    if isinstance(evidence.get("ratio"), int | float | np.number):
        values["ratio_pct"] = _percent(float(evidence["ratio"]))
    if "effective_units" in evidence:
        n = _unit_count(evidence["effective_units"])
        values["effective_units"] = f"{n} unit" if n == "one" else f"{n} units"
    try:
        out = string.Formatter().vformat(template, (), _Evidence(values, {}))
    except (KeyError, IndexError, ValueError):
        out = fallback or template.split("{")[0].rstrip(" (")
    return out[0].upper() + out[1:] + ("" if out.endswith(".") else ".")


def finding_sentence(finding: Any) -> str:
    """The plain sentence of a finding, from its rule's record (its title without one)."""
    rule = finding.rule
    return sentence(rule.sentence if rule is not None else None, finding.evidence, finding.title)


@dataclass
class FindingView:
    """What every renderer shows of one finding, already in words."""

    code: str
    kind: str
    severity: str
    sentence: str
    title: str
    evidence: list[tuple[str, str]]
    why: str
    fix: str
    confirmed: bool | None
    trial: str | None
    explains: list[str]
    plots: list[str] = field(default_factory=list)
    terms: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return {True: "confirmed", False: "not confirmed", None: ""}[self.confirmed]


def trial_text(trial: dict[str, Any] | None) -> str | None:
    """``re-initialise ...: loss 2.28 -> 1.55 (seed-to-seed noise 0; 600 of 1000 epochs)``."""
    if not trial:
        return None
    metric = trial.get("metric", "loss")
    noise = trial.get("noise")
    tail = [f"seed-to-seed noise {fmt(noise)}"] if noise is not None else []
    if trial.get("budget"):
        tail.append(str(trial["budget"]))
    extra = f" ({'; '.join(tail)})" if tail else ""
    return (
        f"{trial.get('change', 'the fix')}: {metric} {fmt(trial.get('loss_before'))} -> "
        f"{fmt(trial.get('loss_after'))}{extra}"
    )


def finding_view(finding: Any, available_plots: list[str] | None = None) -> FindingView:
    """Turn a :class:`~nndoctor.doctor.report.Finding` into the words every renderer shows.

    ``available_plots``: the plots the report has data for; a finding names only those."""
    code = finding.code
    rule = finding.rule  # the record of its code: words, plots, glossary terms
    wanted = rule.plots if rule is not None else ()
    plots = [p for p in wanted if available_plots is None or p in available_plots]
    terms = [(t, *GLOSSARY[t]) for t in (rule.terms if rule is not None else ())]
    return FindingView(
        code=code,
        kind=finding.kind,
        severity=finding.severity,
        sentence=finding_sentence(finding),
        title=finding.title,
        evidence=evidence_rows(finding.evidence, rule),
        why=finding.why,
        fix=finding.fix,
        confirmed=finding.confirmed,
        trial=trial_text(finding.trial),
        explains=list(finding.explains),
        plots=plots,
        terms=[(t, anchor, text) for t, anchor, text in terms],
    )


def verdict(report: Any) -> str:
    """The report in one line: the root cause in plain words, then its fix's trial.

    ``the 3 hidden units are one: all weights started at 0 - confirmed, re-initialise with
    xavier_uniform: 2.28 -> 1.55``
    """
    causes = [f for f in report.findings if f.kind == "cause"]
    if all(f.severity == "info" for f in report.findings):
        # notes (a few blank pixels, an info-level imbalance) are not a verdict on a healthy run
        notes = len(report.findings)
        return "No problem found: training looks healthy." + (
            f" ({notes} note{'s' if notes > 1 else ''} below.)" if notes else ""
        )
    if not causes:
        f = report.findings[0]
        return finding_sentence(f)
    f = causes[0]
    text = finding_sentence(f).rstrip(".")
    because = _because(f)
    if because:
        text += f": {because}"
    if f.confirmed is True and f.trial:
        t = f.trial
        text += (
            f" - confirmed: {t.get('change', 'the fix')} takes the {t.get('metric', 'loss')} "
            f"from {fmt(t.get('loss_before'))} to {fmt(t.get('loss_after'))}"
        )
    elif f.confirmed is False and f.trial:
        text += f" - not confirmed by its trial ({t_short(f.trial)})"
    return text + "."


def _because(finding: Any) -> str:
    """What caused the root cause, when the evidence says (the verdict's middle part)."""
    e = finding.evidence
    if finding.code == "symmetric-units" and e.get("constant_init") in (True, np.True_):
        value = e.get("initial_weight")
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return f"all their weights started at {fmt(value)}"
        return "all their weights started at the same value"
    return ""


def t_short(trial: dict[str, Any]) -> str:
    return f"{fmt(trial.get('loss_before'))} -> {fmt(trial.get('loss_after'))}"


def summary_line(report: Any) -> str:
    """``trained 1000 epochs (10000 steps) with SGD (lr 0.05) on sse loss: final loss 2.282``.

    A warm-up shows both rates (``lr 0.003 peak, 7.50e-05 at step 0``); updates a loop makes
    itself read ``with SGD by hand (lr 0.05)``, at the rate they imply; a run whose loss
    became NaN or inf ends ``final loss NaN (last finite 1.40e+31)``."""
    s = report.summary
    if not s:
        return ""
    parts = []
    if "epochs_run" in s and s.get("epochs_known", True):
        parts.append(f"trained {fmt(s['epochs_run'])} epochs")
        if "steps" in s:
            parts[-1] += f" ({fmt(s['steps'])} steps)"
    elif "steps" in s:  # a watched loop whose epochs were not seen
        parts.append(f"trained {fmt(s['steps'])} steps")
    opt = s.get("optimizer")
    if isinstance(opt, dict) and opt.get("name"):
        rate = _rate_words(opt)
        name = f"{opt['name']} by hand" if opt.get("by_hand") else opt["name"]
        parts.append(f"with {name}" + (f" ({rate})" if rate else ""))
    if s.get("loss"):
        parts.append(f"on {_loss_words(str(s['loss']))}")
    text = " ".join(parts)
    if "final_loss" in s:
        text += f"{': f' if text else 'F'}inal loss {_final_loss_words(s)}"
    return text


def _rate_words(opt: dict[str, Any]) -> str:
    """``lr 0.05``, or ``lr 0.003 peak, 7.50e-05 at step 0`` after a warm-up (the backend
    writes ``lr_first`` where the first step's rate was not the peak)."""
    if opt.get("lr") is None:
        return ""
    first = opt.get("lr_first")
    return f"lr {fmt(opt['lr'])}" + (f" peak, {fmt(first)} at step 0" if first is not None else "")


def _loss_words(kind: str) -> str:
    """``mse loss``, ``HuberLoss``, ``focal loss``; ``a function loss`` for a lambda (the
    backend names it ``function``), ``a function calling F.mse_loss``."""
    if kind == "function":
        return "a function loss"
    if kind.startswith("function calling "):
        return f"a {kind}"
    if kind.endswith(" plus other terms"):  # (a Dice term or a penalty added to it)
        return f"{_loss_words(kind.removesuffix(' plus other terms'))} plus other terms"
    return kind if kind.lower().endswith("loss") else f"{kind} loss"


def _final_loss_words(summary: dict[str, Any]) -> str:
    """The final loss; for a run whose loss became NaN or inf, what it ended on (``NaN or
    inf`` where the backend did not record it) and the last finite value (``final_loss`` is
    then the mean loss of the last finite steps)."""
    last = summary["final_loss"]
    if "nonfinite_final_loss" not in summary:
        return fmt(last)
    end = summary["nonfinite_final_loss"]
    if end is None:
        what = "NaN or inf"
    else:
        end = float(end)  # (read back from JSON: the string "nan", "inf" or "-inf")
        what = "NaN" if math.isnan(end) else "inf" if end > 0 else "-inf"
    if isinstance(last, int | float) and math.isfinite(last):
        return f"{what} (last finite {fmt(last)})"
    return what
