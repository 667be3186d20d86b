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

# evidence key -> label a reader understands (keys not listed are shown with _ as spaces)
LABELS: dict[str, str] = {
    "layer": "layer",
    "units": "units built",
    "effective_units": "units that differ",
    "groups": "identical unit groups",
    "activation_rank": "rank of the layer's activations",
    "identical_at_init": "identical from the start",
    "constant_init": "all weights started at the same value",
    "initial_weight": "initial weight",
    "final_loss": "final loss",
    "baseline": "constant baseline",
    "ratio": "ratio",
    "lr": "learning rate",
    "suggested_lr": "suggested learning rate",
    "effective_rank": "effective rank",
    "bottleneck_units": "bottleneck units",
    "explained_share": "variance explained by the bottleneck",
    "components": "components of the data",
    "dead_share": "share of dead units",
    "saturated_share": "share saturated",
    "output_std": "spread of the outputs",
    "target_std": "spread of the targets",
    "mean_output": "mean output",
    "max_rel_error": "max relative error",
    "finite_difference": "finite differences",
    "analytic": "your gradient",
}

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


def label(key: str) -> str:
    """Evidence key -> a label a reader understands (``rank_3_bound`` -> ``rank-3 bound``)."""
    if key in LABELS:
        return LABELS[key]
    parts = key.split("_")
    if len(parts) == 3 and parts[0] == "rank" and parts[2] == "bound":
        return f"rank-{parts[1]} bound"
    return key.replace("_", " ")


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
        evidence=[(label(k), fmt_evidence(k, v)) for k, v in finding.evidence.items()],
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
    if not report.findings:
        return "No problem found: training looks healthy."
    if not causes:
        return finding_sentence(report.findings[0])
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
    """``trained 1000 epochs (10000 steps) with SGD (lr 0.05) on sse: final loss 2.282``."""
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
        hyper = ", ".join(f"{k} {fmt(v)}" for k, v in opt.items() if k == "lr")
        parts.append(f"with {opt['name']}" + (f" ({hyper})" if hyper else ""))
    if s.get("loss"):
        parts.append(f"on {s['loss']} loss")
    text = " ".join(parts)
    if "final_loss" in s:
        text += f"{': f' if text else 'F'}inal loss {fmt(s['final_loss'])}"
    return text
