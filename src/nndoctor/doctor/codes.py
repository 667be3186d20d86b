"""The finding codes and their causal links, read off the rules' records.

Nothing here is written by hand: each rule's record (:class:`~nndoctor.doctor.rule.Rule`, at
the bottom of its family module in :mod:`nndoctor.doctor.rules`) says its code, kind, causal
tier, meaning, and which codes it explains or subsumes; these tables gather them.

A lower tier is closer to the root: a tier-0 cause (a broken setup that no training can fix)
explains tier-1 causes, which explain tier-2 ones (states of units and gradients that are
usually consequences). Symptoms are ranked the same way, most specific first.
``docs/findings.md`` documents every code: signal, threshold, why, false alarms.
"""

from __future__ import annotations

from nndoctor.doctor.finding import (
    CAUSE,
    ERROR,
    INFO,
    KINDS,
    NOTE,
    SEVERITIES,
    SYMPTOM,
    WARNING,
)
from nndoctor.doctor.rule import Rule
from nndoctor.doctor.rules import RULES

__all__ = [
    "CAUSE",
    "CODES",
    "ERROR",
    "EXPLAINS",
    "EXPLAINS_IF_SEVERE",
    "INFO",
    "KINDS",
    "NOTE",
    "REFUTABLE",
    "SEVERITIES",
    "SUBSUMES",
    "SYMPTOM",
    "WARNING",
]

# every code, in the order the rules run
CODES: dict[str, Rule] = {r.code: r for r in RULES}

# (root, consequence): when both are found, the root explains the consequence, so it ranks
# first and is at least as severe
EXPLAINS: tuple[tuple[str, str], ...] = tuple(
    (r.code, c) for r in RULES for c in (*r.explains, *r.explains_if_severe)
)
# links that hold only when the root's own rule rates it a warning or an error
EXPLAINS_IF_SEVERE: frozenset[tuple[str, str]] = frozenset(
    (r.code, c) for r in RULES for c in r.explains_if_severe
)
# causes a trial of their fix can refute (read off the training dynamics)
REFUTABLE: frozenset[str] = frozenset(r.code for r in RULES if r.refutable)
# (specific, vague): a more specific symptom makes a vaguer one redundant
SUBSUMES: tuple[tuple[str, str], ...] = tuple((r.code, c) for r in RULES for c in r.subsumes)


def _check() -> None:
    """Every code is unique and every link names a known code (an import-time check: a typo
    in a record fails at once, not when two findings happen to meet)."""
    if len(CODES) != len(RULES):
        seen: set[str] = set()
        dup = [r.code for r in RULES if r.code in seen or seen.add(r.code)]  # type: ignore[func-returns-value]
        raise ValueError(f"finding codes defined twice: {dup}")
    for a, b in (*EXPLAINS, *SUBSUMES):
        for code in (a, b):
            if code not in CODES:
                raise ValueError(f"rule {a} links to the unknown code {code!r}")


_check()
