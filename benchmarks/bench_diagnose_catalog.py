"""What ``diagnose`` costs across the catalog: its wall time over the plain training run's.

For every scenario (at each seed asked for) the plain ``nndoctor.nn.train`` run and
``diagnose`` (trials on) are timed back to back in the same process, so the ratio does not
depend on the machine. Prints per scenario the plain seconds, the diagnose seconds, the ratio,
the time to the first trial verdict and the time per part (``report.summary["seconds"]``);
then the median and worst ratio for runs of one second and longer (issue 10 asks for at most
3x) and the median and worst absolute seconds below that (a few seconds at most), and the
share of the time spent in each part. It measures and never fails.
Run: ``python benchmarks/bench_diagnose_catalog.py [--seeds 0 1] [--workers 2]``
(with workers, each process runs one scenario at a time with one BLAS thread).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from collections.abc import Sequence

PARTS = ("bounds", "gradcheck", "preflight", "train", "rules", "trials")


def run_one(job: tuple[str, int]) -> dict:
    """Plain run, then diagnose, of scenario ``name`` at ``seed``."""
    from nndoctor import diagnose
    from nndoctor.nn import train
    from nndoctor.scenarios.run import CATALOG

    name, seed = job
    scenario = next(s for s in CATALOG if s.name == name)
    setup = scenario.build(seed)
    start = time.perf_counter()
    train(setup.model, setup.X, setup.Y, **setup.training, seed=seed, progress=False)
    plain = time.perf_counter() - start
    setup = scenario.build(seed)
    start = time.perf_counter()
    report = diagnose(setup.model, setup.X, setup.Y, **setup.training, seed=seed, progress=False)
    doctor = time.perf_counter() - start
    seconds = report.summary["seconds"]
    verdicts = [f.trial["seconds"] for f in report.findings if f.trial]
    before_trials = sum(v for k, v in seconds.items() if k != "trials")
    first = before_trials + min(verdicts) if verdicts else None
    return {
        "name": name,
        "seed": seed,
        "plain": plain,
        "doctor": doctor,
        "first": first,
        "seconds": seconds,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    from nndoctor.scenarios.run import CATALOG

    jobs = [(s.name, seed) for seed in args.seeds for s in CATALOG]
    if args.workers > 1:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = "1"
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            rows = pool.map(run_one, jobs, chunksize=1)
    else:
        rows = [run_one(job) for job in jobs]
    print(f"{'scenario':28s} seed  plain  diagnose  ratio  first verdict  " + "  ".join(PARTS))
    for r in rows:
        first = f"{r['first']:13.2f}" if r["first"] is not None else f"{'-':>13s}"
        parts = "  ".join(f"{r['seconds'].get(p, 0.0):{len(p)}.2f}" for p in PARTS)
        print(
            f"{r['name']:28s} {r['seed']:4d} {r['plain']:6.2f} {r['doctor']:9.2f}"
            f" {r['doctor'] / r['plain']:6.1f}  {first}  {parts}"
        )
    long = [r["doctor"] / r["plain"] for r in rows if r["plain"] >= 1.0]
    short = [r["doctor"] for r in rows if r["plain"] < 1.0]
    firsts = [r["first"] for r in rows if r["first"] is not None]
    print()
    if long:
        print(
            f"plain run >= 1 s ({len(long)} runs): diagnose / plain median "
            f"{statistics.median(long):.2f}x, worst {max(long):.2f}x (target 3x)"
        )
    if short:
        print(
            f"plain run < 1 s ({len(short)} runs): diagnose median "
            f"{statistics.median(short):.2f} s, worst {max(short):.2f} s"
        )
    if firsts:
        print(
            f"time to the first trial verdict: median {statistics.median(firsts):.2f} s, "
            f"worst {max(firsts):.2f} s"
        )
    total = sum(r["doctor"] for r in rows)
    shares = {p: sum(r["seconds"].get(p, 0.0) for r in rows) / total for p in PARTS}
    print("share of diagnose time: " + ", ".join(f"{p} {v:.0%}" for p, v in shares.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
