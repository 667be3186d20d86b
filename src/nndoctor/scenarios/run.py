"""Run the doctor on the catalog and score it: which root cause was found, per-code accuracy."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from nndoctor._progress import ProgressBar
from nndoctor.diagnosis import diagnose
from nndoctor.doctor import Report
from nndoctor.scenarios._base import Scenario
from nndoctor.scenarios.healthy import HEALTHY
from nndoctor.scenarios.sick import SICK

CATALOG: list[Scenario] = [*SICK, *HEALTHY]


@dataclass
class ScenarioResult:
    """The doctor's report on one scenario, and whether it is right.

    Attributes
    ----------
    scenario : Scenario
    report : nndoctor.doctor.Report
    seconds : float
        Wall time of ``diagnose`` (trials included when they ran).
    """

    scenario: Scenario
    report: Report
    seconds: float

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def expected(self) -> str | None:
        return self.scenario.expected

    @property
    def first_cause(self) -> str | None:
        """The code of the top-ranked cause, or None when the report names no cause."""
        causes = self.report.causes
        return causes[0].code if causes else None

    @property
    def cause_codes(self) -> list[str]:
        return [f.code for f in self.report.causes]

    @property
    def errors(self) -> list[str]:
        """Codes of the findings with severity ``"error"``."""
        return [f.code for f in self.report.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        """Sick: the expected cause is ranked first. Healthy: no finding is an error."""
        if self.scenario.healthy:
            return not self.errors
        return self.first_cause == self.expected


def run_scenario(scenario: Scenario, seed: int = 0, trials: bool = True) -> ScenarioResult:
    """Build ``scenario`` with ``seed`` and diagnose it.

    Parameters
    ----------
    scenario : Scenario
    seed : int
        Seeds the build (data and weights) and the doctor's own random choices.
    trials : bool
        Let the doctor re-run training with each automatic fix.
    """
    setup = scenario.build(seed)
    start = time.perf_counter()
    report = diagnose(
        setup.model, setup.X, setup.Y, **setup.training, seed=seed, trials=trials, progress=False
    )
    return ScenarioResult(scenario, report, time.perf_counter() - start)


def select(names: Sequence[str] | None = None) -> list[Scenario]:
    """The catalog's scenarios with these names (in catalog order), or all of them."""
    if names is None:
        return list(CATALOG)
    known = {s.name for s in CATALOG}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"unknown scenario(s) {', '.join(unknown)}; choose from: {', '.join(sorted(known))}"
        )
    wanted = set(names)
    return [s for s in CATALOG if s.name in wanted]


def run_catalog(
    seed: int = 0,
    names: Sequence[str] | None = None,
    progress: bool = False,
    trials: bool = True,
) -> list[ScenarioResult]:
    """Diagnose every scenario of the catalog (or those in ``names``) and return the results.

    Prints nothing unless ``progress`` is True (a progress bar on stderr).
    """
    scenarios = select(names)
    bar = ProgressBar(len(scenarios), "scenario", enabled=progress)
    results = []
    for i, scenario in enumerate(scenarios):
        results.append(run_scenario(scenario, seed=seed, trials=trials))
        bar.update(i + 1)
    bar.close()
    return results


def _ratio(hits: int, total: int) -> str:
    return f"{hits / total:.2f}" if total else "-"


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def format_table(results: Sequence[ScenarioResult]) -> str:
    """A plain-text table of the results, then precision and recall per cause code.

    For each code, "first" counts a scenario as predicting the code when it is the top-ranked
    cause, "any" when the code appears anywhere in the report. Healthy scenarios count as
    expecting no code, so any code found there is a false positive.
    """
    rows = [("scenario", "expected", "first cause found", "result", "seconds")]
    for r in results:
        if r.scenario.healthy:
            verdict = "ok" if r.ok else "FALSE ALARM: " + ", ".join(r.errors)
        else:
            verdict = "ok" if r.ok else "MISS"
        rows.append(
            (r.name, r.expected or "(healthy)", r.first_cause or "-", verdict, f"{r.seconds:.1f}")
        )
    sick = [r for r in results if not r.scenario.healthy]
    healthy = [r for r in results if r.scenario.healthy]
    lines = _columns(rows)
    lines.append("")
    lines.append(
        f"sick: {sum(r.ok for r in sick)}/{len(sick)} with the expected cause first; "
        f"healthy: {sum(r.ok for r in healthy)}/{len(healthy)} without an error finding"
    )
    expected_codes = {r.expected for r in sick if r.expected is not None}
    codes = sorted(expected_codes | {c for r in results for c in r.cause_codes})
    score = [("code", "expected", "first: precision", "recall", "any: precision", "recall")]
    for code in codes:
        expected = [r for r in results if r.expected == code]
        first = [r for r in results if r.first_cause == code]
        anywhere = [r for r in results if code in r.report.codes]
        score.append(
            (
                code,
                str(len(expected)),
                _ratio(sum(r.expected == code for r in first), len(first)),
                _ratio(sum(r.first_cause == code for r in expected), len(expected)),
                _ratio(sum(r.expected == code for r in anywhere), len(anywhere)),
                _ratio(sum(code in r.report.codes for r in expected), len(expected)),
            )
        )
    lines.append("")
    lines.extend(_columns(score))
    return "\n".join(lines)
