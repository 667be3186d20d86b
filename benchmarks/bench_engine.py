"""One training step of the seed's autoencoder, four ways, timed in the same run.

The seed setup (docs/seed.md): 100 samples of 8x8 uniform data from
``np.random.default_rng(42)``, an 8-3-8 sigmoid autoencoder, SSE, SGD at lr 0.05, one step per
sample (an 8x8 matrix is a batch of its 8 columns). The variants:

(a) a per-element Python loop over NumPy arrays, as the asker wrote it (with a correct gradient);
(b) the engine: ``nndoctor.nn.train`` with ``batch_size=8``;
(c) the answer's PyTorch loop, one sample per step (if torch is installed; one thread);
(d) a fused step compiled with numba (if installed): forward, backward and update in one loop.

All four first train one epoch from the same weights and must agree with the engine to 1e-12;
then each is timed (best of a few repeats, so that a busy machine inflates no number) and
reported in microseconds per step and as a ratio to the engine. A breakdown of the engine step
follows, with a note on where its time goes. Run: ``python benchmarks/bench_engine.py``.
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Callable

import numpy as np

from nndoctor.nn import SGD, SSE, Dense, Sequential, Sigmoid, train

LR = 0.05
SAMPLES = np.random.default_rng(42).random((100, 8, 8))  # seed layout: vectors are columns
ROWS = SAMPLES.transpose(0, 2, 1).reshape(800, 8)  # engine layout: vectors are rows
N_STEPS = len(SAMPLES)  # steps per epoch
REPEATS = 5

Weights = dict[str, np.ndarray]


def initial_weights() -> Weights:
    """Xavier weights in the seed's naming: W1 (3, 8), b1 (3,), W2 (8, 3), b2 (8,)."""
    rng = np.random.default_rng(0)
    enc, dec = Dense(8, 3, seed=rng), Dense(3, 8, seed=rng)
    # Non-zero biases so that every variant's bias code is exercised.
    return {
        "W1": enc.params["W"],
        "b1": rng.uniform(-0.1, 0.1, 3),
        "W2": dec.params["W"],
        "b2": rng.uniform(-0.1, 0.1, 8),
    }


def best_time_per_step(run_epochs: Callable[[int], object], epochs: int) -> float:
    """Microseconds per step: the best of REPEATS runs of ``epochs`` epochs."""
    best = math.inf
    for _ in range(REPEATS):
        start = time.perf_counter()
        run_epochs(epochs)
        best = min(best, time.perf_counter() - start)
    return best / (epochs * N_STEPS) * 1e6


# (a) The asker's style: every element its own Python statement.
def loop_epoch(w: Weights, epochs: int = 1) -> None:
    W1, b1, W2, b2 = w["W1"], w["b1"], w["W2"], w["b2"]
    for _ in range(epochs):
        for X in SAMPLES:
            H = np.zeros((3, 8))
            for j in range(3):
                for c in range(8):
                    s = b1[j]
                    for i in range(8):
                        s += W1[j, i] * X[i, c]
                    H[j, c] = 1.0 / (1.0 + math.exp(-s))
            d2 = np.zeros((8, 8))  # (Y - X) * Y * (1 - Y)
            for r in range(8):
                for c in range(8):
                    s = b2[r]
                    for j in range(3):
                        s += W2[r, j] * H[j, c]
                    y = 1.0 / (1.0 + math.exp(-s))
                    d2[r, c] = (y - X[r, c]) * y * (1.0 - y)
            d1 = np.zeros((3, 8))  # (W2.T @ d2) * H * (1 - H)
            for j in range(3):
                for c in range(8):
                    s = 0.0
                    for r in range(8):
                        s += W2[r, j] * d2[r, c]
                    d1[j, c] = s * H[j, c] * (1.0 - H[j, c])
            for r in range(8):
                for j in range(3):
                    g = 0.0
                    for c in range(8):
                        g += d2[r, c] * H[j, c]
                    W2[r, j] -= LR * g
                b2[r] -= LR * sum(d2[r, c] for c in range(8))
            for j in range(3):
                for i in range(8):
                    g = 0.0
                    for c in range(8):
                        g += d1[j, c] * X[i, c]
                    W1[j, i] -= LR * g
                b1[j] -= LR * sum(d1[j, c] for c in range(8))


