"""Cost of watching a PyTorch run: ``nndoctor.watch`` around a plain loop against the same loop
unwatched.

Two models on scikit-learn's digits (1797 images of 8x8): an MLP 64-128-64-10 and a small CNN
with BatchNorm. Each measurement trains a fresh copy for a fixed number of steps; watched and
plain runs alternate, the watched one first in every other pair (plain, watched, watched,
plain, ...), so that load on the machine and the position in the pair hit both alike, after a
warm-up of each (torch's one-time work); the ratio is the median of the pairs' ratios (the
seconds columns are the medians of each). Seconds are this process's CPU seconds with one
torch thread: on a shared machine other jobs then slow neither run. Settings: default (every
16 steps, then within the time budget), ``every=16`` (a fixed interval: the default before the
budget) and heavy (a probe every step), each with the number of probes taken. Measures, never
fails (exit status 0); the figures are quoted in ``benchmarks/README.md``. ``diagnose`` is
measured by ``bench_diagnose_torch.py``.
Run: ``python benchmarks/bench_watch_overhead.py [--repeats 15] [--epochs 10]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from sklearn.datasets import load_digits
from torch import nn

import nndoctor


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


def loop(model: nn.Module, X: torch.Tensor, y: torch.Tensor, epochs: int, every: int | None,
         watched: bool) -> tuple[float, int]:  # fmt: skip
    """CPU seconds for ``epochs`` passes in batches of 64 of a fresh copy of ``model``, and the
    number of probes the watch took (0 unwatched)."""
    model = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss = nn.CrossEntropyLoss()
    watch = nndoctor.watch(model, opt, loss=loss, every=every) if watched else None
    start = time.process_time()
    for _ in range(epochs):
        for lo in range(0, len(X), 64):
            opt.zero_grad()
            value = loss(model(X[lo : lo + 64]), y[lo : lo + 64])
            value.backward()
            opt.step()
    seconds = time.process_time() - start
    probes = 0
    if watch is not None:
        watch.close()
        probes = len(watch.probes().steps)
    return seconds, probes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    digits = load_digits()
    X = torch.as_tensor(digits.images / 16.0, dtype=torch.float32)[:, None]  # (n, 1, 8, 8)
    y = torch.as_tensor(digits.target, dtype=torch.long)
    steps = args.epochs * -(-len(X) // 64)
    print(f"digits {tuple(X.shape)}, {steps} steps per run, {args.repeats} repeats, 1 thread")
    print(f"{'model':24s} {'setting':10s} {'plain s':>8s} {'watched s':>9s} {'ratio':>6s} probes")
    for name, model in models().items():
        for watch_it in (False, True, False, True):  # warm-up: torch's one-time work, caches
            loop(model, X, y, 1, None, watch_it)
        for setting, every in (("default", None), ("every=16", 16), ("heavy", 1)):
            plain, watched, probes = [], [], []
            for r in range(args.repeats):
                for watch_it in (False, True) if r % 2 == 0 else (True, False):
                    seconds, n = loop(model, X, y, args.epochs, every, watch_it)
                    (watched if watch_it else plain).append(seconds)
                    if watch_it:
                        probes.append(n)
            p, w = statistics.median(plain), statistics.median(watched)
            # the ratio of each pair, run back to back, then the median: a drift of the
            # machine's speed over the minute cancels within a pair
            ratio = statistics.median(b / a for a, b in zip(plain, watched, strict=True))
            print(
                f"{name:24s} {setting:10s} {p:8.3f} {w:9.3f} {ratio:6.3f} "
                f"{min(probes)}-{max(probes)}"
            )


if __name__ == "__main__":
    main()
