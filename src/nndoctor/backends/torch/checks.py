"""Checks at the end of a watched run: a few forward passes of the probe batch, in eval mode,
that leave the run as it was (:func:`~nndoctor.backends.torch.model.untouched`, the modules'
modes restored).

- :func:`batch_mixing`: whether a sample's output depends on the other samples of its batch
  (two passes: the probe batch, and the same batch with every other row replaced);
- :func:`softmax_over_batch`: a softmax in the loss's graph taken over the batch's axis (read
  off a probe step's graph, no pass);
- :func:`unused_parameters`: why parameters that require a gradient never got one, when the
  loss does not use them (a pass per module, and only when such parameters exist): the module
  never ran, or changing its output changes no output the loss reads (else the graph is cut:
  a detached graph).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from nndoctor.backends.torch.model import untouched
from nndoctor.backends.torch.task import as_signed
from nndoctor.doctor.schema import NOT_REACHING_LOSS, NOT_READ, NOT_RUN, BatchMixing

# a relative change below this (or below MIXING_EPS_FACTOR machine epsilons of the weights'
# dtype, when larger) is rounding, not a change: a row-wise model computes each row with the
# same operations whatever the other rows hold (bit for bit on the CPU)
MIXING_TOL = 1e-3
MIXING_EPS_FACTOR = 10
# the seed both passes of the mixing check draw from (the run's random state is restored)
MIXING_SEED = 0
# fewest probe rows the mixing check runs on (half of them are replaced)
MIXING_MIN_ROWS = 4
# graph nodes searched from the loss for a softmax over the batch: the loss's own operations
# lie within a few dozen of it
SOFTMAX_SEARCH_NODES = 64
_SOFTMAXES = {"SoftmaxBackward0": "softmax", "LogSoftmaxBackward0": "log_softmax"}
# at most this many modules get a pass of their own in the unused-parameter check
MAX_UNUSED_MODULES = 32


@contextlib.contextmanager
def evaluating(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Forward passes in eval mode that leave the run as it was: each module's mode, the
    buffers and the random state restored afterwards, no gradient."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with untouched(model, device):
            yield
    finally:
        for m, mode in modes:
            m.training = mode


def flat_tensors(value: Any) -> list[torch.Tensor]:
    """The tensors of a module's output (a tensor, or tuples, lists and dicts of them), in
    order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [t for v in value for t in flat_tensors(v)]
    return []


def tolerance(dtype: torch.dtype) -> float:
    """The relative change that counts as one for outputs of ``dtype``."""
    eps = torch.finfo(dtype).eps if dtype.is_floating_point else 0.0
    return max(MIXING_TOL, MIXING_EPS_FACTOR * eps)


def _uses_batch_statistics(model: nn.Module) -> bool:
    """A norm layer that normalises with the batch's statistics even in eval mode."""
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm)
        and (not m.track_running_stats or m.running_mean is None)
        for m in model.modules()
    )


def _rows(out: Any, n: int, axis: int = 0) -> torch.Tensor | None:
    """The model's output as ``(n, k)`` float64 (every output tensor with a row per sample on
    ``axis``, side by side), or None when none has one."""
    parts = [
        t.detach().double().movedim(axis, 0).reshape(n, -1)
        for t in flat_tensors(out)
        if t.dim() > axis and t.shape[axis] == n and t.is_floating_point()
    ]
    return torch.cat(parts, dim=1) if parts else None