# (b) The engine.
def engine_model(w: Weights) -> Sequential:
    model = Sequential(Dense(8, 3, init="zeros"), Sigmoid(), Dense(3, 8, init="zeros"), Sigmoid())
    model.set_parameters({"0.W": w["W1"], "0.b": w["b1"], "2.W": w["W2"], "2.b": w["b2"]})
    return model


def engine_runner(model: Sequential) -> Callable[[int], object]:
    optimizer = SGD(lr=LR)
    return lambda epochs: train(
        model, ROWS, loss=SSE(), optimizer=optimizer, epochs=epochs, batch_size=8, progress=False
    )


def engine_weights(model: Sequential) -> Weights:
    p = model.named_parameters()
    return {"W1": p["0.W"], "b1": p["0.b"], "W2": p["2.W"], "b2": p["2.b"]}


# (c) The answer's PyTorch loop.
def torch_runner(w: Weights) -> tuple[Callable[[int], object], Callable[[], Weights]]:
    import torch

    torch.set_num_threads(1)
    params = {k: torch.nn.Parameter(torch.tensor(v, dtype=torch.float64)) for k, v in w.items()}
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    optimizer = torch.optim.SGD(params.values(), lr=LR)
    samples = [torch.from_numpy(X) for X in SAMPLES]

    def run(epochs: int) -> None:
        for _ in range(epochs):
            for X in samples:
                optimizer.zero_grad()
                H = torch.sigmoid(W1 @ X + b1[:, None])
                Y = torch.sigmoid(W2 @ H + b2[:, None])
                loss = torch.nn.functional.mse_loss(Y, X, reduction="sum") / 2
                loss.backward()
                optimizer.step()

    return run, lambda: {k: v.detach().numpy() for k, v in params.items()}


# (d) A fused step for this one network, compiled.
def numba_epochs(W1, b1, W2, b2, samples, lr, epochs):
    """``epochs`` passes of per-sample SGD, updating the weights in place (seed layout)."""
    H = np.empty((3, 8))
    d1 = np.empty((3, 8))
    d2 = np.empty((8, 8))
    for _ in range(epochs):
        for k in range(samples.shape[0]):
            X = samples[k]
            for j in range(3):
                for c in range(8):
                    s = b1[j]
                    for i in range(8):
                        s += W1[j, i] * X[i, c]
                    H[j, c] = 1.0 / (1.0 + math.exp(-s))
            for r in range(8):
                for c in range(8):
                    s = b2[r]
                    for j in range(3):
                        s += W2[r, j] * H[j, c]
                    y = 1.0 / (1.0 + math.exp(-s))
                    d2[r, c] = (y - X[r, c]) * y * (1.0 - y)
            for j in range(3):
                for c in range(8):
                    s = 0.0
                    for r in range(8):
                        s += W2[r, j] * d2[r, c]
                    d1[j, c] = s * H[j, c] * (1.0 - H[j, c])
            for r in range(8):
                gb = 0.0
                for c in range(8):
                    gb += d2[r, c]
                for j in range(3):
                    g = 0.0
                    for c in range(8):
                        g += d2[r, c] * H[j, c]
                    W2[r, j] -= lr * g
                b2[r] -= lr * gb
            for j in range(3):
                gb = 0.0
                for c in range(8):
                    gb += d1[j, c]
                for i in range(8):
                    g = 0.0
                    for c in range(8):
                        g += d1[j, c] * X[i, c]
                    W1[j, i] -= lr * g
                b1[j] -= lr * gb


def agree(name: str, got: Weights, reference: Weights) -> None:
    """Stop the benchmark if a variant does not compute the same training run."""
    diff = max(float(np.max(np.abs(got[k] - reference[k]))) for k in reference)
    if diff > 1e-12:
        raise SystemExit(f"{name} disagrees with the engine after one epoch: {diff:.1e}")
    print(f"  {name:<28} agrees with the engine after one epoch (max diff {diff:.0e})")


