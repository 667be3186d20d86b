"""Plots of a report: every line, bar and cell drawn is the report's own number, checked
against an independent computation; a plot without data is left out, never drawn empty."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nndoctor import diagnose
from nndoctor.doctor import CODES, Report
from nndoctor.nn import SGD, SSE, Dense, Sequential, Sigmoid

pytest.importorskip("matplotlib", reason="the plot extra: pip install 'nndoctor[plot]'")

from nndoctor import plot as nplot
from nndoctor.plot import plot_report


def _seed_X(n: int) -> np.ndarray:
    return np.random.default_rng(42).random((n, 8, 8)).transpose(0, 2, 1).reshape(-1, 8)


def _rank_bounds(X: np.ndarray, ks=range(4)) -> np.ndarray:
    """Best rank-k code of the data, SSE per 8-row batch, from the SVD of the centred data."""
    s2 = np.linalg.svd(X - X.mean(axis=0), compute_uv=False) ** 2
    return 0.5 * np.array([s2[k:].sum() for k in ks]) / (len(X) / 8)


def _zero_init() -> Sequential:
    return Sequential(Dense(8, 3, init="zeros"), Sigmoid(), Dense(3, 8, init="zeros"), Sigmoid())


@pytest.fixture(scope="module")
def report():
    X = _seed_X(10)
    sgd = SGD(lr=0.05)
    return diagnose(
        _zero_init(), X, loss=SSE(), optimizer=sgd, epochs=30, batch_size=8, trials=False
    )


@pytest.fixture(scope="module")
def seed_report():
    """The seed's 100 matrices (bounds are the data's: 2.271 at rank 1, 1.539 at rank 3), a
    short zero-init run, and a Xavier run beside it as the seed case draws it."""
    from nndoctor.seedcase import run_seed_case

    result = run_seed_case(n_samples=100, epochs=4, progress=False)
    return result.report, result


def _legend_outside(fig) -> None:
    """Every legend (the figure's, under the axes) covers no axes."""
    fig.draw_without_rendering()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    for legend in legends:
        box = legend.get_window_extent()
        for ax in fig.axes:
            frame = ax.get_window_extent()
            assert (
                box.x0 >= frame.x1
                or box.x1 <= frame.x0
                or box.y1 <= frame.y0
                or (box.y0 >= frame.y1)
            ), ax.get_title()


def test_the_seed_overview_shows_the_bounds_and_the_fixed_run(seed_report, tmp_path):
    report, result = seed_report
    path = tmp_path / "seed.png"
    fig = plot_report(report, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["seed.png"]  # no temp file left
    ax_loss, ax_grad, ax_update = fig.axes
    lines = {line.get_label(): line for line in ax_loss.get_lines()}
    np.testing.assert_array_equal(
        lines["zeros init (the asker's)"].get_ydata(), report.probes["epoch_loss"]
    )
    np.testing.assert_array_equal(
        lines["xavier_uniform init"].get_ydata(), result.run("xavier_uniform").loss
    )
    X = _seed_X(100)
    expected = _rank_bounds(X)
    drawn = {
        label.split(":")[0]: line.get_ydata()[0] for label, line in lines.items() if ":" in label
    }
    assert drawn["best rank-1 code"] == pytest.approx(expected[1], rel=1e-10)
    assert drawn["best rank-3 code"] == pytest.approx(expected[3], rel=1e-10)
    assert (
        round(drawn["best rank-1 code"], 3) == 2.271
        and round(drawn["best rank-3 code"], 3) == 1.539
    )
    assert drawn["best constant (baseline)"] == pytest.approx(expected[0], rel=1e-10)
    assert "best rank-1 code: 2.271" in lines and "best rank-3 code: 1.539" in lines
    # one x unit (epochs) across the panels: shared axis, gradients drawn at probe epochs
    assert ax_loss.get_shared_x_axes().joined(ax_loss, ax_grad)
    assert ax_update.get_xlabel() == "epoch"
    spe = 100  # one step per 8x8 matrix
    grad = {line.get_label(): line for line in ax_grad.get_lines()}
    assert sorted(grad) == ["layer 0", "layer 1"]  # as the findings name them
    np.testing.assert_allclose(
        grad["layer 0"].get_xdata(), (np.asarray(report.probes["steps"]) + 1) / spe
    )
    np.testing.assert_array_equal(grad["layer 1"].get_ydata(), report.probes["1.grad_norm"])
    _legend_outside(fig)
    assert "symmetric-units" in fig.get_suptitle()


def test_each_plot_alone_returns_a_figure_with_the_reports_numbers(report):
    assert report.plots == [p for p in nplot.PLOTS if p in report.plots]
    assert {"loss", "output-spread", "gradients", "spectrum"} <= set(report.plots)
    spread = report.plot("output-spread")
    (ax,) = spread.axes
    out, target = ax.get_lines()
    np.testing.assert_array_equal(out.get_ydata(), report.probes["output_std"])
    # the targets' spread: std across inputs of each element of the data, averaged
    X = _seed_X(10)
    assert target.get_ydata()[0] == pytest.approx(X.std(axis=0).mean(), rel=0.1)
    _legend_outside(spread)

    spectrum = report.plot("spectrum")
    (ax,) = spectrum.axes
    s2 = np.linalg.svd(X - X.mean(axis=0), compute_uv=False) ** 2
    heights = [bar.get_height() for bar in ax.patches]
    np.testing.assert_allclose(heights, s2 / s2.sum(), rtol=1e-10)
    bottleneck = next(line for line in ax.get_lines() if "bottleneck" in line.get_label())
    assert bottleneck.get_xdata()[0] == 3.5  # right of the 3rd component
    _legend_outside(spectrum)

    grads = report.plot("gradients")
    assert [ax.get_xlabel() for ax in grads.axes] == ["", "epoch"]
    with pytest.raises(ValueError, match="unknown plot"):
        report.plot("nope")


def test_the_zero_init_case_shows_one_block_of_identical_units(report):
    assert "unit-similarity" in report.plots
    fig = report.plot("unit-similarity")
    ax = fig.axes[0]  # layer 0, the only hidden layer
    S = np.asarray(ax.get_images()[0].get_array())
    W = np.asarray(report.probes["0.W_final"])
    norms = np.linalg.norm(W, axis=1)
    np.testing.assert_allclose(S, (W @ W.T) / np.outer(norms, norms), rtol=1e-12)
    assert np.allclose(S, 1.0)  # all three units are one
    assert ax.get_title() == "layer 0: 3 units, 1 distinct"
    assert report["symmetric-units"].evidence["groups"] == [[0, 1, 2]]
    _legend_outside(fig)


def test_unit_similarity_of_a_hand_made_layer():
    W = np.array([[1.0, 2.0, -1.0], [1.0, 2.0, -1.0], [1.0, 2.0, -1.0], [0.0, 1.0, 0.0]])
    S = nplot.unit_similarity(W)
    expected = np.array(
        [
            [W[i] @ W[j] / np.linalg.norm(W[i]) / np.linalg.norm(W[j]) for j in range(4)]
            for i in range(4)
        ]
    )
    np.testing.assert_allclose(S, expected, rtol=1e-12)
    assert nplot.identical_groups(S) == [[0, 1, 2], [3]]
    assert nplot.identical_groups(nplot.unit_similarity(np.zeros((3, 2)))) == [[0, 1, 2]]
    probes = {"steps": np.arange(3), "epoch_loss": np.ones(3), "0.W_final": W, "1.W_final": W.T}
    report = Report([], {}, {}, {}, probes)
    assert "unit-similarity" in report.plots
    fig = report.plot("unit-similarity")
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.get_images()[0].get_array(), expected, rtol=1e-12)
    assert ax.get_title() == "layer 0: 4 units, 2 distinct"


def test_activation_shares_of_a_saturated_layer():
    rng = np.random.default_rng(0)
    X = rng.random((64, 4)) * 40.0  # far from unit scale: sigmoid inputs beyond +-5
    Y = rng.random((64, 2))
    model = Sequential(Dense(4, 5, seed=1), Sigmoid(), Dense(5, 2, seed=2), Sigmoid())
    sgd = SGD(lr=0.1)
    report = diagnose(model, X, Y, loss=SSE(), optimizer=sgd, epochs=10, trials=False)
    assert "activations" in report.plots
    fig = report.plot("activations")
    ax = fig.axes[0]
    (line,) = [x for x in ax.get_lines() if x.get_label().startswith("saturated")]
    np.testing.assert_array_equal(line.get_ydata(), report.probes["0.frac_saturated"])
    assert line.get_ydata()[0] > 0.5
    assert ax.get_title().startswith("layer 0")


def test_plots_without_data_are_left_out(report):
    empty = Report(report.findings, report.summary, {}, {}, {})
    assert empty.plots == []
    with pytest.raises(ValueError, match="no recorded training"):
        plot_report(empty)
    with pytest.raises(ValueError, match="no data"):
        empty.plot("loss")
    # a regression (no spectrum) and a sigmoid net far from saturation (no activation panel)
    no_spectrum = Report(report.findings, report.summary, {"baseline": 1.0}, {}, report.probes)
    assert "spectrum" not in no_spectrum.plots and "activations" not in no_spectrum.plots


def test_each_trial_curve_is_drawn_beside_the_original():
    X = _seed_X(10)
    sgd = SGD(lr=0.05)
    report = diagnose(_zero_init(), X, loss=SSE(), optimizer=sgd, epochs=30, batch_size=8)
    trial = report["symmetric-units"].trial
    # seed 0 of the trial: the user's own setup with the fix; its last epoch is its score
    assert trial["curve"][-1] == trial["after_seeds"][0]
    fig = report.plot("loss")
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    drawn = lines[f"trial: {trial['change']}"]
    np.testing.assert_array_equal(drawn.get_ydata(), trial["curve"])
    np.testing.assert_array_equal(drawn.get_xdata(), np.arange(1, len(trial["curve"]) + 1))
    _legend_outside(fig)


# --- legible at any size -----------------------------------------------------------------------


def _layer(n: int, rng) -> np.ndarray:
    """A hidden layer of ``n`` units (rows): the first quarter (at least two) identical, the
    next eighth all zero (dead), the rest random."""
    W = rng.normal(size=(n, 12))
    same = max(2, n // 4)
    W[:same] = W[0]
    W[same : same + n // 8] = 0.0
    return W


def _cosines(W: np.ndarray) -> np.ndarray:
    """Cosine similarity of the rows: their dot products over the products of their norms; a
    zero row is like every other zero row only."""
    norms = np.sqrt((W**2).sum(axis=1))
    N = np.outer(norms, norms)
    zero = norms == 0
    return np.where(N > 0, (W @ W.T) / np.where(N > 0, N, 1.0), np.outer(zero, zero) * 1.0)


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("n", [2, 32, 256, 1000])
def test_the_heatmap_stays_legible_from_2_to_1000_units(n, layers):
    rng = np.random.default_rng(n)
    W = _layer(n, rng)
    probes = {"steps": np.arange(3), "epoch_loss": np.ones(3)}
    for i in range(layers):
        probes[f"{i}.W_final"] = W
    probes[f"{layers}.W_final"] = rng.normal(size=(2, n))  # the output layer: not drawn
    report = Report([], {}, {}, {}, probes)
    fig = report.plot("unit-similarity")
    heatmaps = [ax for ax in fig.axes if ax.get_images() and ax.get_title()]
    assert len(heatmaps) == layers
    distinct = len(np.unique(W, axis=0))  # identical rows are one unit, the zero rows one
    sep = "\n" if layers > 1 else " "
    assert heatmaps[0].get_title() == f"layer 0: {n} units,{sep}{distinct} distinct"
    cells = np.asarray(heatmaps[0].get_images()[0].get_array())
    if n <= nplot.MAX_CELLS:  # a cell a unit, in the layer's order
        np.testing.assert_allclose(cells, _cosines(W), atol=1e-12)
    else:  # identical units side by side (largest group first), blocks of c x c averaged
        same = max(2, n // 4)
        order = [*range(same), *range(same, same + n // 8), *range(same + n // 8, n)]
        S = _cosines(W[order])
        c = -(-n // nplot.MAX_CELLS)
        m = -(-n // c)
        expected = np.array(
            [[S[i * c : (i + 1) * c, j * c : (j + 1) * c].mean() for j in range(m)]
             for i in range(m)]
        )  # fmt: skip
        assert cells.shape == (m, m) and m <= nplot.MAX_CELLS
        np.testing.assert_allclose(cells, expected, atol=1e-12)
    fig.draw_without_rendering()
    for ax in heatmaps:
        for axis in (ax.xaxis, ax.yaxis):
            ticks = [t for t in axis.get_majorticklocs() if -0.5 <= t <= n - 0.5]
            assert 1 <= len(ticks) <= 6 and all(t == int(t) for t in ticks), ticks
        # the value in each cell only while it fits
        assert len(ax.texts) == (n * n if n <= nplot.ANNOTATED_UNITS else 0)
    # drawn for the page's column, and small whatever the width of the layer
    assert fig.get_figwidth() <= nplot.WIDTH + 1e-9
    assert len(nplot.figure_bytes(fig)) < 40_000


def test_a_deep_net_shows_the_layers_the_findings_name_first():
    rng = np.random.default_rng(1)
    probes = {f"{i}.W_final": rng.normal(size=(4, 4)) for i in range(11)}
    f = CODES["dead-units"].finding("warning", "layer 9: dead", evidence={"layer": "9"})
    fig = Report([f], {}, {}, {}, probes).plot("unit-similarity")
    titles = [ax.get_title().split(":")[0] for ax in fig.axes if ax.get_title()]
    assert len(titles) == nplot.MAX_HEATMAPS and "layer 9" in titles
    assert titles[0] == "layer 0" and titles == sorted(titles, key=lambda t: int(t.split()[1]))
    assert fig.get_suptitle().endswith(f"({nplot.MAX_HEATMAPS} of 10 layers)")


def _dying(n: int, rng, probes: int = 60, death: int = 25) -> dict[str, np.ndarray]:
    """Probes of two layers of ``n`` units: layer 0's gradient the norm of a random (n, 8)
    matrix until step ``death``, exactly 0 after (the units died); layer 1's never 0."""
    grads = [np.linalg.norm(rng.normal(size=(n, 8))) * 0.9**k for k in range(probes)]
    g0 = np.where(np.arange(probes) < death, grads, 0.0)
    return {
        "steps": np.arange(probes) * 10,
        "epoch_loss": np.ones(6),
        "steps_per_epoch": 100,
        "0.grad_norm": g0,
        "0.update_ratio": g0 * 1e-4,
        "1.grad_norm": np.asarray(grads) + 1.0,
        "1.update_ratio": np.full(probes, 2e-3),
    }


@pytest.mark.parametrize("n", [2, 32, 256, 1000])
def test_zero_gradients_stay_on_the_plot(n):
    """The issue's dead network: gradients that became exactly 0 lie on the bottom line of a
    log axis (labelled 0) at the steps they were 0, instead of leaving the plot."""
    probes = _dying(n, np.random.default_rng(n))
    fig = Report([], {}, {}, {}, probes).plot("gradients")
    ax_g, ax_u = fig.axes
    for ax, key in ((ax_g, "grad_norm"), (ax_u, "update_ratio")):
        line = next(x for x in ax.get_lines() if x.get_label() == "layer 0")
        np.testing.assert_array_equal(line.get_ydata(), probes[f"0.{key}"])
        np.testing.assert_allclose(line.get_xdata(), (probes["steps"] + 1) / 100)
        assert ax.get_yscale() == "symlog" and ax.get_ylim()[0] == 0.0
        fig.draw_without_rendering()
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        # 0 on the axis, plain numbers (no superscripts), a few of them
        assert labels[0] == "0" and len(labels) <= 6 and not any("$" in s for s in labels)
    # nothing is 0 in layer 1 alone: a plain log axis
    only = {k: v for k, v in probes.items() if not k.startswith("0.")}
    assert Report([], {}, {}, {}, only).plot("gradients").axes[0].get_yscale() == "log"


def test_the_dead_relu_scenario_draws_its_zeros():
    from nndoctor.scenarios import CATALOG

    setup = next(c for c in CATALOG if c.name == "relu-killed-by-momentum").build(0)
    report = diagnose(setup.model, setup.X, setup.Y, loss=setup.loss, optimizer=setup.optimizer,
                      epochs=setup.epochs, batch_size=setup.batch_size, shuffle=setup.shuffle,
                      trials=False, progress=False)  # fmt: skip
    grads = np.asarray(report.probes["0.grad_norm"])
    assert np.any(grads == 0) and np.any(grads > 0)  # the units died during the run
    ax = report.plot("gradients").axes[0]
    drawn = next(x for x in ax.get_lines() if x.get_label() == "layer 0").get_ydata()
    np.testing.assert_array_equal(drawn, grads)
    assert ax.get_ylim()[0] == 0.0 <= min(drawn)


def test_a_loop_without_epochs_is_drawn_in_steps():
    """A watched loop whose epochs were not seen: its axis says steps, and means them."""
    probes = {"steps": np.array([0, 9, 19, 56]), "epoch_loss": np.linspace(2, 1, 57),
              "steps_per_epoch": 1, "output_std": np.ones(4),
              "0.grad_norm": np.ones(4)}  # fmt: skip
    report = Report([], {"epochs_known": False, "steps": 57, "epochs_run": 57}, {}, {}, probes)
    for name in ("loss", "output-spread", "gradients"):
        ax = report.plot(name).axes[-1]
        assert ax.get_xlabel() == "step", name
    line = report.plot("output-spread").axes[0].get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), [1, 10, 20, 57])
    loss = report.plot("loss").axes[0].get_lines()[0]
    np.testing.assert_array_equal(loss.get_xdata(), np.arange(1, 58))


def test_a_short_run_has_whole_epoch_ticks():
    """3 epochs of 40 steps: probes at fractions of an epoch, ticks at whole epochs only."""
    steps = np.arange(0, 120, 8)
    probes = {"steps": steps, "epoch_loss": np.array([2.0, 1.5, 1.2]), "steps_per_epoch": 40,
              "output_std": np.ones(len(steps)), "0.grad_norm": np.ones(len(steps))}  # fmt: skip
    report = Report([], {"epochs_run": 3, "steps": 120}, {}, {}, probes)
    for name in ("loss", "output-spread", "gradients"):
        fig = report.plot(name)
        fig.draw_without_rendering()
        ax = fig.axes[-1]
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(t == int(t) for t in ticks), (name, ticks)
        assert ax.get_xlabel() == "epoch"


def test_thinning_keeps_the_ends_the_extremes_and_the_gaps():
    rng = np.random.default_rng(3)
    y = rng.normal(size=10_000)
    y[4321] = 50.0  # a spike
    y[777] = -50.0  # a dip
    y[6000] = np.nan  # the run diverged for a moment
    keep = nplot.thin_indices(y, 240)
    # two a run, the ends, and the one NaN that breaks the line
    assert len(keep) <= 240 + 2 + 1 and keep[0] == 0 and keep[-1] == len(y) - 1
    assert {4321, 777, 6000} <= set(keep.tolist())
    assert np.all(np.diff(keep) > 0)
    # each run of the series keeps its own lowest and highest value
    edges = np.linspace(0, len(y), 121).astype(int)
    for lo, hi in itertools.pairwise(edges):
        run = y[lo:hi]
        kept = y[keep[(keep >= lo) & (keep < hi)]]
        assert np.nanmax(run) == np.nanmax(kept) and np.nanmin(run) == np.nanmin(kept)
    short = np.arange(5.0)
    np.testing.assert_array_equal(nplot.thin_indices(short, 240), np.arange(5))
    # a long run's loss plot draws at most that many points of it
    probes = {"steps": np.arange(3), "epoch_loss": y}
    line = Report([], {}, {}, {}, probes).plot("loss").axes[0].get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), keep + 1)
