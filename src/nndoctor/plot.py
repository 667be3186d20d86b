"""Plots of a doctor's report, each drawn from the report's own numbers.

Needs the ``plot`` extra (matplotlib), imported only when a plot is drawn. Figures are built
with ``matplotlib.figure.Figure`` directly, so no GUI backend or global pyplot state is used.

Each plot is available alone (``plot(report, name)`` or ``report.plot(name)``) and returns a
Figure; a plot whose data the run did not record is left out of :func:`available_plots` and
never drawn empty. Every time axis is in epochs, every layer is named as the report names it
(``layer 0``), and legends sit outside the axes so they cover no data.

========================  ==================================================================
name                      what it shows
========================  ==================================================================
``loss``                  loss per epoch, the constant baseline and the achievable bounds,
                          other runs of the same setup (``report.curves``) and trial curves
``output-spread``         spread of the outputs across inputs against the targets' spread
``unit-similarity``       cosine similarity of the units of each hidden layer (a heatmap)
``activations``           activation distributions per layer over time, or the shares of
                          saturated and dead units when no histograms were recorded
``gradients``             gradient norms and update-to-weight ratios per layer
``spectrum``              the data's spectrum with the bottleneck width and effective rank
========================  ==================================================================
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nndoctor import _extras
from nndoctor._files import write_atomic

# series of one layer in ``report.probes``, keyed "{layer}.{series}"
_LAYER_KEYS = (
    "weight_norm",
    "grad_norm",
    "update_ratio",
    "frac_saturated",
    "frac_dead",
    "act_rank",
    "z_rms",
    "W_final",
    "act_hist",
    "activation",
)
# similarity at or above this counts as the same unit in the heatmap's title
SAME_UNIT = 1.0 - 1e-9
LEGEND = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "fontsize": "small"}


def _figure(**kwargs: Any) -> Any:
    figure_module = _extras.require("matplotlib.figure")
    return figure_module.Figure(layout="constrained", **kwargs)


def layer_names(report: Any) -> list[str]:
    """Names of the layers the report recorded, in order (``"0"``, ``"1"`` or torch names)."""
    names: list[str] = []
    for key in report.probes:
        head, _, tail = key.rpartition(".")
        if head and tail in _LAYER_KEYS and head not in names:
            names.append(head)
    return names


def layer_label(name: str) -> str:
    """``"0"`` -> ``"layer 0"``, as the report's findings say it; torch names stay as they are."""
    return f"layer {name}"


def _series(report: Any, key: str) -> np.ndarray | None:
    value = report.probes.get(key)
    if value is None:
        return None
    arr = np.asarray(value, dtype=float)
    return arr if arr.size else None


def steps_per_epoch(report: Any) -> float:
    """Optimiser steps per epoch, to put step-indexed probes on the epoch axis."""
    p, s = report.probes, report.summary
    if p.get("steps_per_epoch"):
        return float(p["steps_per_epoch"])
    if s.get("steps") and s.get("epochs_run"):
        return float(s["steps"]) / float(s["epochs_run"])
    step_loss, epoch_loss = p.get("step_loss"), p.get("epoch_loss")
    if step_loss is not None and epoch_loss is not None and len(epoch_loss):
        return max(1.0, len(step_loss) / len(epoch_loss))
    return 1.0


def probe_epochs(report: Any) -> np.ndarray:
    """The epoch (fractional) of every probe: step ``k`` happens during epoch ``(k + 1) / spe``."""
    steps = np.asarray(report.probes.get("steps", []), dtype=float)
    return (steps + 1.0) / steps_per_epoch(report)


