"""One report from several ranks (``DistributedDataParallel``, ``torchrun``).

Each rank records its own :class:`~nndoctor.doctor.schema.Probes` from its share of every global
batch. At the end the ranks send them to rank 0 through the process group's key-value store
(not a collective: a rank that crashed, hung or already left never blocks the others), and rank
0 merges them (:func:`merge_probes`) into what one process would have recorded on the global
batches, then alone prints and writes the report.

Rank 0 waits at most ``timeout`` seconds for each other rank; ranks that sent nothing by then
are named in the merged run's ``extra["missing_ranks"]``. Other ranks send and go on at once.

The store is taken when the watch starts (:func:`capture`), so the exchange works even after
the script called ``torch.distributed.destroy_process_group()``.
"""

from __future__ import annotations

import os
import pickle
import sys
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np

from nndoctor.doctor.schema import LayerTrace, Probes

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


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    """Series of the ranks cut to the shortest (a rank that failed stopped early), stacked
    ``(ranks, steps)``."""
    n = min(len(a) for a in arrays)
    return np.stack([np.asarray(a[:n], dtype=np.float64) for a in arrays])


def _merge_layer(layers: list[LayerTrace], rows: np.ndarray) -> LayerTrace:
    """One layer seen by every rank; ``rows`` are the probe rows each rank saw (weights)."""
    w = rows / rows.sum()

    def mean(key: str) -> np.ndarray:
        return np.einsum("r,rs->s", w, _stack([getattr(t, key) for t in layers]))

    z2 = np.einsum("r,rs->s", w, _stack([t.z_rms for t in layers]) ** 2)
    return replace(
        layers[0],
        # the same on every rank: DDP averages gradients before the step, so weights agree
        weight_norm=_stack([t.weight_norm for t in layers]).mean(axis=0),
        grad_norm=_stack([t.grad_norm for t in layers]).mean(axis=0),
        update_ratio=_stack([t.update_ratio for t in layers]).mean(axis=0),
        # shares of rows or elements: row-weighted means are the global shares
        frac_saturated=mean("frac_saturated"),
        unit_saturation=np.einsum(
            "r,ru->u", w, np.stack([t.unit_saturation for t in layers]).astype(np.float64)
        ),
        z_rms=np.sqrt(z2),
        # a unit is dead on the global batch when it is dead on every rank's share: the
        # share of dead units over all rows is at most each rank's (min is exact when one
        # rank's dead units are dead on all, as for units dead from the start)
        frac_dead=_stack([t.frac_dead for t in layers]).min(axis=0),
        dead_units=np.logical_and.reduce([np.asarray(t.dead_units, bool) for t in layers]),
        # the rank of stacked activations is at least each rank's
        act_rank=_stack([t.act_rank for t in layers]).max(axis=0),
    )


def merge_probes(runs: list[Probes | None]) -> Probes:
    """What one process would have recorded on the global batches, from each rank's probes.

    Losses are means over ranks (each rank's loss is the mean over its share of the batch, the
    shares equal as ``DistributedSampler`` makes them); weights and gradients are rank 0's
    (DDP keeps them identical); the probe batch is the ranks' probe rows in rank order.
    ``None`` entries (ranks that sent nothing) are left out and named in
    ``extra["missing_ranks"]``.
    """
    present = [p for p in runs if p is not None]
    if not present:
        raise ValueError("no rank sent its probes")
    missing = [r for r, p in enumerate(runs) if p is None]
    first = present[0]
    rows = np.array([max(len(p.probe_target), 1) for p in present], dtype=np.float64)
    n_probe = min(len(p.steps) for p in present)
    diverged = [p.diverged for p in present if p.diverged is not None]
    probe_output = np.concatenate([p.probe_output for p in present])
    probe_target = np.concatenate([p.probe_target for p in present])
    extra = dict(first.extra)
    extra["ranks"] = len(runs)
    if missing:
        extra["missing_ranks"] = missing
    return replace(
        first,
        steps=first.steps[:n_probe],
        step_loss=_stack([p.step_loss for p in present]).mean(axis=0),
        epoch_loss=_stack([p.epoch_loss for p in present]).mean(axis=0),
        layers=[
            _merge_layer(list(ts), rows) for ts in zip(*[p.layers for p in present], strict=True)
        ],
        output_std=np.sqrt((_stack([p.output_std for p in present]) ** 2).mean(axis=0)),
        target_std=float(np.mean(probe_target.std(axis=0))) if probe_target.size else 0.0,
        probe_output=probe_output,
        probe_target=probe_target,
        diverged=min(diverged, key=lambda d: d.get("step", 0)) if diverged else None,
        probe_loss=float(np.mean([p.probe_loss for p in present])),
        extra=extra,
    )


def report_across_ranks(watch: Any, timeout: float = TIMEOUT_S) -> Any:
    """The report of ``watch`` over every rank: on rank 0 the report of the merged probes,
    on other ranks None (they send their probes and go on). One process: ``watch.report()``.
    """
    if not is_distributed():
        return watch.report()
    runs = gather(watch.probes(), timeout)
    if runs is None:
        return None
    merged = merge_probes(runs)
    # the report reads ``watch.probes()``: hand it the merged ones for this one call
    watch.probes = lambda **_: merged
    try:
        return watch.report()
    finally:
        del watch.probes
