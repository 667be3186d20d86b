"""Optimisers with PyTorch's exact update rules (``torch.optim.SGD`` and ``torch.optim.Adam``).

An optimiser holds hyperparameters and per-parameter state keyed by parameter name. ``step``
updates the arrays of ``params`` in place, so the model sees the change.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class Optimizer:
    def __init__(self, lr: float) -> None:
        if not (isinstance(lr, int | float) and math.isfinite(lr) and lr >= 0):
            raise ValueError(f"learning rate must be a finite number >= 0, got {lr!r}")
        self.lr = float(lr)
        self.state: dict[str, dict[str, Any]] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget all per-parameter state (momentum buffers, moment estimates)."""
        self.state = {}

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments: ``type(opt)(**opt.get_params())`` is a fresh copy."""
        raise NotImplementedError

    def fresh(self) -> Optimizer:
        """A new optimiser with the same settings and no state (no momentum, no moments)."""
        return type(self)(**self.get_params())

    def with_lr(self, lr: float) -> Optimizer:
        """A fresh optimiser (no state) with the same settings but learning rate ``lr``."""
        return type(self)(**{**self.get_params(), "lr": lr})

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov, weight decay.

    As in PyTorch: ``g <- g + wd * p``; ``v <- g`` on the first step, then
    ``v <- mu * v + (1 - dampening) * g``; ``g <- g + mu * v`` (Nesterov) or ``g <- v``;
    ``p <- p - lr * g``.
    """

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(lr)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires momentum > 0 and dampening = 0")
        self.momentum = float(momentum)
        self.dampening = float(dampening)
        self.weight_decay = float(weight_decay)
        self.nesterov = bool(nesterov)

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                state = self.state.setdefault(name, {})
                if "momentum_buffer" not in state:
                    buf = state["momentum_buffer"] = g.copy()
                else:
                    buf = state["momentum_buffer"]
                    buf *= self.momentum
                    buf += (1.0 - self.dampening) * g
                g = g + self.momentum * buf if self.nesterov else buf
            p -= self.lr * g

    def get_params(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "dampening": self.dampening,
            "weight_decay": self.weight_decay,
            "nesterov": self.nesterov,
        }


class Adam(Optimizer):
    """Adam (Kingma & Ba), with PyTorch's placement of ``eps``: after the square root of the
    bias-corrected second moment,
    ``p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
    ``weight_decay`` adds ``wd * p`` to the gradient (L2, not AdamW)."""

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr)
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise ValueError(f"Adam betas must be two numbers in [0, 1), got {betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        beta1, beta2 = self.betas
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * p
            state = self.state.get(name)
            if state is None:
                state = self.state[name] = {
                    "step": 0,
                    "exp_avg": np.zeros_like(p),
                    "exp_avg_sq": np.zeros_like(p),
                }
            state["step"] += 1
            t = state["step"]
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m += (1.0 - beta1) * (g - m)
            v *= beta2
            v += (1.0 - beta2) * g * g
            step_size = self.lr / (1.0 - beta1**t)
            denom = np.sqrt(v) / math.sqrt(1.0 - beta2**t) + self.eps
            p -= step_size * (m / denom)

    def get_params(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
        }


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam}