def bound_lines(bounds: dict[str, Any], max_rank: int | None = 3) -> list[tuple[str, float]]:
    """(label, loss) of the achievable bounds worth drawing: the constant baseline, the best
    affine map, the best rank-k codes up to ``max_rank`` (None: all)."""
    lines = []
    if "baseline" in bounds:
        lines.append(("best constant (baseline)", float(bounds["baseline"])))
    if "least_squares" in bounds:
        lines.append(("best affine map", float(bounds["least_squares"])))
    ranks = np.asarray(bounds.get("loss_at_rank", []), dtype=float)
    top = len(ranks) - 1 if max_rank is None else min(max_rank, len(ranks) - 1)
    lines += [(f"best rank-{k} code", float(ranks[k])) for k in range(1, top + 1)]
    return lines


def _trial_curves(report: Any) -> list[tuple[str, np.ndarray]]:
    out = []
    for f in report.findings:
        t = f.trial or {}
        for key in ("curve", "loss_curve"):
            if key in t and len(t[key]):
                out.append((f"trial: {t.get('change', f.code)}", np.asarray(t[key], dtype=float)))
                break
    return out


# --- the six plots ---------------------------------------------------------------------------


def _has_loss(report: Any) -> bool:
    return _series(report, "epoch_loss") is not None


def plot_loss(report: Any, ax: Any = None, *, max_rank: int | None = 3) -> Any:
    """Loss per epoch against the constant baseline and the achievable bounds (labelled dashed
    lines), with the other runs of ``report.curves`` and every trial's curve beside it."""
    fig, ax = _axes(ax, (8, 4.2))
    epoch_loss = _series(report, "epoch_loss")
    assert epoch_loss is not None
    label = report.summary.get("run_label") or "your run"
    ax.plot(np.arange(1, len(epoch_loss) + 1), epoch_loss, color="black", lw=1.8, label=label)
    others = [
        (k, np.asarray(v, dtype=float), "-") for k, v in getattr(report, "curves", {}).items()
    ]
    others += [(k, v, "-.") for k, v in _trial_curves(report)]  # trials dash-dotted
    for i, (name, curve, style) in enumerate(others):
        ax.plot(
            np.arange(1, len(curve) + 1), curve, style, color=f"C{(i + 5) % 10}", lw=1.5, label=name
        )
    for i, (name, value) in enumerate(bound_lines(report.bounds, max_rank)):
        ax.axhline(value, linestyle="--", lw=1, color=f"C{i}", label=f"{name}: {value:.4g}")
    ax.set(xlabel="epoch", ylabel=f"loss ({report.summary.get('loss', 'per batch')})")
    ax.set_title("loss against what is achievable")
    ax.legend(**LEGEND)
    return fig


def _has_output_spread(report: Any) -> bool:
    return _series(report, "output_std") is not None and _series(report, "steps") is not None


def _target_std(report: Any) -> float | None:
    if "target_std" in report.probes:
        return float(report.probes["target_std"])
    for f in report.findings:
        if "target_std" in f.evidence:
            return float(f.evidence["target_std"])
    return None


def plot_output_spread(report: Any, ax: Any = None) -> Any:
    """How much the outputs vary across inputs over training, against how much the targets do:
    an output that is always the same is a curve at 0 far below the targets' line."""
    fig, ax = _axes(ax, (8, 3.6))
    out = _series(report, "output_std")
    assert out is not None
    ax.plot(probe_epochs(report), out, color="C0", lw=1.8, label="outputs across inputs")
    target = _target_std(report)
    if target is not None:
        ax.axhline(target, color="C3", ls="--", lw=1, label=f"targets: {target:.4g}")
    ax.set(xlabel="epoch", ylabel="standard deviation (mean over outputs)")
    ax.set_ylim(bottom=0)
    ax.set_title("do the outputs depend on the input?")
    ax.legend(**LEGEND)
    return fig


def unit_similarity(W: np.ndarray) -> np.ndarray:
    """Cosine similarity of the units' incoming weight vectors (rows of ``W`` ``(out, in)``):
    1 on the diagonal; 1 between identical units. A zero row is similar only to zero rows."""
    W = np.asarray(W, dtype=float)
    norms = np.linalg.norm(W, axis=1)
    safe = np.where(norms > 0, norms, 1.0)
    S = (W / safe[:, None]) @ (W / safe[:, None]).T
    zero = norms == 0
    S[np.ix_(zero, zero)] = 1.0
    return np.clip(S, -1.0, 1.0)


