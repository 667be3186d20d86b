"""Weights a loop updates by hand, with no optimizer: ``p.data.add_(p.grad, alpha=-lr)``.

PyTorch's tutorials and many reports train so. The watch reads its step from an optimizer's
step pre-hook; here there is none, so ``nndoctor run`` looks for the update itself: after a
backward pass it notes a few values and gradients of each model that got gradients
(:class:`UpdateTrace`), and when the next backward pass finds those values moved while no
optimizer exists, the loop updates by hand. The model is then watched with a
:class:`HandUpdates` stand-in over its trainable parameters, stepped once each backward pass
is done (where an optimizer's step pre-hook would run: gradients ready, update to come), at
the rate the move implies.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

# the values of each parameter compared (a few suffice: an update moves every one)
TRACED_VALUES = 64


class HandUpdates(torch.optim.Optimizer):
    """Stands in for the optimizer of a loop that updates the weights itself.

    It holds the model's trainable parameters and, as ``lr``, the rate the first update
    implied (``by_hand`` marks its group); reports read it as the plain gradient descent
    that update is (``acts_as``). Its :meth:`step` is never called: the runner tells the watch
    of each step.
    """

    acts_as = "SGD"

    def __init__(self, params: Any, lr: float) -> None:
        super().__init__(params, {"lr": lr, "by_hand": True})

    def step(self, closure: Any = None) -> None:
        raise RuntimeError("HandUpdates stands in for updates a loop makes itself: no step()")


def first_values(t: torch.Tensor) -> torch.Tensor:
    """A copy of the first ``TRACED_VALUES`` values of ``t``, flat, in its dtype and on its
    device (a sharded parameter's from this process's shard: no communication)."""
    local = t.to_local() if hasattr(t, "to_local") else t
    return local.detach().reshape(-1)[:TRACED_VALUES].clone()


def _wide(t: torch.Tensor) -> torch.Tensor:
    return t.to("cpu", torch.float64)  # (float64 on the host: an MPS device has none)


class UpdateTrace:
    """A few values and gradients of ``model``'s parameters after a backward pass, to tell at
    the next one whether the loop moved them (and by what rate)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.values: list[torch.Tensor] = []
        self.grads: list[torch.Tensor | None] = []
        self.mark()

    def mark(self) -> None:
        params = list(self.model.parameters())
        self.values = [first_values(p) for p in params]
        self.grads = [None if p.grad is None else first_values(p.grad) for p in params]

    def moved(self) -> float | None:
        """The rate of the update since :meth:`mark` (``-<dw, g> / <g, g>`` over the traced
        values: exactly ``lr`` for ``w -= lr * g``; NaN when the move is not along the
        gradient), or None when no traced value moved."""
        params = list(self.model.parameters())
        if len(params) != len(self.values):
            return None
        along = norm = 0.0
        moved = False
        for p, before, grad in zip(params, self.values, self.grads, strict=True):
            now = first_values(p)
            if now.shape != before.shape:
                return None
            step = _wide(now) - _wide(before)
            moved = moved or bool((step != 0).any())
            if grad is not None:
                g = _wide(grad)
                along -= float(step @ g)
                norm += float(g @ g)
        if not moved:
            return None
        rate = along / norm if norm > 0 else math.nan
        return rate if rate > 0 and math.isfinite(rate) else math.nan
