"""What a probe computes from the tensors it sees: plain functions, reduced on the tensors' device
and moved to the host in as few transfers as possible (each one waits for a GPU)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from nndoctor.backends.torch.model import as_units, bias_of, kind_of, unit_columns, weight_of
from nndoctor.backends.torch.sharded import full
from nndoctor.doctor.recorder import PROBE_ROWS
from nndoctor.doctor.schema import (
    RANK_TOL,
    RECTIFIED,
    SATURATION_Z,
    SQUASHING,
    LossSpec,
    weight_view,
)

# numeric rank of activations only for layers up to this many units (an eigen-decomposition)
RANK_MAX_UNITS = 512


def to_host(values: Sequence[torch.Tensor]) -> np.ndarray:
    """0-d and 1-d tensors, concatenated, as one float64 array on the host: one transfer (one
    wait for the device) when they share a device."""
    if not values:
        return np.zeros(0)
    values = list(values)
    try:  # stack and cat promote mixed float dtypes: one cast
        if all(v.dim() == 0 for v in values):  # norms: stack costs half of what cat does
            return torch.stack(values).double().cpu().numpy()
        return torch.cat(torch.atleast_1d(values)).double().cpu().numpy()
    except RuntimeError:  # on several devices
        return np.concatenate([v.double().cpu().numpy().reshape(-1) for v in values])


def wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 at least: a float16 norm overflows at 65504 (a cast costs a call,
    so float32 and float64 tensors are taken as they are)."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def layer_stats(
    z: dict[int, Any],
    h_of: Sequence[Any],
    layers: Sequence[tuple[str, nn.Module]],
    activations: Sequence[str],
    rank_due: bool,
) -> tuple[list[dict[str, float]], list[torch.Tensor | None]]:
    """Per weighted layer, from one forward pass: share saturated, share of dead units, output
    RMS and (when ``rank_due``) the numeric rank of its activations; and each layer's output
    as ``(rows, units)`` (at most ``16 * PROBE_ROWS`` rows), None where it has no such view.

    ``z`` maps a layer's index to its output, ``h_of[i]`` is what its activation produced (the
    next weighted layer's input, or the model's output for the last one).
    """
    cols_of: list[torch.Tensor | None] = []
    parts: list[torch.Tensor] = []  # reduced on the device, moved in one transfer
    layout: list[tuple[str, int, int] | None] = []  # per layer: act, numel, units
    ranks: list[float] = []
    for i, (_, module) in enumerate(layers):
        out = z.get(i)
        cols = unit_columns(out, kind_of(module)) if isinstance(out, torch.Tensor) else None
        if cols is not None and cols.shape[0] == 0:
            cols = None
        cols_of.append(None if cols is None else cols.detach()[: PROBE_ROWS * 16])
        act = activations[i]
        if cols is None:
            layout.append(None)
        else:
            parts.extend(_layer_reductions(cols, act))
            layout.append((act, cols.numel(), cols.shape[1]))
        ranks.append(_layer_rank(cols, h_of[i]) if rank_due else math.nan)
    values = to_host(parts)
    stats = []
    at = 0
    for entry, rank in zip(layout, ranks, strict=True):
        if entry is None:
            stats.append(dict.fromkeys(("frac_saturated", "frac_dead", "z_rms"), math.nan))
        else:
            one, at = _layer_values(values, at, *entry)
            stats.append(one)
        stats[-1]["act_rank"] = rank
    return stats, cols_of


def _layer_reductions(z: torch.Tensor, act: str) -> list[torch.Tensor]:
    """What :func:`_layer_values` needs of a layer's output ``z`` ``(rows, units)``, reduced
    on its device in as few operations as possible: the norm, the count of saturated
    entries (squashing activations), each unit's largest input (rectified ones)."""
    zf = wide(z.detach())
    out = [torch.linalg.vector_norm(zf).reshape(1)]
    if act in SQUASHING:
        out.append((zf.abs() > SATURATION_Z).sum(dtype=zf.dtype).reshape(1))
    if act in RECTIFIED:
        out.append(zf.amax(dim=0))
    return out


