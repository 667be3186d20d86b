"""Rules: each is a function ``(probes, context) -> list[Finding]``; one module per family.

A rule reads only a :class:`~nndoctor.doctor.schema.Probes` and a
:class:`~nndoctor.doctor.schema.Context`, never a model, so the same rules judge any source.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nndoctor.doctor.report import Finding, rank
from nndoctor.doctor.rules import curve, data, gradients, setup, torch_loop, units
from nndoctor.doctor.schema import Context, Probes

Rule = Callable[[Probes, Context], list[Finding]]

RULES: tuple[Rule, ...] = (
    setup.RULES + torch_loop.RULES + units.RULES + gradients.RULES + curve.RULES + data.RULES
)
# a watched loop whose targets the hooks never saw: the rules that read no targets or data
RULES_WITHOUT_TARGETS: tuple[Rule, ...] = (
    torch_loop.RULES
    + units.RULES
    + gradients.RULES
    + (curve.diverged, curve.oscillating_loss, curve.loss_plateau)
)


def run_rules(probes: Probes, context: Context, rules: tuple[Rule, ...] = RULES) -> list[Finding]:
    """All findings of ``rules``, ranked (see :func:`nndoctor.doctor.report.rank`)."""
    findings: list[Finding] = []
    # a diverging run leaves huge numbers in the probes: overflow to inf is the right answer
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for rule in rules:
            findings.extend(rule(probes, context))
    return rank(findings)
