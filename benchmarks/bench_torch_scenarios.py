"""The doctor on the PyTorch scenario catalog (``nndoctor.scenarios.TORCH_CATALOG``), over seeds.

For each seed, diagnoses every PyTorch scenario (trials on unless ``--no-trials``) and prints the
catalog table of ``nndoctor.scenarios.format_table`` (first cause found, precision and recall per
code, seconds per run); then, over all seeds, which scenarios missed at which seeds. Measures,
never fails; the numbers are quoted in ``docs/findings.md``. Needs torch.
Run: ``python benchmarks/bench_torch_scenarios.py [--seeds 0 1 2] [--no-trials]``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Sequence

# One thread, as in the tests and the other benchmarks on the 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from nndoctor.scenarios import TORCH_CATALOG, format_table, run_scenario


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-trials", dest="trials", action="store_false", help="skip trials")
    args = parser.parse_args(argv)
    misses: dict[str, list[str]] = {}
    start = time.perf_counter()
    for seed in args.seeds:
        with warnings.catch_warnings():
            # the shape-broadcast scenario triggers MSELoss's target-size warning on purpose
            warnings.filterwarnings("ignore", message="Using a target size")
            results = [run_scenario(s, seed=seed, trials=args.trials) for s in TORCH_CATALOG]
        print(f"== seed {seed}, trials {'on' if args.trials else 'off'}")
        print(format_table(results))
        print()
        for r in results:
            if not r.ok:
                found = r.errors if r.scenario.healthy else r.cause_codes
                misses.setdefault(r.name, []).append(f"seed {seed}: {found}")
    print(f"misses over seeds {args.seeds}: {len(misses)} scenario(s)")
    for name, where in misses.items():
        print(f"  {name}: " + "; ".join(where))
    print(f"\nwall time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
