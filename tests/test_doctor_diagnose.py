"""diagnose and the Doctor callback on engine training; numbers checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from _rows import distinct_rows
from nndoctor import Doctor, diagnose
from nndoctor.nn import MSE, SGD, SSE, Dense, ReLU, Sequential, Sigmoid, Tanh, train


def _seed_data() -> np.ndarray:
    return np.random.default_rng(42).random((100, 8, 8)).transpose(0, 2, 1).reshape(800, 8)


def _linear_problem(n: int = 40):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(n, 2))
    Y = X @ np.array([[1.5], [-2.0]]) + 0.3
    return X, Y


def test_recorder_gradient_and_update_numbers_match_closed_form():
    X, Y = _linear_problem()
    model = Sequential(Dense(2, 1, seed=5))
    W0, b0 = model[0].params["W"].copy(), model[0].params["b"].copy()
    doctor = Doctor()
    train(model, X, Y, loss=MSE(), optimizer=SGD(lr=0.05), epochs=200, callbacks=[doctor])
    layer = doctor.probes.layers[0]
    # MSE over n rows, one output: dL/dW = 2/n (X W^T + b - Y)^T X
    g = 2 / len(X) * (X @ W0.T + b0 - Y).T @ X
    assert layer.grad_norm[0] == pytest.approx(np.linalg.norm(g), rel=1e-12)
    assert layer.update_ratio[0] == pytest.approx(0.05 * np.linalg.norm(g) / np.linalg.norm(W0))
    assert doctor.probes.probe_every == 2 and len(doctor.probes.steps) == 100
    assert np.array_equal(layer.W_init, W0)
    report = doctor.report()
    assert report.findings == []  # a linear model on a linear target: nothing to say


def test_recorder_dead_units_and_saturation_from_known_weights():
    X, Y = _linear_problem()
    relu = Sequential(Dense(2, 3, seed=1), ReLU(), Dense(3, 1, seed=2))
    relu[0].params["b"][...] = [-100.0, 0.0, 0.0]  # unit 0 is below 0 for every input
    doctor = Doctor()
    train(relu, X, Y, loss=MSE(), optimizer=SGD(lr=0.01), epochs=20, callbacks=[doctor])
    assert doctor.probes.layers[0].dead_units.tolist() == [True, False, False]
    tanh = Sequential(Dense(2, 4, seed=1), Tanh(), Dense(4, 1, seed=2))
    tanh[0].params["W"] *= 20
    z = X @ tanh[0].params["W"].T + tanh[0].params["b"]  # (n, 4) before any update
    doctor = Doctor()
    train(tanh, X, Y, loss=MSE(), optimizer=SGD(lr=1e-9), epochs=5, callbacks=[doctor])
    assert doctor.probes.layers[0].frac_saturated[0] == np.mean(np.abs(z) > 5)


def test_doctor_report_before_training_is_an_error():
    with pytest.raises(RuntimeError, match="callbacks"):
        Doctor().report()


def test_diagnose_bad_input_fails_before_training():
    X, Y = _linear_problem()
    model = Sequential(Dense(2, 1))
    kw = {"loss": MSE(), "optimizer": SGD(lr=0.1)}
    with pytest.raises(ValueError, match="3 features"):
        diagnose(model, np.ones((40, 3)), Y, epochs=5, **kw)
    bad = X.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN at index \(7, 1\)"):
        diagnose(model, bad, Y, epochs=5, **kw)
    for epochs in (0, -1, 2.5):
        with pytest.raises(ValueError, match="epochs must be a positive integer"):
            diagnose(model, X, Y, epochs=epochs, **kw)
    with pytest.raises(ValueError, match="samples"):
        diagnose(model, X, Y[:30], epochs=5, **kw)
    with pytest.raises(TypeError, match="optimizer"):
        diagnose(model, X, Y, loss=MSE(), optimizer="sgd", epochs=5)


def test_diagnose_turns_divergence_into_a_finding_and_leaves_the_model_alone():
    X, Y = _linear_problem()
    model = Sequential(Dense(2, 8, seed=0), Tanh(), Dense(8, 1, seed=1))
    before = {k: v.copy() for k, v in model.named_parameters().items()}
    opt = SGD(lr=3.0, momentum=0.9)
    history = train(model.copy(), X, Y, loss=MSE(), optimizer=opt.with_lr(3.0), epochs=300)
    assert history.diverged is not None
    report = diagnose(model, X, Y, loss=MSE(), optimizer=opt, epochs=300)
    assert report["diverged"].evidence["step"] == history.diverged["step"]
    assert report.causes[0].code == "lr-too-high"
    assert report.causes[0].confirmed is True
    assert all(np.array_equal(before[k], v) for k, v in model.named_parameters().items())
    assert opt.state == {}


def test_seed_case_report_order_and_numbers():
    X = _seed_data()
    model = Sequential(Dense(8, 3, init="zeros"), Sigmoid(), Dense(3, 8, init="zeros"), Sigmoid())
    report = diagnose(model, X, loss=SSE(), optimizer=SGD(lr=0.05), epochs=1000, batch_size=8)
    codes = report.codes
    order = ["symmetric-units", "loss-at-lower-rank-bound", "incompressible-data"]
    assert [codes.index(c) for c in order] == sorted(codes.index(c) for c in order)
    first = report.causes[0]
    # the same training by hand: how many distinct hidden units it ends with (1, or 2 where
    # the CPU's rounding splits one off late in the run)
    twin = model.copy()
    train(twin, X, loss=SSE(), optimizer=SGD(lr=0.05), epochs=1000, batch_size=8)
    W1 = twin[0].params["W"]
    distinct = distinct_rows(W1)
    assert first.code == "symmetric-units" and first.evidence["effective_units"] == distinct
    assert first.evidence["constant_init"] and first.confirmed is True
    assert first.trial["change"] == "re-initialise with xavier_uniform"
    # the rank-k bounds from the SVD of the centred rows: per 8-row batch, 0.5 * residual
    s = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
    bound = [0.5 * np.sum(s[k:] ** 2) / 100 for k in range(9)]
    assert first.trial["loss_before"] == pytest.approx(bound[distinct], rel=0.01)
    assert first.trial["loss_after"] == pytest.approx(bound[3], rel=0.015)
    low = report["loss-at-lower-rank-bound"].evidence
    assert low[f"rank_{distinct}_bound"] == pytest.approx(bound[distinct], rel=1e-9)
    assert low["rank_3_bound"] == pytest.approx(bound[3], rel=1e-9)
    assert report["incompressible-data"].evidence["rank_3_bound"] == pytest.approx(bound[3])
    assert not [f for f in report.findings if f.severity == "error" and f.kind == "symptom"]
    text = str(report)
    assert text.index("symmetric-units") < text.index("loss-at-lower-rank-bound")
