"""Plots of a doctor's report: the loss curve against what is achievable, and the gradients.

Needs the ``plot`` extra (matplotlib), imported only when a plot is drawn. Figures are built
with ``matplotlib.figure.Figure`` directly, so no GUI backend or global pyplot state is used.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from nndoctor import _extras
from nndoctor._files import write_atomic
from nndoctor.doctor.report import Report


def _bound_lines(bounds: dict[str, Any], max_rank: int | None) -> list[tuple[str, float]]:
    """(label, loss) of the achievable bounds worth drawing."""
    lines = []
    if "baseline" in bounds:
        lines.append(("best constant", float(bounds["baseline"])))
    if "least_squares" in bounds:
        lines.append(("best affine map", float(bounds["least_squares"])))
    ranks = np.asarray(bounds.get("loss_at_rank", []), dtype=float)
    top = len(ranks) - 1 if max_rank is None else min(max_rank, len(ranks) - 1)
    lines += [(f"best rank-{k} code", float(ranks[k])) for k in range(1, top + 1)]
    return lines


def plot_report(
    report: Report, path: str | os.PathLike[str] | None = None, *, max_rank: int | None = 3
) -> Any:
    """Draw the epoch loss against the bounds (left) and per-layer gradient norms (right).

    Parameters
    ----------
    report : Report
        From :func:`nndoctor.diagnose` or ``Doctor.report()``.
    path : path-like, optional
        Where to save the figure (format from the suffix: .png, .svg, .pdf), written atomically.
    max_rank : int or None
        Draw rank-k code bounds up to this k (autoencoders); None draws them all.

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure_module = _extras.require("matplotlib.figure")
    probes = report.probes
    if not probes or len(probes.get("epoch_loss", [])) == 0:
        raise ValueError("the report holds no recorded training (probes) to plot")
    fig = figure_module.Figure(figsize=(11, 4), layout="constrained")
    ax_loss, ax_grad = fig.subplots(1, 2)

    epoch_loss = np.asarray(probes["epoch_loss"], dtype=float)
    epochs = np.arange(1, len(epoch_loss) + 1)
    ax_loss.plot(epochs, epoch_loss, color="black", label="training loss")
    for i, (label, value) in enumerate(_bound_lines(report.bounds, max_rank)):
        ax_loss.axhline(value, linestyle="--", color=f"C{i}", label=f"{label} {value:.4g}")
    ax_loss.set(xlabel="epoch", ylabel="loss (mean over batches)", title="loss vs achievable")
    ax_loss.legend(fontsize="small")

    steps = np.asarray(probes["steps"], dtype=float)
    layers = sorted({key.split(".")[0] for key in probes if key.endswith(".grad_norm")}, key=int)
    for layer in layers:
        ax_grad.plot(steps, probes[f"{layer}.grad_norm"], label=f"Dense {layer}")
    if layers:
        ax_grad.set_yscale("log")
        ax_grad.legend(fontsize="small")
    ax_grad.set(xlabel="step", ylabel="gradient norm", title="gradients per Dense layer")

    codes = ", ".join(f.code for f in report.causes) or "no cause found"
    fig.suptitle(f"nndoctor: {codes}")
    if path is not None:
        path = Path(path)
        buffer = io.BytesIO()
        fig.savefig(buffer, format=path.suffix.lstrip(".") or "png")
        write_atomic(path, lambda f: f.write(buffer.getvalue()))
    return fig
