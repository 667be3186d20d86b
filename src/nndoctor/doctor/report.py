"""Findings and the report: what was found, the numbers behind it, why, and what to change."""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nndoctor._files import write_text_atomic
from nndoctor.doctor.codes import (
    CAUSE,
    CODES,
    EXPLAINS,
    EXPLAINS_IF_SEVERE,
    INFO,
    KINDS,
    NOTE,
    REFUTABLE,
    SEVERITIES,
    SUBSUMES,
)


@dataclass
class Finding:
    """One verdict of the doctor.

    Attributes
    ----------
    code : str
        Stable code from :data:`nndoctor.doctor.codes.CODES` (``"symmetric-units"``, ...).
    severity : {"error", "warning", "info"}
    title : str
        One line, with the decisive numbers.
    evidence : dict of str to number, str or list
        The named numbers that support the verdict.
    why : str
        How this cause produces the symptom.
    fix : str
        What to change, concretely.
    score : float
        Strength of the evidence in [0, 1], used to rank findings of the same tier.
    confirmed : bool or None
        True when a trial of the fix beat seed-to-seed noise, False when it did not, None
        when no trial ran.
    trial : dict or None
        ``change``, ``metric``, ``loss_before``, ``loss_after``, ``noise``, ``budget`` ...
    explains : list of str
        Codes of other findings this one accounts for.
    """

    code: str
    severity: str
    title: str
    evidence: dict[str, Any] = field(default_factory=dict)
    why: str = ""
    fix: str = ""
    score: float = 1.0
    confirmed: bool | None = None
    trial: dict[str, Any] | None = None
    explains: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown finding code {self.code!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    @property
    def kind(self) -> str:
        """``"cause"``, ``"symptom"`` or ``"info"``."""
        return CODES[self.code].kind

    @property
    def refuted(self) -> bool:
        """A cause read off the training dynamics (``codes.REFUTABLE``) whose trial ran and
        clearly did not help: its verdict is ``"refuted"`` (paired gains below the least gain
        worth reporting, or a changed run that diverged). A trial without a verdict (an older
        report) is refuted when the loss after the fix is no lower (or not finite)."""
        if self.code not in REFUTABLE or self.confirmed is not False or not self.trial:
            return False
        if "verdict" in self.trial:
            return self.trial["verdict"] == "refuted"
        return not self.trial["loss_after"] < self.trial["loss_before"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "evidence": _plain(self.evidence),
            "why": self.why,
            "fix": self.fix,
            "score": float(self.score),
            "confirmed": self.confirmed,
            "trial": _plain(self.trial),
            "explains": list(self.explains),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        keys = ("code", "severity", "title", "evidence", "why", "fix", "score", "confirmed")
        return cls(**{k: d[k] for k in keys}, trial=d.get("trial"), explains=d.get("explains", []))


def _plain(value: Any) -> Any:
    """JSON-ready copy: NumPy scalars and arrays become Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        # JSON has no NaN or inf; a string keeps the fact visible
        return value if math.isfinite(value) else str(value)
    return value


_SEVERITY_ORDER = {s: i for i, s in enumerate(SEVERITIES)}
_KIND_ORDER = {k: i for i, k in enumerate(KINDS)}


def rank(findings: list[Finding]) -> list[Finding]:
    """Causes first, then symptoms, then information; roots before what they explain.

    A root cause found together with a consequence it explains (``codes.EXPLAINS``) is raised
    to the consequence's severity and lists it in ``explains``; a vague symptom subsumed by a
    more specific one (``codes.SUBSUMES``) is dropped. Links in ``codes.EXPLAINS_IF_SEVERE``
    hold only for a root rated above info.

    Trial verdicts outweigh thresholds: causes whose trial was confirmed come first, then
    those not tried or whose trial was inconclusive, then those refuted by their trial
    (``Finding.refuted``). A root that explains a confirmed consequence ranks with the
    confirmed ones (unless its own trial refuted it): the consequence's fix works, the root
    is why it was needed. A code found several times (one finding per layer) keeps every
    finding. Within a verdict group the order is explanation depth, severity, causal tier,
    then score.
    """
    found = {f.code for f in findings}
    kept = [f for f in findings if not any(s in found and v == f.code for s, v in SUBSUMES)]
    # a code found more than once (dead units in two layers) keeps every finding; its
    # strongest one stands for the code in the causal links
    top: dict[str, Finding] = {}
    for f in kept:
        if f.code not in top or _strength(f) < _strength(top[f.code]):
            top[f.code] = f

    def linked(root: str, consequence: str) -> bool:
        if root not in top or consequence not in top:
            return False
        # some roots at info level are harmless by nature (4 blank corner pixels of 64)
        return top[root].severity != NOTE or (root, consequence) not in EXPLAINS_IF_SEVERE

    for root, consequence in EXPLAINS:
        if linked(root, consequence):
            r, c = top[root], top[consequence]
            if _SEVERITY_ORDER[c.severity] < _SEVERITY_ORDER[r.severity]:
                r.severity = c.severity
            if consequence not in r.explains:
                r.explains.append(consequence)
    # a root must come before what it explains even across severities: sort by the
    # explanation depth first (roots have depth 0), then severity, tier, score
    depth = {code: 0 for code in top}
    for _ in range(len(EXPLAINS)):
        for root, consequence in EXPLAINS:
            if linked(root, consequence):
                depth[consequence] = max(depth[consequence], depth[root] + 1)

    # 0: confirmed, 1: not tried or inconclusive, 2: refuted; a root takes the best group
    # of what it explains, through chains of links
    group = {code: 2 if f.refuted else 0 if f.confirmed else 1 for code, f in top.items()}
    for _ in range(len(EXPLAINS)):
        for root, consequence in EXPLAINS:
            if linked(root, consequence) and not top[root].refuted:
                group[root] = min(group[root], group[consequence])

    def key(f: Finding) -> tuple:
        sev = _SEVERITY_ORDER[f.severity]
        verdict = 2 if f.refuted else min(group[f.code], 0 if f.confirmed else 1)
        return (_KIND_ORDER[f.kind], verdict, depth[f.code], sev, CODES[f.code].tier, -f.score)

    return sorted(kept, key=key)


def _strength(f: Finding) -> tuple[int, float]:
    return _SEVERITY_ORDER[f.severity], -f.score


@dataclass
class Report:
    """What the doctor found, ranked, with everything it measured.

    Attributes
    ----------
    findings : list of Finding
        Causes first (root causes before what they explain), then symptoms, then information.
    summary : dict
        The run: final loss, steps, budget, loss and optimiser names.
    bounds : dict
        Achievable losses in the user's units (constant baseline, rank-k codes, least squares,
        predictability).
    preflight : dict
        Loss at initialisation, zeroed-input baseline, tiny-batch overfit.
    probes : dict
        The recorded probe series (NumPy arrays) for plots; left out of ``to_dict``.
    """

    findings: list[Finding]
    summary: dict[str, Any] = field(default_factory=dict)
    bounds: dict[str, Any] = field(default_factory=dict)
    preflight: dict[str, Any] = field(default_factory=dict)
    probes: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def codes(self) -> list[str]:
        """Codes of all findings, in report order."""
        return [f.code for f in self.findings]

    @property
    def causes(self) -> list[Finding]:
        """Cause findings in rank order (the root cause first)."""
        return [f for f in self.findings if f.kind == CAUSE]

    def __getitem__(self, code: str) -> Finding:
        for f in self.findings:
            if f.code == code:
                return f
        raise KeyError(f"no finding {code!r}; found {self.codes}")

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": [f.to_dict() for f in self.findings],
            "summary": _plain(self.summary),
            "bounds": _plain(self.bounds),
            "preflight": _plain(self.preflight),
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as JSON text; also written to ``path`` (atomically) when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            write_text_atomic(path, text + "\n")
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        return cls(
            findings=[Finding.from_dict(f) for f in d["findings"]],
            summary=d.get("summary", {}),
            bounds=d.get("bounds", {}),
            preflight=d.get("preflight", {}),
        )

    def __str__(self) -> str:
        s = self.summary
        lines = ["nndoctor report"]
        if s:
            lines.append(
                f"  trained {s.get('epochs_run', '?')} epochs ({s.get('steps', '?')} steps), "
                f"final loss {_num(s.get('final_loss'))}"
            )
        if not self.findings:
            lines.append("  No problem found: training looks healthy.")
        heads = {CAUSE: "Causes", "symptom": "Symptoms", INFO: "Information"}
        for kind in KINDS:
            group = [f for f in self.findings if f.kind == kind]
            if not group:
                continue
            lines.append(f"{heads[kind]}:")
            for i, f in enumerate(group, 1):
                lines.extend(_finding_lines(i, f))
        if self.bounds.get("text"):
            lines += textwrap.wrap(
                f"Bounds: {self.bounds['text']}", TEXT_WIDTH, subsequent_indent="  "
            )
        return "\n".join(lines)


def _num(x: Any) -> str:
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | float | np.number):
        return str(x)
    if isinstance(x, int | np.integer):
        return str(int(x))
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return str(x)
    return f"{x:.4g}" if 1e-3 <= abs(x) < 1e5 else f"{x:.2e}"


# the terminal text wraps at this width, continuation lines indented under their label
TEXT_WIDTH = 100


def _field(label: str, text: str) -> list[str]:
    """``label: text`` wrapped to TEXT_WIDTH, continuation lines indented under the text."""
    head = f"     {label}: "
    return textwrap.wrap(
        text, TEXT_WIDTH, initial_indent=head, subsequent_indent=" " * len(head)
    ) or [head.rstrip()]


def _finding_lines(i: int, f: Finding) -> list[str]:
    tag = {True: " [confirmed]", False: " [not confirmed]", None: ""}[f.confirmed]
    head = f"  {i}. [{f.severity}] "
    lines = textwrap.wrap(
        f"{f.code}: {f.title}{tag}",
        TEXT_WIDTH,
        initial_indent=head,
        subsequent_indent=" " * len(head),
    )
    if f.evidence:
        lines += _field("evidence", ", ".join(f"{k} {_value(v)}" for k, v in f.evidence.items()))
    if f.why:
        lines += _field("why", f.why)
    if f.fix:
        lines += _field("fix", f.fix)
    if f.trial:
        t = f.trial
        lines += _field(
            "trial",
            f"{t['change']}: {t.get('metric', 'loss')} {_num(t['loss_before'])} -> "
            f"{_num(t['loss_after'])} (seed-to-seed noise {_num(t['noise'])}; "
            f"{t.get('budget', '')})",
        )
    if f.explains:
        lines += _field("explains", ", ".join(f.explains))
    return lines


def _value(v: Any) -> str:
    if isinstance(v, list | tuple | np.ndarray):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return _num(v)
