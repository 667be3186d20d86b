"""The fixes of training instabilities that a trial makes to a run of copies (the backend's
training loop applies them): qk-layernorm on every attention, z-loss on the output logits, a
module in float32, a learning-rate warmup, gradient clipping, loss scaling.

None of them edits the user's model class: qk-layernorm acts on the calls to
``scaled_dot_product_attention`` (a ``TorchFunctionMode`` during the forward pass), float32 on
the module's forward through two hooks, z-loss wraps the loss.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode


class QKNormMode(TorchFunctionMode):
    """While on, every ``scaled_dot_product_attention`` gets its queries and keys normalised
    over each head's features (a LayerNorm without learned gains): each logit is then at most
    ``sqrt(head_dim)`` times the scale, whatever the weights grew to. Counts the calls it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(
        self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            self.calls += 1
            q, k, *rest = args if len(args) >= 2 else (kwargs.pop("query"), kwargs.pop("key"))
            q = F.layer_norm(q, q.shape[-1:])
            k = F.layer_norm(k, k.shape[-1:])
            return func(q, k, *rest, **kwargs)
        return func(*args, **kwargs)


def uses_attention(model: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``model``'s forward pass on ``x`` calls ``scaled_dot_product_attention`` (on a
    copy: the run, its random state and its norm statistics are left as they were)."""
    import copy

    probe = copy.deepcopy(model)
    mode = QKNormMode()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad(), mode:
            probe(x)
    except Exception:  # a model the normalised attention breaks: no trial
        return False
    return mode.calls > 0


def with_z_loss(loss: Callable[..., Any], weight: float) -> Callable[..., Any]:
    """``loss`` plus ``weight * mean(logsumexp(output) ** 2)`` over the output's last axis."""

    def z_loss(output: torch.Tensor, target: Any) -> torch.Tensor:
        log_z = torch.logsumexp(output.float(), dim=-1)
        return loss(output, target) + weight * log_z.pow(2).mean()

    z_loss.__name__ = f"{getattr(loss, '__name__', type(loss).__name__)} + z-loss"
    return z_loss


@contextlib.contextmanager
def in_float32(model: nn.Module, names: list[str]) -> Iterator[None]:
    """The modules ``names`` of ``model`` run in float32 while inside: autocast off, their
    floating inputs cast up (their outputs stay float32; what follows casts as it needs)."""
    modules = dict(model.named_modules())
    handles = []
    stack: list[Any] = []

    def pre(module: nn.Module, args: tuple) -> tuple:
        ctx = torch.autocast(_device_of(module, args), enabled=False)
        ctx.__enter__()
        stack.append(ctx)
        return tuple(
            a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args
        )

    def post(module: nn.Module, args: tuple, output: Any) -> None:
        stack.pop().__exit__(None, None, None)

    for name in names:
        module = modules.get(name)
        if module is None:
            continue
        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post, always_call=True))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _device_of(module: nn.Module, args: tuple) -> str:
    for a in args:
        if isinstance(a, torch.Tensor):
            return a.device.type
    p = next(module.parameters(), None)
    return p.device.type if p is not None else "cpu"


def warmup_lr(base: list[float], step: int, steps: int) -> list[float]:
    """The learning rates of a linear warmup over ``steps`` at (0-based) ``step``."""
    factor = min(1.0, (step + 1) / steps)
    return [lr * factor for lr in base]