def _layer_values(
    values: np.ndarray, at: int, act: str, numel: int, units: int
) -> tuple[dict[str, float], int]:
    """Share saturated, share of dead units (input <= 0 on every row) and RMS of one layer's
    output from its :func:`_layer_reductions` at ``values[at:]``; and where the next layer's
    begin."""
    stats = {"z_rms": float(values[at]) / math.sqrt(max(numel, 1))}
    at += 1
    stats["frac_saturated"] = 0.0
    if act in SQUASHING:
        stats["frac_saturated"] = float(values[at]) / max(numel, 1)
        at += 1
    stats["frac_dead"] = 0.0
    if act in RECTIFIED:
        stats["frac_dead"] = np.count_nonzero(values[at : at + units] <= 0) / units
        at += units
    return stats, at


def _layer_rank(z: torch.Tensor | None, h: Any) -> float:
    """Numeric rank of what a layer's activation produced (NaN where it cannot be read)."""
    if z is None or not isinstance(h, torch.Tensor) or h.dim() < 2:
        return math.nan
    if z.shape[1] > RANK_MAX_UNITS:
        return math.nan
    hh = h.detach().float().reshape(h.shape[0], -1)[:PROBE_ROWS]
    return numeric_rank(hh) if hh.shape[1] == z.shape[1] else math.nan


def numeric_rank(H: torch.Tensor) -> float:
    """Numeric rank of the centred activations from the eigenvalues of their Gram matrix
    (``units x units``, far cheaper than an SVD of ``rows x units``): singular values above
    ``RANK_TOL`` of the largest are eigenvalues above ``RANK_TOL**2`` of the largest, still
    well above float64 round-off (1e-16)."""
    Hc = (H - H.mean(dim=0)).double()
    if not bool(torch.isfinite(Hc).all()) or not bool(Hc.any()):
        return 0.0
    ev = torch.linalg.eigvalsh(Hc.T @ Hc)
    return float((ev > RANK_TOL**2 * ev[-1]).sum())


def unit_states(z: torch.Tensor | None, units: int, act: str) -> tuple[np.ndarray, np.ndarray]:
    """End state per unit from a layer's output ``z`` ``(rows, units)``: dead (ReLU input <= 0
    on every row) and share saturated (sigmoid/tanh input beyond +-5)."""
    if z is None or z.shape[-1] != units:
        return np.zeros(units, dtype=bool), np.zeros(units)
    zf = z.detach().float()
    dead = (zf <= 0).all(dim=0).cpu().numpy() if act in RECTIFIED else np.zeros(units, bool)
    sat = (
        (zf.abs() > SATURATION_Z).float().mean(dim=0).double().cpu().numpy()
        if act in SQUASHING
        else np.zeros(units)
    )
    return dead, sat


def predicted(out: torch.Tensor, spec: LossSpec) -> torch.Tensor:
    """The model's output as predictions comparable with the targets
    (:func:`~nndoctor.doctor.schema.effective_targets`): ``(rows, outputs)`` float64 on
    its device, probabilities where the loss reads logits."""
    P = out.detach().double().reshape(len(out), -1)
    if spec.from_logits:
        return torch.sigmoid(P)
    return torch.softmax(P, dim=1) if spec.kind == "cross_entropy" else P


def layer_weights(m: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """One layer's ``(W (units, fan_in), b (units,))`` now, float64 on the host."""
    W = weight_of(m)
    b = bias_of(m)
    Wv = weight_view(as_units(W))
    bv = (
        full(b.detach()).to("cpu", torch.float64).numpy()
        if b is not None and b.shape[0] == W.shape[0]
        else np.zeros(W.shape[0])
    )
    return Wv, bv


def as_numpy(t: Any) -> np.ndarray:
    """Targets as NumPy: integers as they are, floats as float64; nothing as an empty array."""
    if isinstance(t, np.ndarray):
        return t
    if not isinstance(t, torch.Tensor):
        return np.zeros(0)
    t = t.detach().to("cpu")
    return t.numpy() if not t.is_floating_point() else t.double().numpy()
