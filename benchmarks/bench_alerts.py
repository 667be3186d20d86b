"""Time to verdict: how early the live alerts say each root cause, and whether the final report
ever contradicts one.

Every PyTorch scenario of the catalog runs as its example script under ``nndoctor run``'s global
hooks (alerts kept, not printed). Per scenario: the alerts with the step each was said at, the
run's length in steps, the step at which the root cause was first alerted (as a share of the
run) and the alerts the final report contradicts (codes it does not contain). Issue 8 asks for
0 contradictions on the catalog; the script exits with 1 otherwise.
Run: ``python benchmarks/bench_alerts.py``.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from nndoctor.runner import GlobalWatcher, run_script, torch_watch
from nndoctor.scenarios import TORCH_CATALOG

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str) -> tuple[list, list[str], int]:
    """``(alerts, report codes, steps)`` of the scenario's example under the global hooks."""
    script = EXAMPLES / (name.replace("-", "_") + ".py")
    watcher = GlobalWatcher(torch_watch, alerts=False)
    watcher.install()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            run_script(str(script), [])
    finally:
        sections = watcher.close()
    (pair,) = watcher.pairs
    ((_, report),) = sections
    return pair.watch.alerts.history, report.codes, pair.watch.step


def main() -> int:
    rows, contradicted, alerted = [], 0, []
    for scenario in TORCH_CATALOG:
        alerts, codes, steps = run_example(scenario.name)
        wrong = [a.code for a in alerts if a.code not in codes]
        contradicted += len(wrong)
        root = next((a for a in alerts if a.code == scenario.expected), None)
        if root is not None:
            alerted.append(root.step / steps)
        said = ", ".join(f"{a.code}@{a.step}" for a in alerts) or "-"
        when = f"{root.step}/{steps} ({root.step / steps:.1%})" if root else "-"
        rows.append((scenario.name, scenario.expected or "healthy", said, when, len(wrong)))
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    header = ("scenario", "root cause", "alerts (code@step)", "root cause said at", "contra")
    for row in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print(
        f"\nroot cause alerted in {len(alerted)} of {sum(not s.healthy for s in TORCH_CATALOG)} "
        f"sick scenarios, at {max(alerted, default=0):.1%} of the run at the latest; "
        f"alerts contradicted by the final report: {contradicted}"
    )
    return 0 if contradicted == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