def batch_mixing(model: nn.Module, x: Any, axis: int = 0) -> BatchMixing | None:
    """Whether the outputs of the probe batch ``x`` ``(n, ...)`` depend on other rows (the
    slices of ``x`` along ``axis``, and of the outputs along the same axis).

    In eval mode, ``model(x)`` and ``model(x2)`` where ``x2`` is ``x`` with each even row
    ``2k`` replaced by the odd row after it (``2k + 1``), up to ``2 * (n // 2)``: the odd rows
    keep their place and content, so their outputs must be the same; every one of them has a
    replaced neighbour on each side (a layer that runs along the batch as if it were time
    sees it at once) and the batch as a whole holds other samples (a statistic over the batch
    changes). A row's relative change is ``|o2 - o1| / max(|o1|, mean row norm of o1)``.

    None where the check cannot tell: no single-tensor probe batch, fewer than
    :data:`MIXING_MIN_ROWS` rows, every replaced row equal to the row it replaces, no output
    with a row per sample, a norm layer that uses the batch's statistics in eval mode (mixing
    by design), non-finite outputs.
    """
    if not isinstance(x, torch.Tensor) or x.dim() <= axis or x.shape[axis] < MIXING_MIN_ROWS:
        return None
    n = x.shape[axis]
    pairs = n // 2
    even, odd = slice(0, 2 * pairs, 2), slice(1, 2 * pairs, 2)
    x2 = x.clone()
    rows, rows2 = x.movedim(axis, 0), x2.movedim(axis, 0)  # views: writing rows2 writes x2
    rows2[even] = rows[odd]
    if torch.equal(rows2[even], rows[even]):
        return None
    if _uses_batch_statistics(model):
        return None
    with evaluating(model, x.device):
        # the same random draws in both passes: a model that samples in its forward pass (a
        # VAE's latent) would otherwise change every row, mixing or not
        torch.manual_seed(MIXING_SEED)
        o1 = _rows(model(x), n, axis)
        torch.manual_seed(MIXING_SEED)
        o2 = _rows(model(x2), n, axis)
    if o1 is None or o2 is None or o1.shape != o2.shape:
        return None
    kept1, kept2 = o1[odd], o2[odd]  # (pairs, outputs)
    if not (bool(torch.isfinite(kept1).all()) and bool(torch.isfinite(kept2).all())):
        return None
    norms = torch.linalg.vector_norm(kept1, dim=1)
    scale = torch.clamp(norms, min=float(norms.mean()) + 1e-300)
    change = torch.linalg.vector_norm(kept2 - kept1, dim=1) / scale
    tol = tolerance(next((p.dtype for p in model.parameters()), torch.float64))
    k = int(change.argmax())
    return BatchMixing(
        rows=pairs,
        replaced=pairs,
        changed_rows=int((change > tol).sum()),
        max_change=float(change[k]),
        row=2 * k + 1,
        tolerance=tol,
    )


def sample_mixing(model: nn.Module, x: Any, targets_say: bool) -> BatchMixing | None:
    """:func:`batch_mixing` along dim 0, the samples' axis. Where the loss's targets do not
    say that dim 0 holds the samples (``targets_say`` False: a custom loss), mixing along it
    is left untold when the model keeps the slices along dim 1 apart: a sequence-first model
    fed ``(time, batch, ...)`` mixes its time steps by design, and nothing tells it from a
    batch-first input fed to it by mistake."""
    found = batch_mixing(model, x)
    if found is None or not found.changed_rows or targets_say or x.dim() < 3:
        return found
    across = batch_mixing(model, x, axis=1)
    return None if across is not None and not across.changed_rows else found


def softmax_over_batch(loss: torch.Tensor, rows: int) -> tuple[str, tuple[int, ...]] | None:
    """The first softmax or log-softmax within :data:`SOFTMAX_SEARCH_NODES` nodes of ``loss``'s
    graph that normalises over dim 0 of a tensor of at least two dims whose first holds the
    batch's ``rows`` (> 1) samples and whose second does not (a ``(rows, rows)`` matrix of
    pairs is normalised both ways by design), as ``(operation, shape)``; None when there is
    none (``log_softmax(output, 0)`` on ``(batch, classes)`` logits is one)."""
    root = loss.grad_fn
    if rows < 2 or root is None:
        return None
    # the nodes met are held (`kept`): older torch makes a new Python object for a node on
    # each access, and the id of one let go can come back as another node's
    kept, queue = {id(root): root}, [root]
    while queue and len(kept) <= SOFTMAX_SEARCH_NODES:
        node = queue.pop(0)
        op = _SOFTMAXES.get(type(node).__name__)
        if op is not None:
            with contextlib.suppress(AttributeError, RuntimeError):
                shape = tuple(node._saved_result.shape)
                dim = as_signed(int(node._saved_dim)) % max(len(shape), 1)
                if len(shape) >= 2 and dim == 0 and shape[0] == rows and shape[1] != rows:
                    return op, shape
        for parent, _ in node.next_functions:
            if parent is not None and id(parent) not in kept:
                kept[id(parent)] = parent
                queue.append(parent)
    return None


