"""Plots of a report: every line, bar and cell drawn is the report's own number, checked
against an independent computation; a plot without data is left out, never drawn empty."""

from __future__ import annotations

import numpy as np
import pytest

from nndoctor import diagnose
from nndoctor.doctor import Report
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
    fig.draw_without_rendering()
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box, frame = legend.get_window_extent(), ax.get_window_extent()
        assert box.x0 >= frame.x1 or box.y1 <= frame.y0 or box.y0 >= frame.y1, ax.get_title()


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
