"""What the doctor needs to know about a ``torch.nn.Module``: its weighted layers, the
activation after each (an activation module that takes the layer's output says which; else it
is read off the numbers, so functional activations count), and the structural changes a trial
can make. Imported only when torch is.

A *weighted layer* is a module with its own weight of at least two dimensions (Linear, Conv*,
Embedding, Bilinear, ...) or a recurrent layer (RNN, LSTM, GRU: ``weight_ih_l0``). Its weight is
viewed as ``(units, fan_in)``: conv kernels flattened per output channel.
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from nndoctor.backends.torch.sharded import full
from nndoctor.doctor.schema import UNKNOWN, LayerSpec

# candidate activations, tried in this order on (z, h) pairs
_CANDIDATES: tuple[tuple[str, Any], ...] = (
    ("identity", lambda z: z),
    ("relu", torch.relu),
    ("sigmoid", torch.sigmoid),
    ("tanh", torch.tanh),
    ("softmax", lambda z: torch.softmax(z, dim=-1)),
    ("log_softmax", lambda z: torch.log_softmax(z, dim=-1)),
    ("gelu", nn.functional.gelu),
    ("silu", nn.functional.silu),
    ("leakyrelu", nn.functional.leaky_relu),
    ("elu", nn.functional.elu),
)
_RECURRENT = (nn.RNNBase,)
# norm layers: their weight is a scale per element (2-d under ``LayerNorm([nodes, channels])``),
# not rows of units, and starts at 1 by design
_NORMS = tuple(n for n in (nn.LayerNorm, nn.GroupNorm, getattr(nn, "RMSNorm", None)) if n)


def weight_of(module: nn.Module) -> torch.Tensor | None:
    """The weight whose rows are the module's units, or None for a module without one."""
    if isinstance(module, _RECURRENT):
        return getattr(module, "weight_ih_l0", None)
    if isinstance(module, _NORMS):
        return None
    w = module._parameters.get("weight")
    return w if w is not None and w.dim() >= 2 else None


def bias_of(module: nn.Module) -> torch.Tensor | None:
    if isinstance(module, _RECURRENT):
        return getattr(module, "bias_ih_l0", None)
    b = module._parameters.get("bias")
    return b if b is not None and b.dim() == 1 else None


def kind_of(module: nn.Module) -> str:
    """``"dense"`` for modules whose output columns are their units (Linear, Conv),
    ``"embedding"`` and ``"recurrent"`` for the others."""
    if isinstance(module, _RECURRENT):
        return "recurrent"
    if isinstance(module, nn.Embedding | nn.EmbeddingBag):
        return "embedding"
    return "dense"


def layer_spec(name: str, module: nn.Module) -> LayerSpec:
    """The spec of a weighted layer (``"dense"``, ``"embedding"``, ``"recurrent"``): its units
    are the weight's first axis, its inputs the rest."""
    W = weight_of(module)
    conv = isinstance(module, nn.modules.conv._ConvNd)
    return LayerSpec(kind_of(module), math.prod(W.shape[1:]), W.shape[0], None, name, conv)


def held(optimizer: torch.optim.Optimizer) -> set[int]:
    """The ids of the tensors ``optimizer`` steps (its parameter groups')."""
    return {id(p) for g in optimizer.param_groups for p in g["params"]}


def when_others_step(own: torch.optim.Optimizer, fn: Any) -> Any:
    """A global optimizer step pre-hook that calls ``fn()`` when an optimizer other than
    ``own`` steps (its backward passes so far were that one's); returns its handle. Not to
    be registered from inside a global step hook: torch iterates their dict."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    def other_step(optimizer: Any, args: Any, kwargs: Any) -> None:
        if optimizer is not own:
            fn()

    return register_optimizer_step_pre_hook(other_step)


def weighted_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(qualified name, module)`` of every weighted layer, in registration order."""
    return [(name, m) for name, m in model.named_modules() if weight_of(m) is not None]


def as_units(W: torch.Tensor) -> np.ndarray:
    """A weight as ``(units, fan_in)`` float64 on the host (a sharded weight whole: every rank
    gathers it)."""
    W = full(W.detach())
    return W.to("cpu", torch.float64).reshape(W.shape[0], -1).numpy()


def unit_columns(z: torch.Tensor, kind: str) -> torch.Tensor | None:
    """A layer's output as ``(rows, units)``: conv channels moved last; None for outputs
    that have no such view (recurrent tuples)."""
    if not isinstance(z, torch.Tensor) or z.dim() < 2 or kind != "dense":
        return None
    if z.dim() > 2:  # (N, C, *spatial) from a conv: channels are the units
        z = z.movedim(1, -1)
    return z.reshape(-1, z.shape[-1])