def _hidden_weights(report: Any) -> list[tuple[str, np.ndarray]]:
    names = layer_names(report)
    out = []
    for name in names[:-1]:  # the output layer's units are the outputs: not hidden
        W = report.probes.get(f"{name}.W_final")
        if W is not None and np.asarray(W).ndim == 2 and np.asarray(W).shape[0] > 1:
            out.append((name, np.asarray(W, dtype=float)))
    return out


def _has_unit_similarity(report: Any) -> bool:
    return bool(_hidden_weights(report))


def identical_groups(S: np.ndarray, tol: float = SAME_UNIT) -> list[list[int]]:
    """Groups of units (indices) whose similarity is 1, in order; singletons included."""
    groups: list[list[int]] = []
    seen: set[int] = set()
    for i in range(len(S)):
        if i in seen:
            continue
        group = [j for j in range(len(S)) if j not in seen and S[i, j] >= tol]
        seen.update(group)
        groups.append(group)
    return groups


def plot_unit_similarity(report: Any) -> Any:
    """One heatmap per hidden layer: the cosine similarity of its units' incoming weights at
    the end of training. A block of 1s is a group of identical units, which act as one."""
    layers = _hidden_weights(report)
    fig = _figure(figsize=(3.6 * len(layers) + 1.0, 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(layers), squeeze=False)[0])
    image = None
    for ax, (name, W) in zip(axes, layers, strict=True):
        S = unit_similarity(W)
        image = ax.imshow(S, vmin=-1, vmax=1, cmap="RdBu_r")
        n = len(S)
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        ax.set(xlabel="unit", ylabel="unit")
        distinct = len(identical_groups(S))
        ax.set_title(f"{layer_label(name)}: {n} units, {distinct} distinct", fontsize="medium")
        if n <= 12:
            for i in range(n):
                for j in range(n):
                    color = "white" if abs(S[i, j]) > 0.6 else "black"
                    ax.text(j, i, f"{S[i, j]:.2f}", ha="center", va="center", fontsize=8,
                            color=color)  # fmt: skip
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="cosine similarity of weights")
    fig.suptitle("are the hidden units different from each other?")
    return fig


def _act_layers(report: Any) -> list[str]:
    names = layer_names(report)
    hist = [n for n in names if _series(report, f"{n}.act_hist") is not None]
    if hist:
        return hist
    return [
        n
        for n in names
        if any(
            # any() rather than nanmax(): a series that is all NaN (no forward statistics,
            # an LSTM under watch) means no such layer, not a warning
            _series(report, f"{n}.{k}") is not None
            and bool(np.any(_series(report, f"{n}.{k}") > 0))
            for k in ("frac_saturated", "frac_dead")
        )
    ]


def _has_activations(report: Any) -> bool:
    return bool(_act_layers(report))


