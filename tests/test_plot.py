"""Plots of a report: the curve and the bounds drawn are the report's own numbers."""

from __future__ import annotations

import numpy as np
import pytest

from nndoctor import diagnose
from nndoctor.nn import SGD, SSE, Dense, Sequential, Sigmoid

pytest.importorskip("matplotlib", reason="the plot extra: pip install 'nndoctor[plot]'")

from nndoctor.plot import plot_report


@pytest.fixture(scope="module")
def report():
    X = np.random.default_rng(42).random((10, 8, 8)).transpose(0, 2, 1).reshape(-1, 8)
    model = Sequential(Dense(8, 3, init="zeros"), Sigmoid(), Dense(3, 8, init="zeros"), Sigmoid())
    return diagnose(
        model, X, loss=SSE(), optimizer=SGD(lr=0.05), epochs=30, batch_size=8, trials=False
    )


def test_plot_draws_the_loss_curve_and_the_bounds(report, tmp_path):
    path = tmp_path / "report.png"
    fig = plot_report(report, path, max_rank=3)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.png"]  # no temp file left
    ax_loss, ax_grad = fig.axes
    curve, *bounds = ax_loss.get_lines()
    np.testing.assert_array_equal(curve.get_ydata(), report.probes["epoch_loss"])
    drawn = sorted(line.get_ydata()[0] for line in bounds)
    # the SVD of the centred data gives the rank-k bounds independently of nndoctor.bounds
    X = np.random.default_rng(42).random((10, 8, 8)).transpose(0, 2, 1).reshape(-1, 8)
    s2 = np.linalg.svd(X - X.mean(axis=0), compute_uv=False) ** 2
    per_batch = 0.5 * np.array([s2[k:].sum() for k in range(4)]) / (len(X) / 8)
    np.testing.assert_allclose(sorted(per_batch), drawn, rtol=1e-10)
    assert len(ax_grad.get_lines()) == 2  # one gradient curve per Dense layer
    assert "symmetric-units" in fig.get_suptitle()


def test_plot_refuses_a_report_without_a_recorded_run(report):
    from nndoctor.doctor import Report

    with pytest.raises(ValueError, match="no recorded training"):
        plot_report(Report(report.findings, report.summary, report.bounds, {}, {}))
