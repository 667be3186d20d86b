"""What ``diagnose`` costs on a PyTorch model: the whole call against one plain training run.

The two models of ``bench_watch_overhead.py`` (an MLP 64-128-64-10 and a small CNN with
BatchNorm) on scikit-learn's digits, SGD lr 0.05 momentum 0.9, CrossEntropyLoss, batches of 64,
10 epochs (290 steps); both runs are healthy. The target is at most 3x: pre-flight checks,
bounds, the recorded run and trials included.

One warm-up of each first (torch's one-time imports, the first optimiser's set-up), then plain
runs and ``diagnose`` calls alternate so that load on the machine hits both alike; the median
of the repeats is reported. CPU seconds (``time.process_time``, one thread) are the comparable
figure on a shared machine; wall-clock seconds are printed beside them, and the recorded run's
share (``summary["seconds"]["train"]``, wall clock: the watched run alone against the plain
run, the floor the other checks add to). Measures, never fails.
Run: ``python benchmarks/bench_diagnose_torch.py [--repeats 5] [--epochs 10]``.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads BLAS

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import nndoctor
from bench_watch_overhead import models

LIMIT = 3.0


def sgd(params: object) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.05, momentum=0.9)


def plain(model: nn.Module, X: np.ndarray, y: np.ndarray, epochs: int) -> None:
    """One plain run as a user writes it: a fresh copy, tensors from the arrays, the loop."""
    model = copy.deepcopy(model)
    Xt, yt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
    opt = sgd(model.parameters())
    loss = nn.CrossEntropyLoss()
    for _ in range(epochs):
        for lo in range(0, len(Xt), 64):
            opt.zero_grad()
            loss(model(Xt[lo : lo + 64]), yt[lo : lo + 64]).backward()
            opt.step()


def doctor(model: nn.Module, X: np.ndarray, y: np.ndarray, epochs: int) -> nndoctor.Report:
    return nndoctor.diagnose(
        model, X, y, loss=nn.CrossEntropyLoss(), optimizer=sgd, epochs=epochs, batch_size=64,
        progress=False,
    )  # fmt: skip


def timed(fn: object, *args: object) -> tuple[float, float, object]:
    """CPU and wall-clock seconds of ``fn(*args)``, and what it returned."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn(*args)  # type: ignore[operator]
    return time.process_time() - cpu, time.perf_counter() - wall, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    digits = load_digits()
    X = (digits.images / 16.0)[:, None]  # (n, 1, 8, 8) float64, as a user's arrays
    y = digits.target
    steps = args.epochs * -(-len(X) // 64)
    print(f"digits {X.shape}, {steps} steps per run, {args.repeats} repeats, 1 thread")
    print(
        f"{'model':24s} {'plain CPU s':>11s} {'diagnose CPU s':>14s} {'ratio':>6s} "
        f"{'wall ratio':>10s} {'recorded':>8s}  causes / skipped"
    )
    for name, model in models().items():
        plain(model, X, y, args.epochs)  # warm-up: one-time imports and set-up
        doctor(model, X, y, args.epochs)
        p_cpu, p_wall, d_cpu, d_wall, recorded = [], [], [], [], []
        report = None
        for _ in range(args.repeats):
            cpu, wall, _ = timed(plain, model, X, y, args.epochs)
            p_cpu.append(cpu)
            p_wall.append(wall)
            cpu, wall, report = timed(doctor, model, X, y, args.epochs)
            d_cpu.append(cpu)
            d_wall.append(wall)
            recorded.append(report.summary["seconds"]["train"])  # type: ignore[union-attr]
        pc, dc = statistics.median(p_cpu), statistics.median(d_cpu)
        wall_ratio = statistics.median(d_wall) / statistics.median(p_wall)
        record_ratio = statistics.median(recorded) / statistics.median(p_wall)
        causes = ", ".join(f.code for f in report.causes) or "no cause"  # type: ignore[union-attr]
        skipped = sorted(report.summary.get("skipped", {}))  # type: ignore[union-attr]
        verdict = "ok" if dc / pc <= LIMIT else "OVER"
        print(
            f"{name:24s} {pc:11.3f} {dc:14.3f} {dc / pc:6.2f} {wall_ratio:10.2f} "
            f"{record_ratio:8.2f}  "
            f"{causes}; skipped: {', '.join(skipped) or 'none'} ({verdict}, limit {LIMIT:.0f}x)"
        )
        seconds = report.summary["seconds"]  # type: ignore[union-attr]
        print("    diagnose parts (s, last call): " + ", ".join(
            f"{k} {v:.3f}" for k, v in seconds.items()
        ))  # fmt: skip


if __name__ == "__main__":
    main()