def plot_activations(report: Any) -> Any:
    """Activation distributions per layer over time (one panel a layer): a histogram per probe
    when recorded (mass piled at 0/1 or +-1 is saturation, at 0 for ReLU dead units), otherwise
    the share of saturated and of dead units over time."""
    names = _act_layers(report)
    fig = _figure(figsize=(8, 2.6 * len(names) + 0.6))
    axes = np.atleast_1d(fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0])
    t = probe_epochs(report)
    for ax, name in zip(axes, names, strict=True):
        hist = _series(report, f"{name}.act_hist")
        act = report.probes.get(f"{name}.activation", "")
        if hist is not None:
            edges = np.asarray(report.probes.get(f"{name}.act_edges"), dtype=float)
            share = hist / np.maximum(hist.sum(axis=1, keepdims=True), 1)
            ax.pcolormesh(
                np.r_[0.0, t] if len(t) == len(hist) else np.arange(len(hist) + 1),
                edges,
                share.T,
                cmap="viridis",
                vmin=0,
                vmax=1,
                shading="flat",
            )
            ax.set_ylabel("activation")
            ax.set_title(f"{layer_label(name)} {act}: share of activations", fontsize="medium")
        else:
            for key, lab, color in (
                ("frac_saturated", "saturated (beyond +-5 before the activation)", "C1"),
                ("frac_dead", "dead (0 for every input)", "C3"),
            ):
                s = _series(report, f"{name}.{key}")
                if s is not None and np.nanmax(s) > 0:
                    ax.plot(t[: len(s)], s, color=color, lw=1.6, label=lab)
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel("share")
            ax.set_title(f"{layer_label(name)}: units at the limits", fontsize="medium")
            ax.legend(**LEGEND)
    axes[-1].set_xlabel("epoch")
    return fig


def _grad_layers(report: Any) -> list[str]:
    return [n for n in layer_names(report) if _series(report, f"{n}.grad_norm") is not None]


def _has_gradients(report: Any) -> bool:
    return bool(_grad_layers(report)) and _series(report, "steps") is not None


def plot_gradients(report: Any, axes: Any = None) -> Any:
    """Gradient norm (top) and update-to-weight ratio (bottom) of each layer over time."""
    if axes is None:
        fig = _figure(figsize=(8, 5.4))
        axes = fig.subplots(2, 1, sharex=True)
    else:
        fig = axes[0].figure
    ax_g, ax_u = axes
    t = probe_epochs(report)
    for i, name in enumerate(_grad_layers(report)):
        g = _series(report, f"{name}.grad_norm")
        ax_g.plot(t[: len(g)], g, color=f"C{i}", lw=1.4, label=layer_label(name))
        u = _series(report, f"{name}.update_ratio")
        if u is not None and np.any(np.isfinite(u) & (u > 0)):
            ax_u.plot(t[: len(u)], u, color=f"C{i}", lw=1.4, label=layer_label(name))
    for ax in (ax_g, ax_u):
        if any(np.any(np.asarray(line.get_ydata()) > 0) for line in ax.get_lines()):
            ax.set_yscale("log")
    ax_g.set(ylabel="gradient norm")
    ax_g.set_title("gradients and step sizes per layer", fontsize="medium")
    ax_u.axhline(1e-3, color="grey", ls=":", lw=1, label="healthy step: 1e-3")
    ax_u.set(xlabel="epoch", ylabel="update / weight")
    ax_g.legend(**LEGEND)
    ax_u.legend(**LEGEND)
    return fig


def _bottleneck(report: Any) -> int | None:
    for f in report.findings:
        if "bottleneck_units" in f.evidence:
            return int(f.evidence["bottleneck_units"])
    names = layer_names(report)
    widths = [np.asarray(report.probes[f"{n}.W_final"]).shape[0] for n in names[:-1]
              if f"{n}.W_final" in report.probes]  # fmt: skip
    if widths:
        return min(widths)
    for f in report.findings:
        for key in f.evidence:
            if key.startswith("rank_") and key.endswith("_bound"):
                return int(key.split("_")[1])
    return None


def _has_spectrum(report: Any) -> bool:
    evr = report.bounds.get("explained_variance_ratio")
    return evr is not None and len(evr) > 0


