"""Linear code bound on 1e6 x 100 float64 rows: the chunked scatter matrix against exact SVD.

Run: ``python benchmarks/bench_bounds.py [n_rows]``. Prints the time of
``nndoctor.bounds.linear_code``, of the exact ``np.linalg.svd`` of the centred data measured in
the same run, their ratio, and the largest difference of the bounds (in loss units).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from nndoctor.bounds import linear_code
from nndoctor.nn.losses import MSE


def main(n: int = 1_000_000, d: int = 100) -> None:
    rng = np.random.default_rng(0)
    # a decaying spectrum, so that the bounds differ across ranks
    X = rng.standard_normal((n, d)) * np.geomspace(3.0, 0.1, d) + 5.0
    loss = MSE(reduction="sum")

    start = time.perf_counter()
    code = linear_code(X, loss, batch_size=8)
    t_code = time.perf_counter() - start

    start = time.perf_counter()
    s = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
    t_svd = time.perf_counter() - start
    # every batch of 8 is full, so the mean batch loss is 8 * (discarded energy) / n
    tail = np.append(np.cumsum((s**2)[::-1])[::-1], 0.0)
    exact = 8 * tail / n
    err = np.max(np.abs(code.loss_at_rank - exact) / exact[0])

    print(f"rows {n}, columns {d}")
    print(f"linear_code (chunked scatter + eigh): {t_code:.3f} s")
    print(f"np.linalg.svd of the centred data:    {t_svd:.3f} s")
    print(f"speed-up: {t_svd / t_code:.1f}x")
    print(f"largest difference of the bounds, relative to the rank-0 bound: {err:.1e}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
