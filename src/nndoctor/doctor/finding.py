"""A finding: one verdict of the doctor, as plain data (and the JSON form of any report value).

A finding is made by its rule's record (:meth:`nndoctor.doctor.rule.Rule.finding`), which sets
its ``code`` and ``kind``; the ranking and the renderers read the rest of the record through
:data:`nndoctor.doctor.codes.CODES`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # (the record imports this module: a reference at run time only)
    from nndoctor.doctor.rule import Rule

CAUSE = "cause"
SYMPTOM = "symptom"
INFO = "info"
KINDS = (CAUSE, SYMPTOM, INFO)

ERROR = "error"
WARNING = "warning"
NOTE = "info"
SEVERITIES = (ERROR, WARNING, NOTE)


@dataclass
class Finding:
    """One verdict of the doctor.

    Attributes
    ----------
    code : str
        Stable code of the rule that made it (``"symmetric-units"``, ...); see
        :data:`nndoctor.doctor.codes.CODES`.
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
    kind : {"cause", "symptom", "info"}
        The kind of its code (keyword only: the rule's record sets it).
    rule : Rule or None
        The record of its code (its plain words, plots and links for the renderers); set by
        the record that made it, or by the :class:`~nndoctor.doctor.report.Report` holding it.
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
    kind: str = field(kw_only=True)
    rule: Rule | None = field(default=None, kw_only=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "evidence": plain(self.evidence),
            "why": self.why,
            "fix": self.fix,
            "score": float(self.score),
            "confirmed": self.confirmed,
            "trial": plain(self.trial),
            "explains": list(self.explains),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        keys = ("code", "severity", "title", "evidence", "why", "fix", "score", "confirmed")
        return cls(
            **{k: d[k] for k in keys},
            trial=d.get("trial"),
            explains=d.get("explains", []),
            kind=d["kind"],
        )


def plain(value: Any) -> Any:
    """JSON-ready copy: NumPy scalars and arrays become Python numbers and lists; NaN and inf
    become the strings ``"nan"``, ``"inf"`` (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        # JSON has no NaN or inf; a string keeps the fact visible
        return value if math.isfinite(value) else str(value)
    return value


def json_text(value: Any, indent: str = "") -> str:
    """JSON indented by object, each list of numbers (a loss curve, a weight matrix) on one
    line: a 20 000-number matrix is one line of about 400 KB, not 20 000 lines."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {json_text(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return "[\n" + ",\n".join(inner + json_text(v, inner) for v in value) + f"\n{indent}]"
    return json.dumps(value)
