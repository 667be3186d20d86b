"""Every rule of the doctor, one record each (:class:`~nndoctor.doctor.rule.Rule`), by family.

A rule reads only a :class:`~nndoctor.doctor.schema.Probes` and a
:class:`~nndoctor.doctor.schema.Context`, never a model, so the same rules judge any source.
Each family module ends with its records; ``RULES`` is all of them in the order they run (the
order breaks ties in the ranking).
"""

from __future__ import annotations

import numpy as np

from nndoctor.doctor.finding import Finding
from nndoctor.doctor.rule import Rule
from nndoctor.doctor.rules import (
    curve,
    data,
    gradients,
    numerics,
    setup,
    stability,
    torch_loop,
    units,
    values,
)
from nndoctor.doctor.schema import Context, Probes

RULES: tuple[Rule, ...] = (
    values.RULES
    + numerics.RULES
    + setup.RULES
    + torch_loop.RULES
    + units.RULES
    + gradients.RULES
    + stability.RULES
    + curve.RULES
    + data.RULES
)


def select(have: frozenset[str] | set[str], rules: tuple[Rule, ...] = RULES) -> tuple[Rule, ...]:
    """The rules whose needs (:data:`nndoctor.doctor.rule.NEEDS`) the run has: ``have`` holds
    ``"targets"`` when the targets were seen, ``"loop"`` when the loop's facts were recorded."""
    return tuple(r for r in rules if r.needs <= have)


def available(probes: Probes, have_targets: bool = True) -> frozenset[str]:
    """What a recorded run offers the rules beyond its probes."""
    out = set()
    if have_targets:
        out.add("targets")
    if probes.loop is not None:
        out.add("loop")
    return frozenset(out)


def run_rules(probes: Probes, context: Context, rules: tuple[Rule, ...] = RULES) -> list[Finding]:
    """The findings of ``rules``, in rule order (unranked: see
    :func:`nndoctor.doctor.ranking.rank`)."""
    findings: list[Finding] = []
    # a diverging run leaves huge numbers in the probes: overflow to inf is the right answer
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for rule in rules:
            found = rule.detect(probes, context)
            if any(f.code != rule.code for f in found):
                raise AssertionError(f"rule {rule.code} returned {[f.code for f in found]}")
            findings.extend(found)
    return findings
