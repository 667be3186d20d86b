"""A rule is one record: everything the doctor knows about one finding code, in one place.

Each rule family (``nndoctor.doctor.rules.<family>``) defines its detection functions and, at
the bottom, one :class:`Rule` per code. Every table that used to sit beside the rules is derived
from these records: the codes and their causal links (:mod:`nndoctor.doctor.codes`), the fixes
the trials try (:data:`nndoctor.doctor.trials.FIXES`), the plain words and plots of the
renderers (:mod:`nndoctor.render.plain`), the rules a run without targets can use
(:func:`nndoctor.doctor.rules.select`) and the README's table of findings
(``tools/findings_table.py``). ``docs/architecture.md`` shows how to add one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nndoctor.doctor.changes import Change
from nndoctor.doctor.finding import KINDS, Finding
from nndoctor.doctor.schema import Context, Probes

Detect = Callable[[Probes, Context], list[Finding]]
# the change a trial makes to prove the fix of a finding (None: none applies to this one)
ChangeFor = Callable[[Finding, Context], Change | None]

# what a rule may need beyond the probes: the data's targets (a watched loop may never see
# them) and the facts of the training loop (recorded by a backend that sees the loop: which
# parameters got gradients, the mode, the learning rate at every step, the loss's shapes)
TARGETS = "targets"
LOOP = "loop"
NEEDS = (TARGETS, LOOP)


@dataclass(frozen=True)
class Rule:
    """One finding code and how the doctor finds, explains and tries to fix it.

    Attributes
    ----------
    code : str
        The stable code, kebab-case (``"dead-units"``).
    kind : {"cause", "symptom", "info"}
    tier : int
        Causal tier: lower is closer to the root (0: a broken setup no training fixes; 1:
        causes that explain tier-2 states of units and gradients). Symptoms rank the same way.
    meaning : str
        One line: what the code means (the codes table, the README).
    sentence : str
        What the user sees and what it means, in plain words; ``{name}`` is an evidence value,
        and the text after ``|`` is said when a value it names is missing.
    detect : callable ``(probes, context) -> list[Finding]``
        The detection function; it makes its findings with :meth:`finding`.
    change : callable ``(finding, context) -> Change or None``, optional
        The change a trial makes to prove the fix (None: the code has no trial).
    fix : str
        The fix in a few words (the README's table); each finding says it in full.
    needs : frozenset of {"targets", "loop"}
        What the rule reads beyond the probes; a run that lacks it skips the rule.
    refutable : bool
        A cause read off the training dynamics (sizes of steps, gradients, unit states): a
        trial whose fix did not help at all is evidence against it, so it ranks after the
        causes that were confirmed or not tried.
    explains : tuple of str
        Codes this root accounts for when both are found (it ranks first and is at least as
        severe), in the order its finding lists them.
    explains_if_severe : tuple of str
        Codes it accounts for only when its own finding is a warning or an error (a few
        constant features among many are harmless by nature).
    subsumes : tuple of str
        Vaguer symptoms this one makes redundant (dropped when both are found).
    plots : tuple of str
        The plots (``nndoctor.plot.PLOTS``) that show its evidence, best first.
    terms : tuple of str
        Glossary terms linked from its text (``nndoctor.render.plain.GLOSSARY``).
    labels : mapping of str to str
        Plain words for the evidence keys this rule alone writes (the renderers' ``LABELS``
        hold the shared ones): words first, the doctor's name for it in parentheses after.
    """

    code: str
    kind: str
    tier: int
    meaning: str
    sentence: str
    detect: Detect
    change: ChangeFor | None = None
    fix: str = ""
    needs: frozenset[str] = field(default_factory=frozenset)
    refutable: bool = False
    explains: tuple[str, ...] = ()
    explains_if_severe: tuple[str, ...] = ()
    subsumes: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.code}: kind must be one of {KINDS}, got {self.kind!r}")
        unknown = set(self.needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"{self.code}: unknown needs {sorted(unknown)}; known: {NEEDS}")

    def finding(
        self,
        severity: str,
        title: str,
        *,
        evidence: dict[str, Any] | None = None,
        why: str = "",
        fix: str = "",
        score: float = 1.0,
    ) -> Finding:
        """A finding of this rule's code and kind."""
        return Finding(
            self.code,
            severity,
            title,
            evidence=evidence if evidence is not None else {},
            why=why,
            fix=fix,
            score=score,
            kind=self.kind,
            rule=self,
        )
