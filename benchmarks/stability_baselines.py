"""The spike and divergence detectors the field uses, as published, for ``bench_stability.py``.

Each detector reads the series a training loop sees step by step (the loss, and where it uses one
the total gradient norm) and returns the steps it flags, in order; what its library then does
(log, stop, skip the batch) is left out. Written from the public code (not copied):

- **OLMo-core** ``StabilityMonitorCallback``: a value above the mean of the last 128 values by
  more than 6 of their (population) standard deviations, once 128 are held, on the loss and on
  the gradient norm; every value enters the window (a NaN then silences it).
- **llm-foundry** ``KillLossSpike``: with a full window of 100 losses, a loss at least twice
  their mean is an outlier; more than ``patience=4`` outliers in a row flag; from step 200,
  half the window above ``loss_cap=10`` flags too ("persistently high").
- **Lightning** ``SpikeDetection``: from batch 1, a loss that is not finite, or not below the
  previous one and at least ``rtol=2`` times the running mean of the last 10 accepted losses
  away from it (``|loss - mean| >= 2 mean``).
- **NeMo** spiky loss (Megatron's ``is_unexpectedly_large``, factor 10): the largest absolute loss
  of the first 100 finite ones sets the scale; a later loss at least 10 times it flags (NaN and
  inf are left to a separate check).
- **Megatron-LM**'s rerun state machine with ``check_for_nan_in_loss_and_grad``,
  ``check_for_spiky_loss`` and ``check_for_large_grads``: a NaN or inf loss or gradient norm,
  and the factor-10 rule on the loss and on the gradient norm.
- **torchtitan**: the finiteness check before the optimizer step: a gradient norm (or loss) that
  is not finite.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence


def olmo_core(loss: Sequence[float], grad: Sequence[float], window: int = 128,
              sigmas: float = 6.0) -> list[int]:  # fmt: skip
    def spikes(values: Sequence[float]) -> set[int]:
        out, history = set(), deque(maxlen=window)
        for step, v in enumerate(values):
            if len(history) == window:
                mean = sum(history) / window
                std = math.sqrt(sum((x - mean) ** 2 for x in history) / window)
                if std >= 1e-10 and v > mean + sigmas * std:
                    out.add(step)
            history.append(v)
        return out

    return sorted(spikes(loss) | spikes(grad))


def llm_foundry(loss: Sequence[float], window: int = 100, multiplier: float = 2.0,
                patience: int = 4, cap: float = 10.0) -> list[int]:  # fmt: skip
    out, history, outliers = [], deque(maxlen=window), 0
    for step, v in enumerate(loss):
        if len(history) == window:
            mean = sum(history) / window
            if v >= mean * multiplier:
                outliers += 1
                if outliers > patience:
                    out.append(step)
            else:
                outliers = 0
                high = sum(1 for x in history if x > cap)
                if step >= 2 * window and high >= window / 2:
                    out.append(step)
        history.append(v)
    return out


def lightning(loss: Sequence[float], window: int = 10, warmup: int = 1,
              rtol: float = 2.0) -> list[int]:  # fmt: skip
    out, accepted, last = [], deque(maxlen=window), 0.0
    for step, v in enumerate(loss):
        mean = sum(accepted) / len(accepted) if accepted else math.nan
        spike = False
        if step >= warmup:
            if not math.isfinite(v):
                spike = True
            elif v - last > 0:  # not an improvement on the previous loss
                spike = abs(v - mean) >= abs(rtol * mean)
        if spike:
            out.append(step)
        else:
            accepted.append(v)
            last = v
    return out


def _unexpectedly_large(values: Sequence[float], factor: float = 10.0,
                        samples: int = 100) -> list[int]:  # fmt: skip
    out, seen, top = [], 0, 0.0
    for step, v in enumerate(values):
        if not math.isfinite(v):
            continue
        if seen < samples:
            seen += 1
            top = max(top, abs(v))
        elif abs(v) >= factor * top:
            out.append(step)
    return out


def nemo(loss: Sequence[float]) -> list[int]:
    return _unexpectedly_large(loss)


def megatron(loss: Sequence[float], grad: Sequence[float]) -> list[int]:
    nonfinite = {s for s, v in enumerate(loss) if not math.isfinite(v)}
    nonfinite |= {s for s, v in enumerate(grad) if not math.isfinite(v)}
    return sorted(nonfinite | set(_unexpectedly_large(loss)) | set(_unexpectedly_large(grad)))


def torchtitan(loss: Sequence[float], grad: Sequence[float]) -> list[int]:
    return sorted(
        {s for s, v in enumerate(grad) if not math.isfinite(v)}
        | {s for s, v in enumerate(loss) if not math.isfinite(v)}
    )


# name -> detector(loss, grad) -> flagged steps
BASELINES: dict[str, Callable[[Sequence[float], Sequence[float]], list[int]]] = {
    "OLMo-core": olmo_core,
    "llm-foundry": lambda loss, grad: llm_foundry(loss),
    "Lightning": lambda loss, grad: lightning(loss),
    "NeMo": lambda loss, grad: nemo(loss),
    "Megatron": megatron,
    "torchtitan": torchtitan,
}
