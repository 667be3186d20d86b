"""One run's probes from several ranks' (``DistributedDataParallel``): what one process would
have recorded on the global batches."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nndoctor.doctor.schema import LayerTrace, Probes


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
    ``loop.missing_ranks``.
    """
    present = [p for p in runs if p is not None]
    if not present:
        raise ValueError("no rank sent its probes")
    missing = [r for r, p in enumerate(runs) if p is None]
    first = present[0]
    rows = np.array([max(len(p.probe_target), 1) for p in present], dtype=np.float64)
    n_probe = min(len(p.steps) for p in present)
    diverged = [p.diverged for p in present if p.diverged is not None]
    # the rank that met the first non-finite step tells where it came from
    sources = [p.nan_source for p in present if p.nan_source is not None]
    probe_output = np.concatenate([p.probe_output for p in present])
    probe_target = np.concatenate([p.probe_target for p in present])
    loop = None
    if first.loop is not None:
        loop = replace(first.loop, ranks=len(runs), missing_ranks=missing)
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
        loop=loop,
        nan_source=min(sources, key=lambda s: s.step) if sources else None,
    )