def unused_parameters(
    model: nn.Module, x: Any, names: list[str], used: list[bool] | None
) -> dict[str, str]:
    """Why each of the parameters ``names`` (they require a gradient and never got one) got
    none, where the loss does not use them: ``{name: "not-run" | "not-reaching-loss" |
    "not-read"}``. The others (left out) are cut from the loss.

    A parameter whose module has a trainable parameter that did get a gradient is
    ``"not-read"``: the module ran and reached the loss, its forward does not read this one.

    In eval mode on the probe batch ``x``: a module that owns some of them and does not run
    is ``"not-run"``; one that runs is ``"not-reaching-loss"`` when a random change of its
    output changes none of the model's outputs the loss reads (``used``, per output tensor,
    from the loss's graph; None: all of them). When the loss's graph reaches none of the
    outputs, the cut is between the model and the loss: every parameter is cut. Parameters
    of the model itself (not of a submodule) cannot be told apart: they stay cut.
    """
    if not names or (used is not None and not any(used)):
        return {}
    owners: dict[str, list[str]] = {}
    for name in names:
        prefix = name.rpartition(".")[0]
        if prefix:
            owners.setdefault(prefix, []).append(name)
    out: dict[str, str] = {}
    modules = {}
    without = set(names)
    for prefix in list(owners)[:MAX_UNUSED_MODULES]:
        with contextlib.suppress(AttributeError):
            module = model.get_submodule(prefix)
            # a trainable sibling that got a gradient: the module ran and reached the loss, so
            # these are parameters its forward never reads (a bias declared and never added)
            if any(
                p.requires_grad and f"{prefix}.{n}" not in without
                for n, p in module.named_parameters(recurse=False)
            ):
                out.update(dict.fromkeys(owners[prefix], NOT_READ))
            else:
                modules[prefix] = module
    if not modules or not isinstance(x, torch.Tensor):
        return out
    ran: set[str] = set()

    def seen(prefix: str) -> Any:
        return lambda module, args, output: ran.add(prefix)

    handles = [m.register_forward_hook(seen(p)) for p, m in modules.items()]
    try:
        with evaluating(model, x.device):
            base = flat_tensors(model(x))
    finally:
        for h in handles:
            h.remove()
    read = [used is None or (k < len(used) and used[k]) for k in range(len(base))]
    for prefix, module in modules.items():
        if prefix not in ran:
            reason = NOT_RUN
        elif _reaches(model, x, module, base, read):
            continue  # its output reaches the loss by value: the graph is cut
        else:
            reason = NOT_REACHING_LOSS
        out.update(dict.fromkeys(owners[prefix], reason))
    return out


def _perturbed(value: Any, gen: torch.Generator) -> Any:
    """``value`` with random noise of its own size (plus 1) added to every floating tensor."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            return value
        scale = float(value.detach().double().pow(2).mean().sqrt()) + 1.0
        noise = torch.randn(value.shape, generator=gen, dtype=torch.float64)
        return value + (scale * noise).to(value.device, value.dtype)
    if isinstance(value, tuple | list):
        items = [_perturbed(v, gen) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


def _reaches(
    model: nn.Module, x: torch.Tensor, module: nn.Module, base: list[torch.Tensor], read: list[bool]
) -> bool:
    """Whether a random change of ``module``'s output changes a read output of the model."""
    gen = torch.Generator().manual_seed(0)
    handle = module.register_forward_hook(lambda m, args, output: _perturbed(output, gen))
    try:
        with evaluating(model, x.device):
            now = flat_tensors(model(x))
    finally:
        handle.remove()
    for a, b, r in zip(base, now, read, strict=False):
        if not r or a.shape != b.shape or not a.is_floating_point():
            continue
        a64, b64 = a.detach().double(), b.detach().double()
        top = float(a64.abs().max()) if a64.numel() else 0.0
        diff = float((b64 - a64).abs().max()) if a64.numel() else 0.0
        if not math.isfinite(diff) or diff > tolerance(a.dtype) * max(top, 1e-12):
            return True
    return False
