"""Cost of watching the small language model (issue 23): ``nndoctor.watch`` around the plain loop
of the healthy ``lm`` case (a GPT-style decoder, 2 blocks, width 32, 50 steps an epoch of 16
sequences of 16 tokens, AdamW with warmup and clipping) against the same loop unwatched. The issue
judges runs of 1 s or more: the catalog's 4 epochs (200 steps) take 0.85-1.2 s here, so the
default is 8 epochs (400 steps, about 2 s); ``--epochs 4`` measures the catalog's own run.

As ``bench_watch_overhead.py``: a fresh copy per run, plain and watched runs in pairs, the
watched one first in every other pair, after a warm-up of each; the ratio is the median of the
pairs' ratios; this process's CPU seconds with one torch thread. Settings: the default (every 16
steps at first, then within 1% of the run's time) and ``every=16`` (a fixed interval), each with
the number of probes; and the default with the per-step stability work alone switched off (the
stability tap's ``step`` a no-op), which prices that per-step work. Measures, never fails.
Run: ``python benchmarks/bench_lm_overhead.py [--repeats 15] [--epochs 8]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

import nndoctor
from nndoctor.scenarios.torch_lm import LM_CATALOG


def loop(setting: str, every: int | None, epochs: int) -> tuple[float, int]:
    """CPU seconds of one run of the healthy ``lm`` case, and the probes the watch took."""
    setup = next(s for s in LM_CATALOG if s.name == "lm").build(0)
    model, loss_fn = setup.model, setup.loss
    X, Y = torch.as_tensor(setup.X), torch.as_tensor(setup.Y)
    opt = setup.optimizer(model.parameters())
    base = [g["lr"] for g in opt.param_groups]
    watch = None
    if setting != "plain":
        watch = nndoctor.watch(model, opt, alerts=False, every=every)
        if setting == "no per-step":
            watch.stability.step = lambda: None
    warmup, clip, batch = setup.options["warmup"], setup.options["clip"], setup.batch_size
    start = time.process_time()
    step = 0
    for _ in range(epochs):
        for lo in range(0, len(X), batch):
            if step < warmup:
                for g, lr in zip(opt.param_groups, base, strict=True):
                    g["lr"] = lr * (step + 1) / warmup
            opt.zero_grad()
            out = model(X[lo : lo + batch])
            loss = loss_fn(out, Y[lo : lo + batch])
            if watch is not None:
                watch.log(loss, out, Y[lo : lo + batch])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            step += 1
    seconds = time.process_time() - start
    probes = 0
    if watch is not None:
        watch.close()
        probes = len(watch.probes().steps)
    return seconds, probes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for setting in ("plain", "default", "plain", "default"):  # warm-up
        loop(setting, None, args.epochs)
    print(f"{'setting':22s} {'plain s':>8s} {'watched s':>9s} {'ratio':>6s} probes")
    for setting, every in (("default", None), ("no per-step", None), ("every=16", 16)):
        name = "default" if setting == "every=16" else setting
        plain, watched, probes = [], [], []
        for r in range(args.repeats):
            for watch_it in (False, True) if r % 2 == 0 else (True, False):
                seconds, n = loop(name if watch_it else "plain", every, args.epochs)
                (watched if watch_it else plain).append(seconds)
                if watch_it:
                    probes.append(n)
        ratio = statistics.median(b / a for a, b in zip(plain, watched, strict=True))
        p, w = statistics.median(plain), statistics.median(watched)
        print(f"{setting:22s} {p:8.3f} {w:9.3f} {ratio:6.3f} {min(probes)}-{max(probes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
