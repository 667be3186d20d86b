"""The doctor on a held-out set of real, non-MLP reports (``benchmarks/heldout_real/``, or the
second, third or fourth set with ``--set heldout_real2``, ``heldout_real3`` or ``heldout_real4``).

Runs every case's sick and fixed script under ``nndoctor run --quiet --json OUT script.py``, in
subprocesses (2 at a time, one BLAS / OpenMP thread each), reads the reports and prints one row
per case: for the sick script, ``hit`` (the expected code is the first cause of the case's
section, or of the only section), ``partial`` (the expected code elsewhere in the report, or
an accepted alternate anywhere in it), ``miss``, ``no report`` or ``crash``; for the fixed
script, the codes of its error and warning findings. Then the totals: the share of sick cases
with a code that are hits, fixed runs with an error, fixed runs with a warning, and the cases
whose cause has no code. It measures and never fails (exit status 0); the numbers are quoted
in each set's ``README.md``.

Run: ``python benchmarks/bench_heldout_real.py [--set FOLDER] [--case NAME ...] [--python
PATH]``; without
``--python`` it runs the worktree's ``.venv/bin/nndoctor``, with it ``PATH -m nndoctor``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heldout_real.cases import Case

WORKERS = 2
TIMEOUT_S = 600
HERE = Path(__file__).resolve().parent
SETS = ("heldout_real", "heldout_real2", "heldout_real3", "heldout_real4")
ROOT = Path(__file__).resolve().parent.parent
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Run:
    """One script under ``nndoctor run``: its exit status, time and report sections."""

    script: str
    status: int | None  # None: killed at the time limit
    seconds: float
    sections: list[dict[str, Any]] | None  # the JSON list of {"model", "report"}; None: absent
    stderr_tail: str

    @property
    def failure(self) -> str | None:
        """Why there is no report: nndoctor's own message, or the last line of a traceback
        (the script's or nndoctor's); None when there is a report or nothing was said."""
        if self.sections:
            return None
        lines = self.stderr_tail.splitlines()
        said = [ln for ln in lines if ln.startswith(("nndoctor: ", "nndoctor run: "))]
        if said:
            return said[-1]
        if "Traceback" in self.stderr_tail:
            return lines[-1] if lines else "Traceback"
        return None if self.status is not None else "killed at the time limit"

    @property
    def crashed(self) -> bool:
        """No report because something failed (not because no optimizer ever stepped)."""
        quiet = ("nothing to report", "no optimizer ever stepped")
        return self.failure is not None and not any(q in self.failure for q in quiet)

    def findings(self) -> list[dict[str, Any]]:
        return [f for s in self.sections or [] for f in s["report"]["findings"]]

    def codes(self, severity: str) -> list[str]:
        """Codes of the findings of that severity, each once, in report order."""
        return list(dict.fromkeys(f["code"] for f in self.findings() if f["severity"] == severity))


def command(python: str | None, out: Path, script: Path) -> list[str]:
    """``nndoctor run`` as the worktree's entry point, or as ``python -m nndoctor``."""
    runner = [python, "-m", "nndoctor"] if python else [str(ROOT / ".venv" / "bin" / "nndoctor")]
    return [*runner, "run", "--quiet", "--json", str(out), str(script)]


def run_script(job: tuple[str | None, Path]) -> Run:
    python, script = job
    env = {**os.environ, **dict.fromkeys(THREAD_VARS, "1")}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                command(python, out, script),
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                env=env,
                cwd=script.parent,
                check=False,
            )
            status, stderr = proc.returncode, proc.stderr
        except subprocess.TimeoutExpired as exc:
            status, stderr = None, str(exc.stderr or "") + f"\n(killed after {TIMEOUT_S} s)"
        seconds = time.perf_counter() - start
        sections = json.loads(out.read_text()) if out.exists() else None
    return Run(script.name, status, seconds, sections, stderr[-2000:])


def first_cause(run: Run, case: Case) -> tuple[str | None, str]:
    """The first cause of the case's section (or of the only one), and the section's name."""
    sections = run.sections or []
    if case.section is not None:
        # a report names its section "role (Class)" when a script trains several models
        # ("discriminator (Sequential)"): the case's class name means the first of that class,
        # its variable's name that section
        chosen = [
            s
            for s in sections
            if s["model"] == case.section
            or s["model"].endswith(f"({case.section})")
            or s["model"].startswith(f"{case.section} (")
        ]
    else:
        chosen = sections if len(sections) == 1 else []
    if not chosen:
        names = ", ".join(s["model"] for s in sections)
        return None, f"(no section {case.section or 'alone'}; sections: {names or 'none'})"
    causes = [f["code"] for f in chosen[0]["report"]["findings"] if f["kind"] == "cause"]
    return (causes[0] if causes else None), chosen[0]["model"]


