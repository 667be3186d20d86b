"""Cost of watching a PyTorch run: ``nndoctor.watch`` around a plain loop against the same loop
unwatched, and ``diagnose`` against one plain run.

Two models on scikit-learn's digits (1797 images of 8x8): an MLP 64-128-64-10 and a small CNN
with BatchNorm. Each measurement trains a fresh copy for a fixed number of steps; watched and
plain runs alternate (plain, watched, plain, watched, ...) so that load on the machine hits both
alike, and the median of the repeats is reported. Settings: default (about 100-200 probes per
run) and heavy (a probe every step). Measures, never fails (exit status 0); the figures are
quoted in ``benchmarks/README.md``.
Run: ``python benchmarks/bench_watch_overhead.py [--repeats 7] [--epochs 10]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
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
         watched: bool) -> float:  # fmt: skip
    """Seconds for ``epochs`` passes in batches of 64 of a fresh copy of ``model``."""
    model = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss = nn.CrossEntropyLoss()
    watch = nndoctor.watch(model, opt, loss=loss, every=every) if watched else None
    start = time.perf_counter()
    for _ in range(epochs):
        for lo in range(0, len(X), 64):
            opt.zero_grad()
            value = loss(model(X[lo : lo + 64]), y[lo : lo + 64])
            value.backward()
            opt.step()
    seconds = time.perf_counter() - start
    if watch is not None:
        watch.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    digits = load_digits()
    X = torch.as_tensor(digits.images / 16.0, dtype=torch.float32)[:, None]  # (n, 1, 8, 8)
    y = torch.as_tensor(digits.target, dtype=torch.long)
    steps = args.epochs * -(-len(X) // 64)
    print(f"digits {tuple(X.shape)}, {steps} steps per run, {args.repeats} repeats, 1 thread")
    print(f"{'model':26s} {'setting':10s} {'plain s':>8s} {'watched s':>9s} {'ratio':>6s}")
    for name, model in models().items():
        for setting, every in (("default", None), ("heavy", 1)):
            plain, watched = [], []
            for _ in range(args.repeats):
                plain.append(loop(model, X, y, args.epochs, every, False))
                watched.append(loop(model, X, y, args.epochs, every, True))
            p, w = statistics.median(plain), statistics.median(watched)
            print(f"{name:26s} {setting:10s} {p:8.3f} {w:9.3f} {w / p:6.3f}")
        # diagnose: pre-flight, the watched run and trials, against one plain run
        Xn, yn = X.numpy().astype(np.float64), y.numpy()
        start = time.perf_counter()
        loop(model, X, y, args.epochs, None, False)
        plain_s = time.perf_counter() - start
        start = time.perf_counter()
        nndoctor.diagnose(
            model, Xn, yn, loss=nn.CrossEntropyLoss(),
            optimizer=lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
            epochs=args.epochs, batch_size=64, progress=False,
        )  # fmt: skip
        diag_s = time.perf_counter() - start
        print(f"{name:26s} diagnose   {plain_s:8.3f} {diag_s:9.3f} {diag_s / plain_s:6.3f}")


if __name__ == "__main__":
    main()
