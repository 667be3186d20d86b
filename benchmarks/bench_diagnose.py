"""What the doctor costs: ``diagnose`` on the seed case against the plain training run.

Issue 4 asks that ``diagnose`` (probes, pre-flight checks, bounds and trials included) take at
most 3x the plain ``nndoctor.nn.train`` run of the same setup: 100 samples of 8x8 uniform data,
an 8-3-8 sigmoid autoencoder from zero init, SSE, SGD lr 0.05, 1000 epochs of per-sample steps.
Both are timed in this run, so the ratio does not depend on the machine.
Run: ``python benchmarks/bench_diagnose.py``.
"""

from __future__ import annotations

import time

from nndoctor import diagnose
from nndoctor.nn import SGD, SSE, train
from nndoctor.seedcase import seed_data, seed_model

EPOCHS = 1000
LIMIT = 3.0


def main() -> int:
    _, X = seed_data(100, seed=42)
    # one setup for both runs, so that the ratio compares like with like
    setup = {"loss": SSE(), "epochs": EPOCHS, "batch_size": 8, "progress": False}
    start = time.perf_counter()
    history = train(seed_model("zeros"), X, optimizer=SGD(lr=0.05), **setup)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    report = diagnose(seed_model("zeros"), X, optimizer=SGD(lr=0.05), **setup)
    doctor = time.perf_counter() - start
    ratio = doctor / plain
    print(f"plain training: {plain:.2f} s (final loss {history.final_loss:.4f})")
    print(f"diagnose:       {doctor:.2f} s (causes: {', '.join(f.code for f in report.causes)})")
    print(
        f"ratio:          {ratio:.2f}x (limit {LIMIT:.0f}x) -> {'ok' if ratio <= LIMIT else 'OVER'}"
    )
    return 0 if ratio <= LIMIT else 1


if __name__ == "__main__":
    raise SystemExit(main())