# activation modules by class (a subclass counts as its base: ReLU6 before Hardtanh); the names
# are those of the numeric candidates where one exists
_ACTIVATION_CLASSES: dict[type, str] = {
    nn.Identity: "identity",
    nn.ReLU: "relu",
    nn.ReLU6: "relu6",
    nn.LeakyReLU: "leakyrelu",
    nn.PReLU: "prelu",
    nn.RReLU: "rrelu",
    nn.ELU: "elu",
    nn.CELU: "celu",
    nn.SELU: "selu",
    nn.GELU: "gelu",
    nn.SiLU: "silu",
    nn.Mish: "mish",
    nn.Sigmoid: "sigmoid",
    nn.Hardsigmoid: "hardsigmoid",
    nn.LogSigmoid: "logsigmoid",
    nn.Tanh: "tanh",
    nn.Hardtanh: "hardtanh",
    nn.Hardswish: "hardswish",
    nn.Softplus: "softplus",
    nn.Softsign: "softsign",
    nn.Tanhshrink: "tanhshrink",
    nn.Softmax: "softmax",
    nn.LogSoftmax: "log_softmax",
}
ACTIVATION_MODULES = tuple(_ACTIVATION_CLASSES)


def module_activation(module: nn.Module, x: Any, channels_first: bool) -> str:
    """The activation ``module`` computes on a layer's output ``x``: its name, or
    ``"unknown"`` for a softmax over another axis than the layer's units (the last axis, or
    axis 1 of a conv's ``(N, C, ...)`` output): over the batch or the time axis it is no
    activation of the units.

    Parameters
    ----------
    module : torch.nn.Module
        An instance of one of :data:`ACTIVATION_MODULES`.
    x : torch.Tensor
        Its input, the weighted layer's output.
    channels_first : bool
        The layer's units are axis 1 (a conv), not the last axis.
    """
    name = next(_ACTIVATION_CLASSES[c] for c in type(module).__mro__ if c in _ACTIVATION_CLASSES)
    if name in ("softmax", "log_softmax"):
        ndim = x.dim() if isinstance(x, torch.Tensor) else 0
        dim = module.dim  # type: ignore[union-attr]
        if dim is None:  # torch's implicit choice (deprecated): axis 0 for 0-, 1- and 3-d
            dim = 0 if ndim in (0, 1, 3) else 1
        if ndim < 2 or dim % ndim != (1 if channels_first else ndim - 1):
            return UNKNOWN
    return name


