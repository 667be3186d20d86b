"""``diagnose`` against the plain run on every catalog and held-out case and at MNIST shape.

Issue 22's targets, measured here (never asserted in tests): on every case ``diagnose`` (trials
on) takes at most ``max(3 x plain, plain + 3 s)``, the median ratio is at most 2x, for the
engine and for PyTorch; and ``report()`` of a watched 1500-step healthy run on digits (MLP and
CNN) takes at most 1 s.

Cases: the engine catalog and the PyTorch catalog (seed 0), every held-out case of the engine's
sets and of the PyTorch set (at its first seed; ``--all-seeds`` for every seed it is run at),
and MNIST-shaped data (60,000 x 784 and 20,000 x 784, 10 classes, MLP 784-64-64-10, Adam, 2
epochs of 128) for both backends. Each case is built afresh for every run. The plain run is
``nndoctor.nn.train`` (engine) or the loop a user writes (``run_plain_loop``, PyTorch); plain
and ``diagnose`` alternate, the plain one first in every other pair, after one warm-up of each
backend; seconds are this process's CPU seconds with one BLAS and one torch thread (on a shared
machine, other jobs then slow neither side), the ratio is the median of the pairs' ratios.
Per case the parts of ``diagnose`` (``report.summary["seconds"]``, wall, last repeat) show where
its time goes.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_diagnose_ratios.py [--repeats 3]
[--groups engine heldout torch torch-heldout mnist report] [--match NAME] [--all-seeds]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

PARTS = ("bounds", "gradcheck", "preflight", "train", "rules", "trials")
GROUPS = ("engine", "heldout", "torch", "torch-heldout", "mnist", "report")
# the target of issue 22: diagnose within max(RATIO x plain, plain + SLACK seconds)
RATIO, SLACK, MEDIAN_RATIO = 3.0, 3.0, 2.0


@dataclass(frozen=True)
class Job:
    """One case: its group, its name and how to build its setup at ``seed``."""

    group: str
    name: str
    build: Callable[[int], Any]
    seed: int

    @property
    def torch(self) -> bool:
        return self.group.startswith("torch") or self.name.startswith("torch ")


def _training(setup: Any) -> dict[str, Any]:
    """The keyword arguments of ``diagnose`` (and ``train``) of any of the setups."""
    if hasattr(setup, "training"):
        return dict(setup.training)
    return {
        "loss": setup.loss,
        "optimizer": setup.optimizer,
        "epochs": setup.epochs,
        "batch_size": setup.batch_size,
        "shuffle": setup.shuffle,
    }


def mnist_shaped(n: int, torch: bool) -> Callable[[int], Any]:
    """MNIST-shaped classification (``n`` x 784, labels a noisy linear function of the inputs,
    as in ``bench_scale.py``), MLP 784-64-64-10, Adam 1e-3, 2 epochs of 128, shuffled."""

    def build(seed: int) -> Any:
        from nndoctor.scenarios import Setup

        rng = np.random.default_rng(2)
        X = rng.standard_normal((n, 784))
        W = rng.standard_normal((784, 10)) * (2.0 / np.sqrt(784))
        labels = np.argmax(X @ W + rng.gumbel(size=(n, 10)), axis=1)
        if not torch:
            from nndoctor.nn import Adam, CrossEntropy, mlp

            return Setup(mlp([784, 64, 64, 10], seed=seed), X, labels, CrossEntropy(),
                         Adam(lr=1e-3), 2, 128, True)  # fmt: skip
        import torch as th
        from torch import nn

        th.manual_seed(seed)
        model = nn.Sequential(
            nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
        )
        return Setup(model, X.astype(np.float32), labels, nn.CrossEntropyLoss(),
                     lambda p: th.optim.Adam(p, lr=1e-3), 2, 128, True)  # fmt: skip

    return build


def jobs(groups: Sequence[str], all_seeds: bool) -> list[Job]:
    out: list[Job] = []
    if "engine" in groups:
        from nndoctor.scenarios import CATALOG

        out += [Job("engine", s.name, s.build, 0) for s in CATALOG]
    if "heldout" in groups:
        from heldout import SETS

        for k, case_set in enumerate(SETS):
            for case in case_set.cases:
                seeds = case.seeds if all_seeds else case.seeds[:1]
                out += [Job("heldout", f"set{k + 1}-{case.name}", case.build, s) for s in seeds]
    if "torch" in groups:
        from nndoctor.scenarios import TORCH_CATALOG

        out += [Job("torch", s.name, s.build, 0) for s in TORCH_CATALOG]
    if "torch-heldout" in groups:
        from heldout import torch_set

        for case in torch_set.SET.cases:
            seeds = case.seeds if all_seeds else case.seeds[:1]
            out += [Job("torch-heldout", case.name, case.build, s) for s in seeds]
    if "mnist" in groups:
        for n in (20_000, 60_000):
            for torch in (False, True):
                name = f"{'torch ' if torch else ''}{n} x 784, 2 epochs"
                out.append(Job("mnist", name, mnist_shaped(n, torch), 0))
    return out


def plain_run(job: Job, setup: Any) -> None:
    if job.torch:
        from nndoctor.scenarios.torch_cases import run_plain_loop

        run_plain_loop(setup, seed=job.seed)
    else:
        from nndoctor.nn import train

        train(setup.model, setup.X, setup.Y, **_training(setup), seed=job.seed, progress=False)


def doctor_run(job: Job, setup: Any) -> Any:
    from nndoctor import diagnose

    return diagnose(
        setup.model, setup.X, setup.Y, **_training(setup), seed=job.seed, progress=False
    )


def cpu_seconds(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


@dataclass
class Row:
    job: Job
    plain: float
    doctor: float
    ratio: float
    parts: dict[str, float]
    causes: list[str]

    @property
    def limit(self) -> float:
        return max(RATIO * self.plain, self.plain + SLACK)

    @property
    def met(self) -> bool:
        return self.doctor <= self.limit


def measure(job: Job, repeats: int) -> Row:
    plain, doctor, ratios = [], [], []
    report = None
    for r in range(repeats):
        order = ("plain", "doctor") if r % 2 == 0 else ("doctor", "plain")
        pair = {}
        for side in order:
            setup = job.build(job.seed)
            if side == "plain":
                pair[side] = cpu_seconds(lambda setup=setup: plain_run(job, setup))[0]
            else:
                pair[side], report = cpu_seconds(lambda setup=setup: doctor_run(job, setup))
        plain.append(pair["plain"])
        doctor.append(pair["doctor"])
        ratios.append(pair["doctor"] / pair["plain"])
    assert report is not None
    return Row(
        job,
        statistics.median(plain),
        statistics.median(doctor),
        statistics.median(ratios),
        dict(report.summary.get("seconds", {})),
        [f.code for f in report.causes],
    )


def warm_up(torch: bool) -> None:
    """One plain run and one ``diagnose`` of a small case: one-time imports and set-ups."""
    if torch:
        from nndoctor.scenarios import TORCH_CATALOG

        job = Job("torch", "warm-up", TORCH_CATALOG[-1].build, 0)
    else:
        from nndoctor.scenarios import CATALOG

        job = Job("engine", "warm-up", CATALOG[-1].build, 0)
    measure(job, 1)


def print_header() -> None:
    print(
        f"{'group':14s} {'case':44s} {'plain s':>8s} {'diag s':>7s} {'ratio':>6s} "
        f"{'limit s':>7s} met  " + " ".join(f"{p:>9s}" for p in PARTS) + "  causes"
    )


def print_row(r: Row) -> None:
    parts = " ".join(f"{r.parts.get(p, 0.0):9.2f}" for p in PARTS)
    print(
        f"{r.job.group:14s} {(r.job.name + f' @{r.job.seed}')[:44]:44s} {r.plain:8.3f} "
        f"{r.doctor:7.2f} {r.ratio:6.2f} {r.limit:7.2f} {'yes' if r.met else 'NO ':3s}  "
        f"{parts}  {','.join(r.causes[:2])}"
    )
    sys.stdout.flush()


def print_summary(rows: list[Row]) -> None:
    print()
    for name, selected in (
        ("engine", [r for r in rows if not r.job.torch]),
        ("PyTorch", [r for r in rows if r.job.torch]),
        ("all", rows),
    ):
        if not selected:
            continue
        ratios = [r.ratio for r in selected]
        missed = [r for r in selected if not r.met]
        print(
            f"{name}: {len(selected)} cases, ratio median {statistics.median(ratios):.2f}x "
            f"(target {MEDIAN_RATIO:g}x), worst {max(ratios):.2f}x; over "
            f"max({RATIO:g}x plain, plain + {SLACK:g} s): {len(missed)}"
            + (": " + ", ".join(f"{r.job.name} @{r.job.seed}" for r in missed) if missed else "")
        )
    total = sum(sum(r.parts.values()) for r in rows) or 1.0
    shares = {p: sum(r.parts.get(p, 0.0) for r in rows) / total for p in PARTS}
    print("share of diagnose's time: " + ", ".join(f"{p} {v:.0%}" for p, v in shares.items()))


# ------------------------------------------------------------- report() after a watched run


def report_after_watch(repeats: int, steps: int = 1500) -> None:
    """CPU seconds of ``watch(...).report()`` after ``steps`` steps of a healthy digits run
    (the MLP and the CNN of ``bench_watch_overhead.py``, SGD momentum, batches of 64)."""
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    import nndoctor

    torch.set_num_threads(1)
    digits = load_digits()
    X = torch.as_tensor(digits.images / 16.0, dtype=torch.float32)[:, None]
    y = torch.as_tensor(digits.target, dtype=torch.long)

    def models() -> dict[str, nn.Module]:
        torch.manual_seed(0)
        mlp = nn.Sequential(
            nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
            nn.Linear(64, 10),
        )  # fmt: skip
        cnn = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Flatten(), nn.Linear(32 * 64, 10),
        )  # fmt: skip
        return {"MLP 64-128-64-10": mlp, "CNN 2 conv + BatchNorm": cnn}

    print(f"\n== report() after a watched {steps}-step healthy run on digits (CPU s, 1 thread)")
    print(
        f"{'model':24s} {'probes':8s} {'train s':>8s} {'report s':>9s} {'wall s':>7s} rows  causes"
    )
    # the default schedule keeps the rows of a few probes; every=8 fills the watch's sample
    # (1024 rows), the most the bounds of a watched run see
    for name in models():
        for every in (None, 8):
            seconds, train_s, wall = [], [], []
            for _ in range(repeats):
                model = models()[name]
                opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
                loss = nn.CrossEntropyLoss()
                start = time.process_time()
                with nndoctor.watch(model, opt, loss=loss, every=every, alerts=False) as w:
                    step = 0
                    while step < steps:
                        for lo in range(0, len(X), 64):
                            opt.zero_grad()
                            loss(model(X[lo : lo + 64]), y[lo : lo + 64]).backward()
                            opt.step()
                            step += 1
                            if step == steps:
                                break
                train_s.append(time.process_time() - start)
                start = time.perf_counter()
                t, report = cpu_seconds(w.report)
                wall.append(time.perf_counter() - start)
                seconds.append(t)
            samples = w.samples()
            rows = len(samples[0]) if samples is not None else 0
            causes = ", ".join(f.code for f in report.causes) or "none"
            print(
                f"{name:24s} {'default' if every is None else f'every={every}':8s} "
                f"{statistics.median(train_s):8.2f} {statistics.median(seconds):9.3f} "
                f"{statistics.median(wall):7.3f} {rows:4d}  {causes}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--match", default="", help="only cases whose name contains this")
    parser.add_argument("--all-seeds", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    selected = [j for j in jobs(args.groups, args.all_seeds) if args.match in j.name]
    if any(j.torch for j in selected) or "report" in args.groups:
        import torch

        torch.set_num_threads(1)
    for torch_side in sorted({j.torch for j in selected}):
        warm_up(torch_side)
    rows = []
    if selected:
        print_header()
    for job in selected:
        rows.append(measure(job, args.repeats))
        print_row(rows[-1])
    if rows:
        print_summary(rows)
    if "report" in args.groups:
        report_after_watch(args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
