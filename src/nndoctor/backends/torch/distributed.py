"""The ranks of a distributed run (``DistributedDataParallel``, ``torchrun``): who we are, and
sending each rank's probes to rank 0.

Each rank records its own :class:`~nndoctor.doctor.schema.Probes` from its share of every global
batch. At the end the ranks send them to rank 0 through the process group's key-value store
(:func:`gather`: not a collective, so a rank that crashed, hung or already left never blocks the
others); rank 0 merges them (:func:`nndoctor.doctor.merge.merge_probes`) into what one process
would have recorded on the global batches, then alone prints and writes the report.

Rank 0 waits at most ``timeout`` seconds for each other rank; ranks that sent nothing by then
are named in the merged run's ``loop.missing_ranks``. Other ranks send and go on at once.

The store is taken when the watch starts (:func:`capture`), so the exchange works even after
the script called ``torch.distributed.destroy_process_group()``.
"""

from __future__ import annotations

import os
import pickle
import sys
from datetime import timedelta
from typing import Any

# how long rank 0 waits for each other rank's probes at the end
TIMEOUT_S = 60.0

_state: dict[str, Any] = {"store": None, "rank": 0, "world": 1, "runs": 0}


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the world size: from ``torch.distributed`` once initialised,
    else from ``torchrun``'s ``RANK``/``WORLD_SIZE`` variables, else ``(0, 1)``."""
    dist = _dist()
    if dist is not None and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _dist() -> Any:
    torch = sys.modules.get("torch")  # never import torch for a NumPy-only user
    if torch is None:
        return None
    import torch.distributed as dist

    return dist if dist.is_available() else None


def capture() -> None:
    """Keep a reference to the default process group's store, when there is one."""
    dist = _dist()
    if dist is None or not dist.is_initialized() or _state["store"] is not None:
        return
    from torch.distributed import distributed_c10d

    _state["store"] = distributed_c10d._get_default_store()
    _state["rank"], _state["world"] = dist.get_rank(), dist.get_world_size()


def is_distributed() -> bool:
    """Whether a multi-rank store was captured (then :func:`gather` exchanges)."""
    return _state["store"] is not None and _state["world"] > 1


def is_rank_zero() -> bool:
    return rank_and_world()[0] == 0 if _state["store"] is None else _state["rank"] == 0


def gather(payload: Any, timeout: float = TIMEOUT_S) -> list[Any] | None:
    """Send ``payload`` to rank 0. Rank 0 gets ``[payload of rank 0, of rank 1, ...]`` (None in
    the place of a rank that sent nothing within ``timeout`` seconds); other ranks get None.

    Calls must happen in the same order on every rank (each call is one numbered round).
    """
    if not is_distributed():
        return [payload]
    store, rank, world = _state["store"], _state["rank"], _state["world"]
    _state["runs"] += 1
    key = f"nndoctor/{_state['runs']}/"
    if rank != 0:
        try:
            store.set(key + str(rank), pickle.dumps(payload))
        except Exception as exc:  # rank 0 is gone: nothing to send to, and no reason to fail
            print(f"nndoctor: rank {rank} could not send its probes: {exc}", file=sys.stderr)
        return None
    out: list[Any] = [payload]
    for r in range(1, world):
        try:
            store.wait([key + str(r)], timedelta(seconds=timeout))
            out.append(pickle.loads(store.get(key + str(r))))
        except Exception:  # a rank that failed or left: report what the others saw
            out.append(None)
    return out