def engine_breakdown(step_us: float) -> None:
    """Time each part of an engine step on one batch, and say where the step goes."""
    model = engine_model(initial_weights())
    loss, optimizer = SSE(), SGD(lr=0.0)  # lr 0: the timed loop leaves the weights alone
    params, grads = model.named_parameters(), model.named_gradients()
    Xb = ROWS[:8]
    n = 20_000

    def per_call(fn: Callable[[], object]) -> float:
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            best = min(best, time.perf_counter() - start)
        return best / n * 1e6

    parts: dict[str, float] = {}
    h = Xb
    for i, layer in enumerate(model.layers):
        parts[f"{i}.{type(layer).__name__}.forward"] = per_call(lambda L=layer, a=h: L.forward(a))
        h = layer.forward(h)
    P = h
    parts["SSE value"] = per_call(lambda: loss(P, Xb))
    parts["SSE gradient"] = per_call(lambda: loss.gradient(P, Xb))
    g = loss.gradient(P, Xb)
    for i in reversed(range(len(model.layers))):
        layer = model.layers[i]
        parts[f"{i}.{type(layer).__name__}.backward"] = per_call(lambda L=layer, a=g: L.backward(a))
        g = layer.backward(g)
    parts["SGD.step"] = per_call(lambda: optimizer.step(params, grads))
    parts["train() bookkeeping"] = max(step_us - sum(parts.values()), 0.0)

    print("\nWhere an engine step goes (each part timed alone on one 8-row batch):")
    for name, us in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<28} {us:6.2f} us  {100 * us / step_us:5.1f}%")
    top, top_us = max(parts.items(), key=lambda kv: kv[1])
    overhead = parts["train() bookkeeping"] / step_us
    print("\nNote:", end=" ")
    if overhead > 0.25:
        print(
            f"train()'s own bookkeeping is {100 * overhead:.0f}% of the step; it is the first "
            "thing to trim."
        )
    else:
        print(
            f"train()'s own bookkeeping is only {100 * overhead:.0f}% of the step. The rest is "
            f"spread over {len(parts) - 1} parts, each a few NumPy calls on arrays of 24 to 64 "
            "numbers that cost their fixed per-call overhead (about 1 us) rather than "
            "arithmetic, so trimming calls gains percents, not orders of magnitude; the largest "
            f"part is {top} ({top_us:.1f} us). Only fusing the step into compiled code, as in "
            "(d), removes that overhead."
        )


def main() -> int:
    w0 = initial_weights()
    print("Seed setup: 100 samples of 8x8, 8-3-8 sigmoid autoencoder, SSE, SGD lr 0.05,")
    print("one step per sample (a batch of its 8 columns).\n")

    print("Checks (one epoch from the same weights):")
    model = engine_model(w0)
    engine_runner(model)(1)
    reference = {k: v.copy() for k, v in engine_weights(model).items()}
    w = {k: v.copy() for k, v in w0.items()}
    loop_epoch(w)
    agree("(a) per-element Python loop", w, reference)

    has_torch = importlib.util.find_spec("torch") is not None
    has_numba = importlib.util.find_spec("numba") is not None
    if has_torch:
        run_torch, torch_weights = torch_runner(w0)
        run_torch(1)
        agree("(c) PyTorch per-sample loop", torch_weights(), reference)
    if has_numba:
        import numba

        fused = numba.njit(cache=False)(numba_epochs)
        w = {k: v.copy() for k, v in w0.items()}
        start = time.perf_counter()
        fused(w["W1"], w["b1"], w["W2"], w["b2"], SAMPLES, LR, 1)
        compile_s = time.perf_counter() - start
        agree("(d) numba fused step", w, reference)

    print(f"\nTime per step (best of {REPEATS}):")
    times: dict[str, float] = {}
    w = {k: v.copy() for k, v in w0.items()}
    times["(a) per-element Python loop"] = best_time_per_step(lambda e: loop_epoch(w, e), 1)
    times["(b) engine train()"] = best_time_per_step(engine_runner(engine_model(w0)), 20)
    if has_torch:
        run_torch, _ = torch_runner(w0)
        times["(c) PyTorch per-sample loop"] = best_time_per_step(run_torch, 3)
    if has_numba:
        w = {k: v.copy() for k, v in w0.items()}
        args = (w["W1"], w["b1"], w["W2"], w["b2"], SAMPLES, LR)
        times["(d) numba fused step"] = best_time_per_step(lambda e: fused(*args, e), 200)
    engine_us = times["(b) engine train()"]
    for name, us in times.items():
        print(f"  {name:<28} {us:9.2f} us   {us / engine_us:8.3g} x the engine")
    if not has_torch:
        print("  (c) skipped: torch is not installed (pip install 'nndoctor[torch]')")
    if has_numba:
        print(f"  (numba compile time, paid once: {compile_s:.1f} s)")
    else:
        print("  (d) skipped: numba is not installed (pip install 'nndoctor[fast]')")

    engine_breakdown(engine_us)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