def infer_activation(z: torch.Tensor, h: Any, in_place: bool = False) -> str:
    """The elementwise function ``f`` with ``h = f(z)``, tried on the numbers; ``"unknown"``
    when none fits (a norm layer, dropout, pooling or reshaping in between) and when more
    than one does: on inputs where the candidates agree (all zeros: ReLU, identity, GELU and
    SiLU give 0; all positive: ReLU is the identity) the numbers cannot tell.

    ``in_place``: ``z`` was changed in place after the layer made it (``F.relu(z,
    inplace=True)``), so ``h is z`` does not mean that nothing ran between."""
    if not isinstance(z, torch.Tensor) or not isinstance(h, torch.Tensor):
        return UNKNOWN
    if h is z and not in_place:  # the same tensor passed on (an output layer's logits)
        return "identity"
    if h.numel() != z.numel() or h.shape[0] != z.shape[0]:
        return UNKNOWN
    zz = z.detach().float().reshape(z.shape[0], -1)
    hh = h.detach().float().reshape(h.shape[0], -1)
    low = z.dtype in (torch.float16, torch.bfloat16)
    rtol, atol = (2e-2, 2e-2) if low else (1e-4, 1e-5)
    # a candidate is tried on a few rows first, on the host (a NumPy comparison of a few
    # numbers costs a fraction of a torch call), and on all of them, on the device, only if
    # those fit: most fail on the few
    few = max(1, min(len(zz), 256 // max(zz.shape[1], 1)))
    zs = zz[:few].to("cpu", torch.float64)
    hs = hh[:few].to("cpu", torch.float64).numpy()
    bound = atol + rtol * np.abs(hs)
    fits = []
    with torch.no_grad():
        for name, f in _CANDIDATES:
            if name in ("softmax", "log_softmax") and z.dim() != 2:
                continue
            if np.all(np.abs(f(zs).numpy() - hs) <= bound) and _close(f(zz), hh, rtol, atol):
                fits.append(name)
                if len(fits) > 1:
                    return UNKNOWN
    return fits[0] if fits else UNKNOWN


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float) -> bool:
    """``torch.allclose`` without its special cases (infinities, NaN), at half its cost:
    ``|a - b| <= atol + rtol * |b|`` everywhere."""
    return bool(((a - b).abs() <= atol + rtol * b.abs()).all())


_own = threading.local()


def own_pass() -> bool:
    """Whether a forward pass runs inside :func:`untouched` (the doctor's own, not the
    script's)."""
    return getattr(_own, "depth", 0) > 0


@contextlib.contextmanager
def untouched(model: nn.Module, device: torch.device) -> Iterator[None]:
    """A forward pass that leaves the run as it was: no gradient, the random state (Dropout)
    forked, the norm layers' running statistics restored afterwards."""
    buffers = [b.clone() for b in model.buffers()]
    devices = [device.index or 0] if device.type == "cuda" else []
    _own.depth = getattr(_own, "depth", 0) + 1
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            yield
    finally:
        _own.depth -= 1
        with torch.no_grad():
            for b, saved in zip(model.buffers(), buffers, strict=True):
                b.copy_(saved)


def hidden_init(model: nn.Module, init: str, seed: int) -> nn.Module:
    """A copy with every weighted layer re-drawn from ``init`` (biases at 0)."""
    out = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, m in weighted_modules(out):
            for name, p in m.named_parameters(recurse=False):
                if p.dim() >= 2:
                    fan_in = p[0].numel()
                    fan_out = p.shape[0]
                    if init.startswith("he"):
                        bound = math.sqrt(6.0 / fan_in)
                    else:
                        bound = math.sqrt(6.0 / (fan_in + fan_out))
                    w = torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1
                    p.copy_((w * bound).to(p.dtype))
                elif name.startswith("bias"):
                    p.zero_()
    return out


def reset_parameters(model: nn.Module, seed: int) -> nn.Module:
    """A copy whose layers are re-drawn by their own ``reset_parameters`` under ``seed``
    (a constant init the user applied afterwards is not reproduced: another seed of a
    deliberately constant init is the same net, which :func:`same_weights` tells)."""
    out = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in out.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset) and next(m.parameters(recurse=False), None) is not None:
                reset()
    return out


def is_constant_init(model: nn.Module) -> bool:
    """Whether every weighted layer's weight is one constant (zeros, ones): then another
    seed cannot change the run, and the user's own weights are kept in every seed."""
    return all(
        bool((w := weight_of(m)).detach().eq(w.detach().reshape(-1)[0]).all())
        for _, m in weighted_modules(model)
    )


def _sequential_layers(model: nn.Module) -> list[nn.Module] | None:
    return list(model) if isinstance(model, nn.Sequential) else None


_ACT_MODULES = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softmax": lambda: nn.Softmax(dim=-1),
}


def insert_activation(model: nn.Module, activation: str) -> nn.Module | None:
    """An ``nn.Sequential`` with ``activation`` between directly consecutive Linear layers;
    None for other models (a custom ``forward`` cannot be edited from outside)."""
    layers = _sequential_layers(model)
    if layers is None:
        return None
    out: list[nn.Module] = []
    for i, m in enumerate(layers):
        out.append(copy.deepcopy(m))
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(m, nn.Linear) and isinstance(nxt, nn.Linear):
            out.append(_ACT_MODULES[activation]())
    return nn.Sequential(*out)


def replace_output(model: nn.Module, activation: str | None) -> nn.Module | None:
    """An ``nn.Sequential`` whose last module, when it is an activation, is replaced by
    ``activation`` (None: removed); one without an output activation gets it appended."""
    layers = _sequential_layers(model)
    if layers is None:
        return None
    body = [copy.deepcopy(m) for m in layers]
    if body and weight_of(body[-1]) is None and not list(body[-1].parameters()):
        body = body[:-1]
    if activation is not None:
        body.append(_ACT_MODULES[activation]())
    return nn.Sequential(*body)


def relu_hidden(model: nn.Module, seed: int) -> nn.Module | None:
    """Hidden Sigmoid/Tanh modules of an ``nn.Sequential`` become ReLU, re-drawn with He."""
    layers = _sequential_layers(model)
    if layers is None:
        return None
    last = max(i for i, m in enumerate(layers) if weight_of(m) is not None)
    out = [
        nn.ReLU() if isinstance(m, nn.Sigmoid | nn.Tanh) and i < last else copy.deepcopy(m)
        for i, m in enumerate(layers)
    ]
    return hidden_init(nn.Sequential(*out), "he_uniform", seed)
