"""Norms of tensors that may be sharded across ranks (``DTensor``: FSDP2's ``fully_shard``,
tensor parallelism): the norm of the whole tensor, not of this rank's shard.

A sharded tensor's norm is combined from every rank's local one (``sqrt(sum of squares)``) in
one all-reduce per group of ranks; a replicated one (DDP, or a plain tensor) is the same on every
rank and is taken as it is. All ranks must call :func:`combine` at the same step (the probes of
a distributed run are on the same steps: its schedule counts steps, never time).
"""

from __future__ import annotations

from typing import Any

import torch


def _dtensor_type() -> Any:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # a build without torch.distributed
        return None
    return DTensor


_DTENSOR = _dtensor_type()


def is_dtensor(t: Any) -> bool:
    return _DTENSOR is not None and isinstance(t, _DTENSOR)


def local(t: torch.Tensor) -> torch.Tensor:
    """This rank's part of ``t`` (``t`` itself unless it is a DTensor)."""
    return t.to_local() if is_dtensor(t) else t


def shard_group(t: Any) -> Any:
    """The process group over which ``t`` is split (its mesh dimension with a ``Shard``
    placement), or None for a tensor every rank holds whole."""
    if not is_dtensor(t):
        return None
    dims = [i for i, p in enumerate(t.placements) if p.is_shard()]
    if not dims:
        return None
    if len(dims) > 1:
        raise NotImplementedError("a tensor sharded over several mesh dimensions")
    return t.device_mesh.get_group(dims[0])


def full(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor on every rank (an all-gather for a DTensor): for snapshots only."""
    return t.full_tensor() if is_dtensor(t) else t


def combine(norms: torch.Tensor, groups: list[Any], ord: int = 2) -> torch.Tensor:
    """Whole-tensor ``ord``-norms (1 or 2) from this rank's local ones.

    Parameters
    ----------
    norms : tensor, shape (..., k)
        Local norms; column ``j`` belongs to a tensor sharded over ``groups[j]`` (None: held
        whole by every rank).
    groups : list of process group or None, length k
    ord : {1, 2}

    Returns
    -------
    tensor, shape (..., k)
        The norms of the whole tensors, the same on every rank (one all-reduce per group).
    """
    if all(g is None for g in groups):
        return norms
    import torch.distributed as dist

    out = norms.clone()
    for group in {id(g): g for g in groups if g is not None}.values():
        cols = torch.tensor([j for j, g in enumerate(groups) if g is group], device=norms.device)
        powers = norms.index_select(-1, cols).double() ** ord
        dist.all_reduce(powers, op=dist.ReduceOp.SUM, group=group)
        out.index_copy_(-1, cols, (powers ** (1.0 / ord)).to(norms.dtype))
    return out


def norms(
    tensors: list[torch.Tensor], ord: int = 2, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """The whole-tensor ``ord``-norms of ``tensors`` as one 1-d tensor on their device (an
    all-reduce per group of ranks when some are sharded; none otherwise)."""
    locals_ = [local(t) for t in tensors]
    if dtype is None and any(t.dtype not in (torch.float32, torch.float64) for t in locals_):
        dtype = torch.float32  # a float16 norm overflows at 65504
    values = torch.stack(torch._foreach_norm(locals_, ord, dtype=dtype))
    return combine(values, [shard_group(t) for t in tensors], ord)