def verdict(case: Case, run: Run) -> str:
    """hit / partial / miss / no code / no report / crash for a sick run."""
    if not run.sections:
        return "crash" if run.crashed else "no report"
    if case.expected is None:
        return "no code"
    first, _ = first_cause(run, case)
    if first == case.expected:
        return "hit"
    codes = {f["code"] for f in run.findings()}
    return "partial" if case.expected in codes or codes & set(case.alternates) else "miss"


def said_first(run: Run, case: Case) -> str:
    """What the report put first: the section's first cause, else its first finding."""
    if not run.sections:
        return "-"
    first, section = first_cause(run, case)
    if first is not None:
        return first
    findings = run.findings()
    tail = f"first finding {findings[0]['code']} ({findings[0]['kind']})" if findings else "none"
    return f"no cause [{section}]; {tail}"


def summarise(cases: Sequence[Case], runs: dict[str, Run], seconds: float) -> None:
    """Print the per-case table, the totals and the per-case first words."""
    header = f"{'case':34s} {'family':11s} {'expected':25s} {'sick':9s} {'s':>5s}"
    print(f"{header} {'fixed errors / warnings':40s} {'s':>5s}")
    verdicts = {}
    for case in cases:
        sick, fixed = (runs[s] for s in case.scripts)
        verdicts[case.name] = verdict(case, sick)
        if fixed.sections:
            errors, warnings = fixed.codes("error"), fixed.codes("warning")
            fixed_text = f"{','.join(errors) or '-'} / {','.join(warnings) or '-'}"
        else:
            fixed_text = "crash" if fixed.crashed else "no report"
        print(
            f"{case.name:34s} {case.family:11s} {case.expected or '(no code)':25s}"
            f" {verdicts[case.name]:9s} {sick.seconds:5.0f} {fixed_text:40s} {fixed.seconds:5.0f}"
        )
    coded = [c for c in cases if c.expected is not None]
    count = {v: sum(verdicts[c.name] == v for c in coded) for v in ("hit", "partial", "miss")}
    lost = [c for c in coded if verdicts[c.name] in ("no report", "crash")]
    fixed_runs = [runs[c.scripts[1]] for c in cases]
    with_error = sum(bool(r.codes("error")) for r in fixed_runs)
    with_warning = sum(bool(r.codes("warning")) for r in fixed_runs)
    fixed_lost = sum(not r.sections for r in fixed_runs)
    print(f"\nsick cases with a code: {len(coded)}")
    print(f"  hits: {count['hit']}/{len(coded)} ({count['hit'] / max(len(coded), 1):.0%})")
    print(f"  partial: {count['partial']}, miss: {count['miss']}, no report or crash: {len(lost)}")
    no_code = [c for c in cases if c.expected is None]
    for case in no_code:
        said = said_first(runs[case.scripts[0]], case)
        print(f"no code: {case.name}: {verdicts[case.name]}, said {said}")
    print(f"fixed runs with an error finding: {with_error}/{len(fixed_runs)}")
    print(f"fixed runs with a warning finding: {with_warning}/{len(fixed_runs)}")
    print(f"fixed runs with no report or a crash: {fixed_lost}/{len(fixed_runs)}")
    lost_runs = [run for run in runs.values() if not run.sections]
    if lost_runs:
        print("\nruns with no report (crash: nndoctor or the script failed)")
    for run in sorted(lost_runs, key=lambda r: r.script):
        kind = "crash" if run.crashed else "no report"
        print(f"  {run.script}: {kind}: {run.failure or '(nothing on stderr)'}")
    print("\nwhat nndoctor said first (sick: first cause of the section; fixed: first cause)")
    for case in cases:
        sick, fixed = (runs[s] for s in case.scripts)
        print(f"  {case.name}: sick {said_first(sick, case)}; fixed {said_first(fixed, case)}")
    print(f"\n{2 * len(cases)} runs, {WORKERS} workers, wall time {seconds:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=SETS, default=SETS[0], help="the held-out set")
    parser.add_argument("--case", action="append", metavar="NAME", help="run only this case")
    parser.add_argument("--python", metavar="PATH", help="run PATH -m nndoctor instead")
    args = parser.parse_args(argv)
    every: tuple[Case, ...] = importlib.import_module(f"{args.set}.cases").CASES
    cases = [c for c in every if args.case is None or c.name in args.case]
    unknown = set(args.case or ()) - {c.name for c in every}
    if unknown:
        print(f"unknown case(s): {', '.join(sorted(unknown))}", file=sys.stderr)
    jobs = [(args.python, HERE / args.set / script) for case in cases for script in case.scripts]
    start = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        runs = {run.script: run for run in pool.map(run_script, jobs)}
    summarise(cases, runs, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
