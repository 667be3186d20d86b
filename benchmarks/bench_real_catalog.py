"""The doctor on the real-architecture PyTorch cases (``nndoctor.scenarios.torch_real``, issue 20).

Every case of ``REAL_CATALOG`` goes through the three ways in: ``diagnose`` (trials on unless
``--no-trials``), ``nndoctor.watch`` around the plain loop of ``run_plain_loop``, and
``nndoctor run examples/real_<name>.py --json`` in a subprocess; the GAN scripts of
``GAN_CASES`` (two models, two optimizers, no ``Setup``) go through ``nndoctor run`` only. Per
case and way it prints the first cause (``-``: none) with the counts of error and warning
findings, and a verdict: ``ok`` (sick: the expected cause first; healthy: no error), ``MISS``,
``ALARM`` (an error on a healthy case) or ``CRASH``; then totals per way and the last line of
every crash's traceback. Measures, never fails; needs torch.
Run: ``python benchmarks/bench_real_catalog.py [--seed 0] [--no-trials] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# One thread, as in the tests and the other benchmarks on the 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from nndoctor.doctor import Report
from nndoctor.scenarios import run_plain_loop, run_scenario
from nndoctor.scenarios.torch_real import GAN_CASES, REAL_CATALOG

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
WAYS = ("diagnose", "watch", "run")


@dataclass
class Outcome:
    """What one way in said about one case (per trained model for ``nndoctor run``)."""

    reports: list[tuple[str, Report]]
    crash: str | None = None  # the last line of the traceback
    seconds: float = 0.0

    def verdict(self, expected: str | None) -> str:
        if self.crash is not None:
            return "CRASH"
        if expected is None:
            errors = any(f.severity == "error" for _, r in self.reports for f in r.findings)
            return "ALARM" if errors else "ok"
        firsts = [r.causes[0].code for _, r in self.reports if r.causes]
        return "ok" if expected in firsts else "MISS"

    def cell(self, expected: str | None) -> str:
        if self.crash is not None:
            return "CRASH"
        if not self.reports:
            return "no report " + self.verdict(expected)
        parts = []
        for model, report in self.reports:
            first = report.causes[0].code if report.causes else "-"
            errors = sum(f.severity == "error" for f in report.findings)
            warns = sum(f.severity == "warning" for f in report.findings)
            label = f"{model}: " if len(self.reports) > 1 else ""
            parts.append(f"{label}{first} ({errors}E/{warns}W)")
        return "; ".join(parts) + " " + self.verdict(expected)


def _last_line(exc: BaseException) -> str:
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


def _timed(work: Callable[[], list[tuple[str, Report]]]) -> Outcome:
    start = time.perf_counter()
    try:
        reports = work()
    except Exception as exc:  # a crash is a result here: note it and go on
        return Outcome([], _last_line(exc), time.perf_counter() - start)
    return Outcome(reports, None, time.perf_counter() - start)


def through_diagnose(scenario, seed: int, trials: bool) -> Outcome:
    return _timed(lambda: [("", run_scenario(scenario, seed=seed, trials=trials).report)])


def through_watch(scenario, seed: int) -> Outcome:
    def work() -> list[tuple[str, Report]]:
        run = run_plain_loop(scenario.build(seed), watch=True, seed=seed)
        return [("", run.watch.report())]

    return _timed(work)


def through_run(script: Path) -> Outcome:
    """``nndoctor run --no-alerts --json`` on the unmodified script, in a subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "nndoctor", "run", "--no-alerts", "--json", str(out)]
        start = time.perf_counter()
        done = subprocess.run([*command, str(script)], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        lost = [line for line in done.stderr.splitlines() if "nndoctor: no report for" in line]
        if done.returncode != 0 or lost or not out.exists():
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            last = lost[0] if lost else (lines[-1] if lines else f"exit {done.returncode}")
            return Outcome([], last, seconds)
        sections = json.loads(out.read_text())
    reports = [(s["model"], Report.from_dict(s["report"])) for s in sections]
    return Outcome(reports, None, seconds)


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-trials", dest="trials", action="store_false", help="skip trials")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these cases")
    args = parser.parse_args(argv)
    wanted = set(args.only) if args.only else None
    scenarios = [s for s in REAL_CATALOG if wanted is None or s.name in wanted]
    gans = [c for c in GAN_CASES if wanted is None or c.name in wanted]

    results: list[tuple[str, str | None, dict[str, Outcome | None]]] = []
    for scenario in scenarios:
        script = EXAMPLES / f"real_{scenario.name.replace('-', '_')}.py"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the faults' own warnings are not the point here
            outcomes: dict[str, Outcome | None] = {
                "diagnose": through_diagnose(scenario, args.seed, args.trials),
                "watch": through_watch(scenario, args.seed),
                "run": through_run(script),
            }
        results.append((scenario.name, scenario.expected, outcomes))
        print(f"  {scenario.name}: done", file=sys.stderr, flush=True)
    for case in gans:
        script = EXAMPLES / f"real_{case.name.replace('-', '_')}.py"
        results.append(
            (
                case.name,
                case.expected,
                {"diagnose": None, "watch": None, "run": through_run(script)},
            )
        )

    rows = [("case", "expected", *WAYS)]
    for name, expected, outcomes in results:
        cells = tuple("(no Setup)" if o is None else o.cell(expected) for o in outcomes.values())
        rows.append((name, expected or "(healthy)", *cells))
    print(f"== seed {args.seed}, trials {'on' if args.trials else 'off'}")
    print("\n".join(_columns(rows)))
    print()
    for way in WAYS:
        ran = [(e, o[way]) for _, e, o in results if o[way] is not None]
        sick = [o.verdict(e) for e, o in ran if e is not None]
        healthy = [o.verdict(e) for e, o in ran if e is None]
        crashes = sum(o.crash is not None for _, o in ran)
        seconds = sum(o.seconds for _, o in ran)
        print(
            f"{way:9s} sick {sick.count('ok')}/{len(sick)} with the expected cause first; "
            f"healthy {healthy.count('ok')}/{len(healthy)} without an error; "
            f"{crashes} crash(es); {seconds:.0f} s"
        )
    crashed = [(n, w, o.crash) for n, _, os_ in results for w, o in os_.items() if o and o.crash]
    if crashed:
        print("\ncrashes (last line of the traceback):")
        for name, way, line in crashed:
            print(f"  {name} / {way}: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
