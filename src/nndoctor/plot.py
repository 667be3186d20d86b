"""Plots of a doctor's report, each drawn from the report's own numbers.

Needs the ``plot`` extra (matplotlib), imported only when a plot is drawn. Figures are built
with ``matplotlib.figure.Figure`` directly, so no GUI backend or global pyplot state is used.

Each plot is available alone (``plot(report, name)`` or ``report.plot(name)``) and returns a
Figure; a plot whose data the run did not record is left out of :func:`available_plots` and
never drawn empty. The time axis counts epochs, or steps when the run's epochs were not seen
(a watched loop), with whole-number ticks; every layer is named as the report names it
(``layer 0``); the legend sits under the axes so it covers no data.

Every plot is drawn 4.5 inches (432 CSS pixels) wide or less with text of 10.5 pt or more
(:data:`STYLE`): a desktop page shows it at that size (text about 14 px), a 390 px phone
shrinks it to its column of about 350 px (text about 11 px). Long series are thinned for
drawing (:func:`thin`, which keeps the extremes), so a plot's size does not grow with the run.

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

import functools
import io
import itertools
import math
import os
from collections.abc import Callable, Sequence
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
# width of a plot in inches (324 pt, 432 CSS px): on a 390 px phone the page's column is
# about 350 px, where 10.5 pt text is about 11 px
WIDTH = 4.5
# matplotlib settings while a plot is drawn and saved: text as SVG text rather than glyph
# outlines (which made every plot several times larger), sizes readable on a phone
STYLE = {
    "font.size": 11.0,
    "axes.titlesize": 11.5,
    "axes.labelsize": 11.0,
    "xtick.labelsize": 10.5,
    "ytick.labelsize": 10.5,
    "legend.fontsize": 10.5,
    "figure.titlesize": 12.0,
    "legend.frameon": False,
    # the text is drawn by the browser: the first of these it has (then its own sans-serif)
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "svg.fonttype": "none",
    # the SVG's ids from the figure alone, not a random salt: the same report, the same file
    "svg.hashsalt": "nndoctor",
}
# points kept of each drawn line: the lowest and highest of every 3 pixel columns of the axes
# on a desktop (more would not show, and would make the page heavier)
DRAWN_POINTS = 240
# heatmap cells show their value up to this many units
ANNOTATED_UNITS = 6
# layers drawn at most: lines of the gradient and activation plots (each its own colour),
# heatmaps of the similarity plot (see _pick_layers)
MAX_LAYERS = 8
MAX_HEATMAPS = 6
# the heatmap draws one cell a unit up to this many units; wider layers in blocks of units
MAX_CELLS = 64
# its colours: steps of 0.1 from -1 to 1, as easy to read as a continuous scale and a picture
# half the size (noise of a few colours packs better than noise of many)
SIMILARITY_STEPS = 20
# the spectrum is drawn as bars up to this many components, as a step line beyond
MAX_BARS = 64


def _styled(draw: Callable[..., Any]) -> Callable[..., Any]:
    """Draw under :data:`STYLE` (text sizes are fixed when the text is made)."""

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        mpl = _extras.require("matplotlib")
        with mpl.rc_context(STYLE):
            return draw(*args, **kwargs)

    return wrapper


def _figure(**kwargs: Any) -> Any:
    figure_module = _extras.require("matplotlib.figure")
    return figure_module.Figure(layout="constrained", **kwargs)


def _axes(ax: Any, size: tuple[float, float]) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    fig = _figure(figsize=size)
    return fig, fig.subplots()


def _whole_ticks(axis: Any, nbins: int | str = "auto") -> None:
    """Ticks on whole numbers only (no "epoch 1.25" on a 3-epoch run, no unit 2.5)."""
    ticker = _extras.require("matplotlib.ticker")
    axis.set_major_locator(
        ticker.MaxNLocator(nbins=nbins, integer=True, steps=[1, 2, 5, 10], min_n_ticks=1)
    )


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


# --- time ------------------------------------------------------------------------------------


def steps_per_epoch(report: Any) -> float:
    """Optimiser steps per epoch (or per stretch of a loop whose epochs were not seen)."""
    p, s = report.probes, report.summary
    if p.get("steps_per_epoch"):
        return float(p["steps_per_epoch"])
    if s.get("steps") and s.get("epochs_run"):
        return float(s["steps"]) / float(s["epochs_run"])
    step_loss, epoch_loss = p.get("step_loss"), p.get("epoch_loss")
    if step_loss is not None and epoch_loss is not None and len(epoch_loss):
        return max(1.0, len(step_loss) / len(epoch_loss))
    return 1.0


def time_unit(report: Any) -> str:
    """``"epoch"``, or ``"step"`` for a watched loop whose epochs were not seen (its
    ``epoch_loss`` holds equal stretches of steps, not epochs)."""
    return "step" if report.summary.get("epochs_known") is False else "epoch"


def probe_times(report: Any) -> np.ndarray:
    """Where each probe sits on the time axis: the probe after step ``k`` (counted from 0)
    at step ``k + 1``, or at epoch ``(k + 1) / steps_per_epoch``."""
    steps = np.asarray(report.probes.get("steps", []), dtype=float)
    return steps + 1.0 if time_unit(report) == "step" else (steps + 1.0) / steps_per_epoch(report)


def epoch_times(report: Any, n: int, saved: bool = True) -> np.ndarray:
    """Where the ends of ``n`` epochs (or stretches of steps) sit on the time axis.

    ``saved``: the curve is the report's ``epoch_loss`` or one of its ``curves``, which a
    saved report keeps at the epochs ``probes["epoch_at"]`` when the run was long (a trial's
    curve is never thinned)."""
    at = report.probes.get("epoch_at")
    epochs = (
        np.asarray(at, dtype=float) if saved and at is not None and len(at) == n
        else np.arange(1.0, n + 1.0)
    )  # fmt: skip
    return epochs * steps_per_epoch(report) if time_unit(report) == "step" else epochs


def _time_axis(report: Any, ax: Any) -> None:
    ax.set_xlabel(time_unit(report))
    _whole_ticks(ax.xaxis)


# --- drawing helpers -------------------------------------------------------------------------


def thin_indices(y: np.ndarray, points: int = DRAWN_POINTS) -> np.ndarray:
    """Indices of at most about ``points`` values of ``y`` (shape (n,)) that draw the same
    line: the first and the last, and the lowest and the highest of each of ``points / 2``
    equal runs, so spikes and dips stay; a run holding NaN or inf keeps its first such value,
    which breaks the line where the data does. All indices when ``n <= points``; sorted."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n <= points:
        return np.arange(n)
    edges = np.linspace(0, n, max(1, points // 2) + 1).astype(int)
    keep = {0, n - 1}
    for lo, hi in itertools.pairwise(edges):
        chunk = y[lo:hi]
        finite = np.isfinite(chunk)
        if not finite.all():
            keep.add(lo + int(np.argmin(finite)))
        if finite.any():
            values = np.where(finite, chunk, np.nan)
            keep.update((lo + int(np.nanargmin(values)), lo + int(np.nanargmax(values))))
    return np.array(sorted(keep))


def thin(x: np.ndarray, y: np.ndarray, points: int = DRAWN_POINTS) -> tuple[np.ndarray, ...]:
    """The points of the line ``(x, y)`` (shape (n,)) that :func:`thin_indices` keeps."""
    keep = thin_indices(y, points)
    return np.asarray(x)[keep], np.asarray(y)[keep]


def _line(ax: Any, x: np.ndarray, y: np.ndarray, *args: Any, **kwargs: Any) -> Any:
    (line,) = ax.plot(*thin(x, y), *args, **kwargs)
    return line


def _legend_layout(labels: Sequence[str], width: float) -> tuple[int, int]:
    """(columns, rows) of a legend of ``labels`` under axes ``width`` inches wide."""
    if not labels:
        return 1, 0
    # an entry: its handle (about 3.5 em) and its text (about 0.55 em a character)
    entry = float(STYLE["legend.fontsize"]) * (3.5 + 0.55 * max(len(s) for s in labels))
    cols = max(1, min(len(labels), int(0.95 * 72.0 * width // entry)))
    return cols, math.ceil(len(labels) / cols)


def _legend_height(labels: Sequence[str], width: float = WIDTH) -> float:
    """Inches a legend of ``labels`` takes under the axes."""
    rows = _legend_layout(labels, width)[1]
    return 0.22 * rows + 0.15 if rows else 0.0


def _legend(fig: Any, axes: Sequence[Any]) -> Any:
    """One legend for ``axes``, under them (an entry per label, in drawing order), in as
    many columns as the figure's width holds; None when nothing is labelled."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if not entries:
        return None
    cols, _ = _legend_layout(list(entries), fig.get_figwidth())
    return fig.legend(list(entries.values()), list(entries), loc="outside lower center",
                      ncols=cols)  # fmt: skip


def _log_scale(ax: Any, values: Sequence[np.ndarray]) -> None:
    """A log axis for positive data that still shows zeros: with a 0 among the values the
    axis is linear from 0 up to the smallest positive decade and logarithmic above
    (``symlog``), so a gradient that became exactly 0 (the layer died, or was frozen) lies on
    the bottom line, labelled 0, instead of falling off the plot. Ticks read ``0.001``,
    ``1e-05`` (plain text, no small superscripts)."""
    ticker = _extras.require("matplotlib.ticker")
    flat = np.concatenate([np.ravel(v) for v in values]) if values else np.zeros(0)
    flat = flat[np.isfinite(flat)]
    positive = flat[flat > 0]
    if not positive.size:  # all zero: a linear axis from 0
        ax.set_ylim(bottom=0.0, top=1.0)
        return
    lo, hi = float(positive.min()), float(positive.max())
    if np.any(flat <= 0):
        bottom, top = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        # 0 and at most five decades, evenly spaced down from the top (symlog's own ticks
        # label every decade: twenty of them for a gradient that faded to 1e-20 first); the
        # linear stretch from 0 as tall as the step between two labels, so theirs stay apart
        stride = max(1, math.ceil((top - bottom) / 5))
        ax.set_yscale("symlog", linthresh=10.0**bottom, linscale=max(0.4, 0.8 * stride))
        ax.set_ylim(bottom=0.0)
        decades = [10.0**d for d in range(top, bottom - 1, -stride)]
        ax.yaxis.set_major_locator(ticker.FixedLocator([0.0, *decades]))
        ax.yaxis.set_minor_locator(ticker.NullLocator())
    else:
        ax.set_yscale("log")
        # under two decades: ticks at 1, 2 and 5 of each decade, so there are some
        subs = (1.0, 2.0, 5.0) if hi < 100.0 * lo else (1.0,)
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=subs))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def _pick_layers(report: Any, names: list[str], limit: int) -> list[str]:
    """At most ``limit`` of ``names``, in their order: those a finding names first, then the
    first and the last layer and layers evenly spaced between them."""
    if len(names) <= limit:
        return names
    named = {str(f.evidence.get("layer")) for f in report.findings if "layer" in f.evidence}
    spread = [names[i] for i in np.linspace(0, len(names) - 1, limit).round().astype(int)]
    chosen: list[str] = []
    for name in [*(n for n in names if n in named), *spread, *names]:
        if len(chosen) < limit and name not in chosen:
            chosen.append(name)
    return [n for n in names if n in chosen]


def _of_layers(shown: int, total: int) -> str:
    return f" ({shown} of {total} layers)" if total > shown else ""


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


def _loss_labels(report: Any, max_rank: int | None) -> list[str]:
    bounds = [f"{name}: {value:.4g}" for name, value in bound_lines(report.bounds, max_rank)]
    runs = [*getattr(report, "curves", {}), *(name for name, _ in _trial_curves(report))]
    return ["run", *runs, *bounds]


@_styled
def plot_loss(report: Any, ax: Any = None, *, max_rank: int | None = 3) -> Any:
    """Loss per epoch against the constant baseline and the achievable bounds (labelled dashed
    lines), with the other runs of ``report.curves`` and every trial's curve beside it."""
    legend = ax is None
    labels = _loss_labels(report, max_rank)
    fig, ax = _axes(ax, (WIDTH, 2.9 + _legend_height(labels)))
    epoch_loss = _series(report, "epoch_loss")
    assert epoch_loss is not None
    label = report.summary.get("run_label") or "your run"
    _line(ax, epoch_times(report, len(epoch_loss)), epoch_loss, color="black", lw=1.8,
          label=label)  # fmt: skip
    others = [
        (k, np.asarray(v, dtype=float), "-", True) for k, v in getattr(report, "curves", {}).items()
    ]
    others += [(k, v, "-.", False) for k, v in _trial_curves(report)]  # trials dash-dotted
    for i, (name, curve, style, saved) in enumerate(others):
        x = epoch_times(report, len(curve), saved)
        _line(ax, x, curve, style, color=f"C{(i + 5) % 10}", lw=1.5, label=name)
    for i, (name, value) in enumerate(bound_lines(report.bounds, max_rank)):
        ax.axhline(value, linestyle="--", lw=1, color=f"C{i}", label=f"{name}: {value:.4g}")
    ax.set_ylabel(f"loss ({report.summary.get('loss', 'per batch')})")
    _time_axis(report, ax)
    ax.set_title("loss against what is achievable")
    if legend:
        _legend(fig, [ax])
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


@_styled
def plot_output_spread(report: Any, ax: Any = None) -> Any:
    """How much the outputs vary across inputs over training, against how much the targets do:
    an output that is always the same is a curve at 0 far below the targets' line."""
    legend = ax is None
    fig, ax = _axes(ax, (WIDTH, 2.7 + _legend_height(["outputs across inputs", "targets"])))
    out = _series(report, "output_std")
    assert out is not None
    t = probe_times(report)
    _line(ax, t[: len(out)], out, color="C0", lw=1.8, label="outputs across inputs")
    target = _target_std(report)
    if target is not None:
        ax.axhline(target, color="C3", ls="--", lw=1, label=f"targets: {target:.4g}")
    ax.set_ylabel("spread (standard deviation)")
    ax.set_ylim(bottom=0)
    _time_axis(report, ax)
    ax.set_title("do the outputs depend on the input?")
    if legend:
        _legend(fig, [ax])
    return fig


def unit_similarity(W: np.ndarray) -> np.ndarray:
    """Cosine similarity of the units' incoming weight vectors (rows of ``W`` ``(out, in)``):
    1 on the diagonal; 1 between identical units. A zero row is similar only to zero rows.

    Returns
    -------
    ndarray, shape (out, out)
    """
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
    S = np.asarray(S)
    free = np.ones(len(S), dtype=bool)
    groups: list[list[int]] = []
    for i in range(len(S)):
        if free[i]:
            group = np.flatnonzero(free & (S[i] >= tol))
            group = group if group.size else np.array([i])
            free[group] = False
            groups.append(group.tolist())
    return groups


def heatmap_cells(S: np.ndarray, groups: list[list[int]]) -> tuple[np.ndarray, int]:
    """What the heatmap draws of a similarity matrix ``S`` (shape (n, n)) whose identical
    units form ``groups``: ``S`` itself up to :data:`MAX_CELLS` units; for a wider layer the
    units sorted so that each group of identical units is side by side (largest first, which
    makes them one red block wherever they sit in the layer), then averaged over blocks of
    ``c x c`` units, ``c`` the fewest that leave at most :data:`MAX_CELLS` cells a side.

    Returns
    -------
    cells : ndarray, shape (m, m), m <= MAX_CELLS when n > MAX_CELLS
    c : int
        Units per cell side (1: ``S`` as it is, in the layer's order).
    """
    n = len(S)
    if n <= MAX_CELLS:
        return S, 1
    order = np.concatenate(sorted(groups, key=len, reverse=True))
    c = math.ceil(n / MAX_CELLS)
    m = math.ceil(n / c)
    padded = np.full((m * c, m * c), np.nan)
    padded[:n, :n] = S[np.ix_(order, order)]
    return np.nanmean(padded.reshape(m, c, m, c), axis=(1, 3)), c


def _heatmap(ax: Any, name: str, W: np.ndarray, wrap: bool) -> Any:
    S = unit_similarity(W)
    n = len(S)
    groups = identical_groups(S)
    cells, c = heatmap_cells(S, groups)
    # a cell a block of units, the axes still counted in units; each cell one pixel of the
    # embedded picture, drawn as a sharp square
    cmap = _extras.require("matplotlib").colormaps["RdBu_r"].resampled(SIMILARITY_STEPS)
    image = ax.imshow(cells, vmin=-1, vmax=1, cmap=cmap, interpolation="none",
                      extent=(-0.5, n - 0.5, n - 0.5, -0.5))  # fmt: skip
    for axis in (ax.xaxis, ax.yaxis):
        _whole_ticks(axis, nbins=min(n, 3 if wrap else 5))
    label = "unit" if c == 1 else "unit (sorted)"
    ax.set(xlabel=label, ylabel=label)
    sep = "\n" if wrap else " "  # two heatmaps a row: the title on two lines
    ax.set_title(f"{layer_label(name)}: {n} units,{sep}{len(groups)} distinct")
    if n <= ANNOTATED_UNITS:
        for i in range(n):
            for j in range(n):
                color = "white" if abs(S[i, j]) > 0.6 else "black"
                ax.text(j, i, f"{S[i, j]:.2f}", ha="center", va="center", color=color)
    return image


@_styled
def plot_unit_similarity(report: Any) -> Any:
    """One heatmap per hidden layer: the cosine similarity of its units' incoming weights at
    the end of training. A block of 1s is a group of identical units, which act as one.

    Legible from 2 to thousands of units: whole-number ticks, five at most; cell values
    written up to :data:`ANNOTATED_UNITS` units; beyond :data:`MAX_CELLS` units identical
    units are sorted side by side and blocks of units averaged (:func:`heatmap_cells`). Two
    heatmaps a row, at most :data:`MAX_HEATMAPS` layers (those the findings name first)."""
    hidden = dict(_hidden_weights(report))
    layers = [(n, hidden[n]) for n in _pick_layers(report, list(hidden), MAX_HEATMAPS)]
    cols = 1 if len(layers) == 1 else 2
    rows = math.ceil(len(layers) / cols)
    # square heatmaps (inches a side) with room for the ticks, the titles and the colour bar
    panel = 2.9 if cols == 1 else 1.55
    title = 0.35 if cols == 1 else 0.55
    fig = _figure(figsize=(panel * cols + 1.4, (panel + title + 0.5) * rows + 0.35))
    grid = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in grid[len(layers) :]:
        fig.delaxes(ax)
    images = [_heatmap(ax, name, W, cols > 1) for ax, (name, W) in zip(grid, layers, strict=False)]
    shown = list(grid[: len(layers)])
    blocks = any(len(W) > MAX_CELLS for _, W in layers)
    label = "similarity (cosine)" + (", mean of a cell" if blocks else "")
    fig.colorbar(images[-1], ax=shown, shrink=0.8 if rows == 1 else 0.6, label=label)
    fig.suptitle(f"are the hidden units different?{_of_layers(len(layers), len(hidden))}")
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


_LIMITS = (
    ("frac_saturated", "saturated (beyond +-5 before the activation)", "C1"),
    ("frac_dead", "dead (0 for every input)", "C3"),
)


@_styled
def plot_activations(report: Any) -> Any:
    """Activation distributions per layer over time (one panel a layer): a histogram per probe
    when recorded (mass piled at 0/1 or +-1 is saturation, at 0 for ReLU dead units), otherwise
    the share of saturated and of dead units over time."""
    every = _act_layers(report)
    names = _pick_layers(report, every, MAX_LAYERS)
    legend = _legend_height([label for _, label, _ in _LIMITS])
    fig = _figure(figsize=(WIDTH, 2.2 * len(names) + 0.6 + legend))
    axes = np.atleast_1d(fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0])
    t = probe_times(report)
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
            ax.set_title(f"{layer_label(name)} {act}: share of activations")
        else:
            for key, label, color in _LIMITS:
                s = _series(report, f"{name}.{key}")
                if s is not None and np.nanmax(s) > 0:
                    _line(ax, t[: len(s)], s, color=color, lw=1.6, label=label)
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel("share of units")
            ax.set_title(f"{layer_label(name)}: units at the limits")
    _time_axis(report, axes[-1])
    if len(every) > len(names):
        fig.suptitle(f"activations{_of_layers(len(names), len(every))}")
    _legend(fig, axes)
    return fig


def _grad_layers(report: Any) -> list[str]:
    return [n for n in layer_names(report) if _series(report, f"{n}.grad_norm") is not None]


def _has_gradients(report: Any) -> bool:
    return bool(_grad_layers(report)) and _series(report, "steps") is not None


@_styled
def plot_gradients(report: Any, axes: Any = None) -> Any:
    """Gradient norm (top) and update-to-weight ratio (bottom) of each layer over time, on log
    axes that keep zeros (a gradient of exactly 0 lies on the bottom line, labelled 0)."""
    every = _grad_layers(report)
    names = _pick_layers(report, every, MAX_LAYERS)
    legend = axes is None
    if axes is None:
        labels = [*map(layer_label, names), "healthy step: 1e-3"]
        fig = _figure(figsize=(WIDTH, 4.4 + _legend_height(labels)))
        axes = fig.subplots(2, 1, sharex=True)
    else:
        fig = axes[0].figure
    ax_g, ax_u = axes
    t = probe_times(report)
    drawn: dict[Any, list[np.ndarray]] = {ax_g: [], ax_u: []}
    for i, name in enumerate(names):
        for ax, key in ((ax_g, "grad_norm"), (ax_u, "update_ratio")):
            s = _series(report, f"{name}.{key}")
            if s is not None and np.any(np.isfinite(s)):
                _line(ax, t[: len(s)], s, color=f"C{i}", lw=1.4, label=layer_label(name))
                drawn[ax].append(s)
    for ax, values in drawn.items():
        _log_scale(ax, values)
    ax_g.set(ylabel="gradient norm")
    ax_g.set_title(f"gradients and step sizes per layer{_of_layers(len(names), len(every))}")
    ax_u.axhline(1e-3, color="grey", ls=":", lw=1, label="healthy step: 1e-3")
    ax_u.set(ylabel="update / weight")
    _time_axis(report, ax_u)
    if legend:
        _legend(fig, [ax_g, ax_u])
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


@_styled
def plot_spectrum(report: Any) -> Any:
    """The data's spectrum (share of variance of each principal component) with the
    bottleneck's width and the data's effective rank marked: a flat spectrum cannot be
    squeezed through a narrow bottleneck."""
    evr = np.asarray(report.bounds["explained_variance_ratio"], dtype=float)
    labels = ["share of the data's variance", "bottleneck: 000 units", "effective rank: 0.000",
              "flat spectrum"]  # fmt: skip
    fig, ax = _axes(None, (WIDTH, 2.7 + _legend_height(labels)))
    k = np.arange(1, len(evr) + 1)
    w = _bottleneck(report)
    if len(evr) <= MAX_BARS:
        colors = ["C0" if w is None or i <= w else "C7" for i in k]
        ax.bar(k, evr, color=colors, label="share of the data's variance")
    else:  # hundreds of bars would be a smear and a large file: one step line
        ax.stairs(evr, np.arange(0.5, len(evr) + 1.0), fill=True, color="C0",
                  label="share of the data's variance")  # fmt: skip
    if w is not None:
        ax.axvline(w + 0.5, color="C3", lw=2, label=f"bottleneck: {w} units")
    eff = report.bounds.get("effective_rank")
    if eff is not None:
        ax.axvline(float(eff) + 0.5, color="C2", ls="--", lw=1.5,
                   label=f"effective rank: {float(eff):.3g}")  # fmt: skip
    ax.axhline(1.0 / len(evr), color="grey", ls=":", lw=1, label="flat spectrum")
    ax.set(xlabel="principal component", ylabel="share of variance")
    if len(evr) <= 12:  # every component named
        ax.set_xticks(k)
    else:
        _whole_ticks(ax.xaxis)
    ax.set_title("how compressible is the data?")
    _legend(fig, [ax])
    return fig


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
    """The figure encoded as ``svg``, ``png`` or ``pdf`` (no timestamps in SVG and PDF; SVG
    text as text, which the page's fonts draw)."""
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt in ("svg", "pdf") else None
    with _extras.require("matplotlib").rc_context(STYLE):
        fig.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` to ``path`` atomically, in the format of its suffix (.png, .svg, .pdf)."""
    path = Path(path)
    data = figure_bytes(fig, path.suffix.lstrip(".").lower() or "png")
    return write_atomic(path, lambda f: f.write(data))


@_styled
def plot_report(
    report: Any, path: str | os.PathLike[str] | None = None, *, max_rank: int | None = 3
) -> Any:
    """The overview: the loss against the bounds (with other runs and trials beside it) on top,
    the gradient norms and update-to-weight ratios per layer under it, on one time axis.

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
    layers = _pick_layers(report, _grad_layers(report), MAX_LAYERS)
    labels = _loss_labels(report, max_rank) + [layer_label(n) for n in layers]
    fig = _figure(figsize=(10, (8.0 if grads else 4.2) + _legend_height(labels, 10)))
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
    _legend(fig, fig.axes)
    codes = ", ".join(f.code for f in report.causes) or "no cause found"
    fig.suptitle(f"nndoctor: {codes}")
    if path is not None:
        save_figure(fig, path)
    return fig
