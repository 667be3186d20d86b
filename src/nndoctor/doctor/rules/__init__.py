"""Rules: each is a function ``(probes, context) -> list[Finding]``; one module per family.

A rule reads only a :class:`~nndoctor.doctor.probes.Probes` and a
:class:`~nndoctor.doctor.context.Context`, never a model, so the same rules judge any source.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nndoctor.doctor.context import Context
from nndoctor.doctor.probes import Probes
from nndoctor.doctor.report import Finding, rank
from nndoctor.doctor.rules import curve, data, gradients, setup, units, values

Rule = Callable[[Probes, Context], list[Finding]]

RULES: tuple[Rule, ...] = (
    values.RULES + setup.RULES + units.RULES + gradients.RULES + curve.RULES + data.RULES
)


def run_rules(probes: Probes, context: Context, rules: tuple[Rule, ...] = RULES) -> list[Finding]:
    """All findings of ``rules``, ranked (see :func:`nndoctor.doctor.report.rank`)."""
    findings: list[Finding] = []
    # a diverging run leaves huge numbers in the probes: overflow to inf is the right answer
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for rule in rules:
            findings.extend(rule(probes, context))
    return rank(findings)
