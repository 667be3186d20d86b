"""The doctor's accuracy on the held-out red-team cases in ``benchmarks/heldout/``.

Runs ``diagnose`` (trials on unless ``--no-trials``) on every case of every set at the seeds that
set uses, in 2 worker processes with one BLAS thread each, and prints per set: sick runs whose
first cause is the expected one, healthy runs with an error finding, healthy runs with any cause,
and mean / max seconds per run; then every miss. It measures and never fails (exit status 0):
the numbers are quoted in ``docs/findings.md``, which also says which sets the rules were tuned on.
``--torch`` runs the PyTorch set (``heldout/torch_set.py``, real reports rebuilt as
``torch.nn.Module`` runs) instead of the engine's sets; it needs torch. ``--sets 5`` runs only
the sets named (1-based).
Run: ``python benchmarks/bench_doctor_heldout.py [--no-trials] [--torch] [--sets 5]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from heldout import SETS, CaseSet
from nndoctor import diagnose

WORKERS = 2


@dataclass(frozen=True)
class Outcome:
    """What ``diagnose`` said about one (case, seed) run."""

    set_index: int
    name: str
    seed: int
    expected: str | None
    causes: tuple[str, ...]
    errors: tuple[str, ...]
    seconds: float
    crash: str | None = None

    @property
    def first(self) -> str | None:
        return self.causes[0] if self.causes else None

    @property
    def ok(self) -> bool:
        if self.crash is not None:
            return False
        return self.first == self.expected if self.expected else not self.errors


def case_sets(torch: bool) -> list[CaseSet]:
    """The engine's sets, or the PyTorch set (imported only when asked for: it imports torch)."""
    if torch:
        from heldout import torch_set

        return [torch_set.SET]
    return SETS


def run_one(job: tuple[bool, int, int, int, bool]) -> Outcome:
    """Diagnose case ``case_index`` of set ``set_index`` (of the torch sets if ``torch``)."""
    torch, set_index, case_index, seed, trials = job
    case = case_sets(torch)[set_index].cases[case_index]
    setup = case.build(seed)
    start = time.perf_counter()
    try:
        report = diagnose(
            setup.model,
            setup.X,
            setup.Y,
            loss=setup.loss,
            optimizer=setup.optimizer,
            epochs=setup.epochs,
            batch_size=setup.batch_size,
            shuffle=setup.shuffle,
            seed=seed,
            trials=trials,
            progress=False,
            **getattr(setup, "options", {}),  # zero_grad, scheduler: PyTorch setups only
        )
    except Exception as exc:  # a crash is a miss to report, not a reason to stop measuring
        return Outcome(
            set_index,
            case.name,
            seed,
            case.expected,
            (),
            (),
            time.perf_counter() - start,
            repr(exc),
        )
    return Outcome(
        set_index,
        case.name,
        seed,
        case.expected,
        tuple(f.code for f in report.causes),
        tuple(f.code for f in report.findings if f.severity == "error"),
        time.perf_counter() - start,
    )


def summarise(outcomes: Sequence[Outcome], sets: Sequence[CaseSet] = SETS) -> None:
    """Print the per-set table, then the misses."""
    print(
        f"{'set':6s} {'tuning':58s} {'sick ok':>9s} {'h error':>8s} {'h cause':>8s} {'s mean':>7s}"
    )
    for k, case_set in enumerate(sets):
        runs = [o for o in outcomes if o.set_index == k]
        if not runs:
            continue
        sick = [o for o in runs if o.expected is not None]
        healthy = [o for o in runs if o.expected is None]
        n_ok = sum(o.ok for o in sick)
        n_error = sum(bool(o.errors) or o.crash is not None for o in healthy)
        n_cause = sum(bool(o.causes) or o.crash is not None for o in healthy)
        seconds = [o.seconds for o in runs]
        print(
            f"{case_set.title:6s} {case_set.tuning:58s} {n_ok:>4d}/{len(sick):<4d}"
            f" {n_error:>3d}/{len(healthy):<4d} {n_cause:>3d}/{len(healthy):<4d}"
            f" {sum(seconds) / len(seconds):7.2f} (max {max(seconds):.2f})"
        )
    misses = [o for o in outcomes if not o.ok]
    print(f"\n{len(misses)} misses (set, case, seed: expected -> found)")
    for o in misses:
        found = o.crash or f"causes {list(o.causes)}, errors {list(o.errors)}"
        print(f"  {sets[o.set_index].title}, {o.name}, seed {o.seed}: {o.expected} -> {found}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-trials", dest="trials", action="store_false", help="skip trials")
    parser.add_argument("--torch", action="store_true", help="run the PyTorch set instead")
    parser.add_argument(
        "--sets", type=int, nargs="+", help="run only these sets (1-based, e.g. --sets 5)"
    )
    args = parser.parse_args(argv)
    sets = case_sets(args.torch)
    jobs = [
        (args.torch, k, i, seed, args.trials)
        for k, case_set in enumerate(sets)
        if args.sets is None or k + 1 in args.sets
        for i, case in enumerate(case_set.cases)
        for seed in case.seeds
    ]
    # Spawned workers read these before importing NumPy: one BLAS thread each, 2 cores in all.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        outcomes = pool.map(run_one, jobs, chunksize=1)
    print(f"{len(jobs)} runs, trials {'on' if args.trials else 'off'}, {WORKERS} workers")
    summarise(outcomes, sets)
    print(f"\nwall time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
