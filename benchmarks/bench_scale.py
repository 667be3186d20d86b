"""Data sets of real size: every bound on 1e6 x 100, and ``diagnose`` against the plain run.

Issue 11's targets, measured here (never asserted in tests):

1. ``least_squares`` on 1,000,000 x 100 rows for MSE (10 targets), BCE (one column) and
   10-class CrossEntropy: seconds (wall and CPU) and peak memory beyond the data, against
   targets of 10 s and 500 MB; accuracy against the exact fit (``np.linalg.lstsq`` for MSE; for
   BCE and CrossEntropy the same exact-gradient Newton iteration run on to a Newton decrement
   of 1e-12 per row, whose fixed point is the exact optimum). The machine's speed in this run
   is one pass of ``X.T @ X`` over the same data.
2. ``diagnose`` (trials on) against the plain ``nndoctor.nn.train`` run of the same setup, at
   100,000 x 100 (MLP 100-64-64-10) and at MNIST shape (60,000 x 784, 784-64-64-10), both
   CrossEntropy with Adam: time ratio (target 3x) and peak-memory ratio (target 1.5x), with the
   doctor's own pieces (data statistics, bounds, predictability) timed alone.
3. Peak memory of ``diagnose`` at 2 and at 8 epochs: it must not grow with the epochs.

Run: ``python benchmarks/bench_scale.py [--quick]`` (``--quick``: a tenth of the rows).
Peak memory is what ``tracemalloc`` sees NumPy allocate (measured in a second, traced run, so
the timings are not slowed by tracing).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from nndoctor import bounds, diagnose
from nndoctor.bounds import _fits
from nndoctor.doctor.context import data_stats
from nndoctor.nn import BCE, MSE, Adam, CrossEntropy, mlp, train

MB = 1e6


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process, all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def peak(fn: Callable[[], Any]) -> float:
    """Peak bytes allocated (and traced) while ``fn`` runs, beyond what existed before."""
    tracemalloc.start()
    try:
        fn()
        return float(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def classification(n: int, d: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, classes)) * (2.0 / np.sqrt(d))
    labels = np.argmax(X @ W + rng.gumbel(size=(n, classes)), axis=1)
    return X, labels


def exact_reference(X: np.ndarray, Y: np.ndarray, loss: Any) -> float:
    """The exact optimum: lstsq for squared error; Newton with exact gradients to 1e-12."""
    if isinstance(loss, MSE):
        A = np.column_stack([X, np.ones(len(X))])
        coef = np.linalg.lstsq(A, Y, rcond=None)[0]
        return float(np.mean((A @ coef - Y) ** 2))
    saved = (_fits.GAP_TOL, _fits.MAX_PASSES)
    _fits.GAP_TOL, _fits.MAX_PASSES = 0.0, 60
    try:
        return bounds.least_squares(X, Y, loss, seed=1).loss
    finally:
        _fits.GAP_TOL, _fits.MAX_PASSES = saved


def bench_bounds(n: int, d: int = 100) -> None:
    X, labels = classification(n, d, 10, seed=0)
    rng = np.random.default_rng(1)
    Z = X @ (rng.standard_normal((d, 10)) / np.sqrt(d))
    cases = [
        ("MSE, 10 targets", Z + rng.standard_normal(Z.shape), MSE()),
        ("BCE, 1 column", (Z[:, :1] + rng.logistic(size=(n, 1)) > 0).astype(float), BCE()),
        ("CrossEntropy, 10 classes", labels, CrossEntropy()),
    ]
    _, gram_wall, gram_cpu = timed(lambda: X.T @ X)
    print(f"== bounds: least_squares on {n} x {d} (data {X.nbytes / MB:.0f} MB)")
    print(
        f"machine speed in this run: one X.T @ X pass {gram_wall:.2f} s wall, {gram_cpu:.2f} s CPU"
    )
    print(
        f"{'loss':<26} {'method':<18} {'wall s':>7} {'CPU s':>7} {'x X^TX':>7} {'peak MB':>8} "
        f"{'loss':>10} {'exact':>10} {'|diff|':>9} {'error bar':>9}"
    )
    for name, Y, loss in cases:
        fit, wall, cpu = timed(lambda Y=Y, loss=loss: bounds.least_squares(X, Y, loss))
        mem = peak(lambda Y=Y, loss=loss: bounds.least_squares(X, Y, loss))
        exact = exact_reference(X, Y, loss)
        print(
            f"{name:<26} {fit.method:<18} {wall:>7.2f} {cpu:>7.2f} {wall / gram_wall:>7.1f} "
            f"{mem / MB:>8.0f} {fit.loss:>10.6f} {exact:>10.6f} {abs(fit.loss - exact):>9.1e} "
            f"{fit.error_bar:>9.1e}"
        )
    print("targets: 10 s and 500 MB beyond the data per bound")


def bench_diagnose(n: int, d: int, hidden: tuple[int, ...], epochs: int, batch: int) -> None:
    X, labels = classification(n, d, 10, seed=2)
    sizes = [d, *hidden, 10]
    setup = {
        "loss": CrossEntropy(),
        "epochs": epochs,
        "batch_size": batch,
        "shuffle": True,
    }

    def plain() -> Any:
        return train(
            mlp(sizes, seed=0), X, labels, optimizer=Adam(lr=1e-3), progress=False, **setup
        )

    def doctor() -> Any:
        return diagnose(mlp(sizes, seed=0), X, labels, optimizer=Adam(lr=1e-3), **setup)

    print(f"== diagnose: {n} x {d}, MLP {'-'.join(map(str, sizes))}, {epochs} epochs of {batch}")
    _, p_wall, p_cpu = timed(plain)
    report, d_wall, d_cpu = timed(doctor)
    p_mem, d_mem = peak(plain), peak(doctor)
    _, s_wall, _ = timed(lambda: data_stats(X, labels, "classification"))
    _, b_wall, _ = timed(lambda: bounds.least_squares(X, labels, CrossEntropy(), batch))
    _, k_wall, _ = timed(lambda: bounds.predictability(X, labels, 0, max_samples=1000))
    print(f"plain train: {p_wall:.2f} s wall ({p_cpu:.2f} s CPU), peak {p_mem / MB:.0f} MB")
    print(f"diagnose:    {d_wall:.2f} s wall ({d_cpu:.2f} s CPU), peak {d_mem / MB:.0f} MB")
    print(
        f"ratio: time {d_wall / p_wall:.2f}x wall, {d_cpu / p_cpu:.2f}x CPU (target 3x); "
        f"peak memory {d_mem / p_mem:.2f}x (target 1.5x)"
    )
    print(
        f"the doctor's own pieces alone: data statistics {s_wall:.2f} s, affine bound "
        f"{b_wall:.2f} s, predictability {k_wall:.2f} s; causes: "
        f"{', '.join(f.code for f in report.causes) or 'none'}"
    )


def bench_epochs(n: int) -> None:
    X, labels = classification(n, 50, 10, seed=3)
    peaks = []
    for epochs in (2, 8):

        def run(epochs: int = epochs) -> Any:
            return diagnose(
                mlp([50, 64, 10], seed=0),
                X,
                labels,
                loss=CrossEntropy(),
                optimizer=Adam(lr=1e-3),
                epochs=epochs,
                batch_size=128,
                trials=False,
            )

        peaks.append(peak(run))
    print(
        f"== memory against epochs ({n} x 50, trials off): peak {peaks[0] / MB:.1f} MB at 2 "
        f"epochs, {peaks[1] / MB:.1f} MB at 8 ({peaks[1] / peaks[0]:.2f}x)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    bench_bounds(1_000_000 // scale)
    bench_diagnose(100_000 // scale, 100, (64, 64), epochs=3, batch=256)
    bench_diagnose(60_000 // scale, 784, (64, 64), epochs=2, batch=128)
    bench_epochs(20_000 // scale)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