def plot_spectrum(report: Any) -> Any:
    """The data's spectrum (share of variance of each principal component) with the
    bottleneck's width and the data's effective rank marked: a flat spectrum cannot be
    squeezed through a narrow bottleneck."""
    evr = np.asarray(report.bounds["explained_variance_ratio"], dtype=float)
    fig, ax = _axes(None, (8, 3.6))
    k = np.arange(1, len(evr) + 1)
    w = _bottleneck(report)
    colors = ["C0" if w is None or i <= w else "C7" for i in k]
    ax.bar(k, evr, color=colors, label="share of the data's variance")
    if w is not None:
        ax.axvline(w + 0.5, color="C3", lw=2, label=f"bottleneck: {w} units")
    eff = report.bounds.get("effective_rank")
    if eff is not None:
        ax.axvline(float(eff) + 0.5, color="C2", ls="--", lw=1.5,
                   label=f"effective rank: {float(eff):.3g}")  # fmt: skip
    ax.axhline(1.0 / len(evr), color="grey", ls=":", lw=1, label="flat spectrum")
    ax.set(xlabel="principal component", ylabel="share of variance")
    ax.set_xticks(k)
    ax.set_title("how compressible is the data?")
    ax.legend(**LEGEND)
    return fig


def _axes(ax: Any, size: tuple[float, float]) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    fig = _figure(figsize=size)
    return fig, fig.subplots()


# name -> (draw, has data, title)
PLOTS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], bool], str]] = {
    "loss": (plot_loss, _has_loss, "Loss against what is achievable"),
    "output-spread": (plot_output_spread, _has_output_spread, "Spread of the outputs"),
    "unit-similarity": (plot_unit_similarity, _has_unit_similarity, "Similarity of the units"),
    "activations": (plot_activations, _has_activations, "Activations per layer"),
    "gradients": (plot_gradients, _has_gradients, "Gradients and step sizes"),
    "spectrum": (plot_spectrum, _has_spectrum, "Spectrum of the data"),
}


def available_plots(report: Any) -> list[str]:
    """Names of the plots this report has data for (matplotlib not needed to ask)."""
    if not getattr(report, "probes", None) and not _has_spectrum(report):
        return []
    return [name for name, (_, has, _) in PLOTS.items() if has(report)]


def plot(report: Any, name: str) -> Any:
    """Draw one plot of ``report`` (a name in :data:`PLOTS`) and return the Figure.

    Raises
    ------
    ValueError
        An unknown name, or a plot whose data this run did not record.
    """
    if name not in PLOTS:
        raise ValueError(f"unknown plot {name!r}; choose from: {', '.join(PLOTS)}")
    draw, has, _ = PLOTS[name]
    if not has(report):
        raise ValueError(f"the report has no data for the {name!r} plot")
    return draw(report)


def figure_bytes(fig: Any, fmt: str = "svg") -> bytes:
    """The figure encoded as ``svg``, ``png`` or ``pdf`` (no timestamps in SVG and PDF)."""
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt in ("svg", "pdf") else None
    fig.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` to ``path`` atomically, in the format of its suffix (.png, .svg, .pdf)."""
    path = Path(path)
    data = figure_bytes(fig, path.suffix.lstrip(".").lower() or "png")
    return write_atomic(path, lambda f: f.write(data))


def plot_report(
    report: Any, path: str | os.PathLike[str] | None = None, *, max_rank: int | None = 3
) -> Any:
    """The overview: the loss against the bounds (with other runs and trials beside it) on top,
    the gradient norms and update-to-weight ratios per layer under it, all in epochs.

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
    if not getattr(report, "probes", None) or not _has_loss(report):
        raise ValueError("the report holds no recorded training (probes) to plot")
    grads = _has_gradients(report)
    fig = _figure(figsize=(10, 8.5 if grads else 4.5))
    if grads:
        ax_loss, ax_g, ax_u = fig.subplots(
            3, 1, sharex=True, gridspec_kw={"height_ratios": [2.2, 1, 1]}
        )
    else:
        ax_loss = fig.subplots()
    plot_loss(report, ax_loss, max_rank=max_rank)
    if grads:
        plot_gradients(report, (ax_g, ax_u))
        ax_loss.set_xlabel("")
        ax_g.set_title("")
    codes = ", ".join(f.code for f in report.causes) or "no cause found"
    fig.suptitle(f"nndoctor: {codes}")
    if path is not None:
        save_figure(fig, path)
    return fig


def _finite_max(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else math.nan
