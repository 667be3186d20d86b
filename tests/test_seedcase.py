"""The seed case: the asker's loops, the bug, the answer's matrices and the replayed experiment.

Reference numbers come from code written here: the seed's formulas in closed form, central
differences, torch autograd, a hand-written per-sample SGD loop and an eigendecomposition.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nndoctor.gradcheck import check_function_gradients
from nndoctor.seedcase import (
    answer_forward,
    answer_gradients,
    answer_loss,
    asker_forward,
    asker_gradients,
    asker_loss,
    format_seed_case,
    run_seed_case,
    seed_data,
    seed_model,
    seed_parameters,
)

XAVIER_BOUND = np.sqrt(6.0 / (8 + 3))  # Glorot uniform for a 3x8 or 8x3 weight


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _reference_forward(p, X):
    H = _sigmoid(p["W1"] @ X + p["b1"][:, None])
    return H, _sigmoid(p["W2"] @ H + p["b2"][:, None])


def _reference_loss(p, X):
    return 0.5 * np.sum((_reference_forward(p, X)[1] - X) ** 2)


def _central_differences(p, X, eps=1e-6):
    grads = {}
    for name, arr in p.items():
        g = np.empty_like(arr)
        for index in np.ndindex(arr.shape):
            hi = {k: v.copy() for k, v in p.items()}
            lo = {k: v.copy() for k, v in p.items()}
            hi[name][index] += eps
            lo[name][index] -= eps
            g[index] = (_reference_loss(hi, X) - _reference_loss(lo, X)) / (2 * eps)
        grads[name] = g
    return grads


def _random_params(rng, scale=1.0):
    return {
        "W1": rng.normal(0, scale, (3, 8)),
        "b1": rng.normal(0, scale, 3),
        "W2": rng.normal(0, scale, (8, 3)),
        "b2": rng.normal(0, scale, 8),
    }


@pytest.fixture
def case():
    rng = np.random.default_rng(7)
    return _random_params(rng), rng.random((8, 8))


def _rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)))


def test_loop_and_matrix_forward_match_closed_form_and_engine(case):
    p, X = case
    H_ref, Y_ref = _reference_forward(p, X)
    for forward in (asker_forward, answer_forward):
        H, Y = forward(p, X)
        assert H.shape == (3, 8) and Y.shape == (8, 8)
        np.testing.assert_allclose(H, H_ref, rtol=1e-14, atol=0)
        np.testing.assert_allclose(Y, Y_ref, rtol=1e-14, atol=0)
    # the engine takes the columns as rows: same network, transposed data
    model = seed_model("zeros")
    model.set_parameters({"0.W": p["W1"], "0.b": p["b1"], "2.W": p["W2"], "2.b": p["b2"]})
    np.testing.assert_allclose(model.forward(X.T).T, Y_ref, rtol=1e-14, atol=0)
    ref = 0.5 * np.sum((Y_ref - X) ** 2)
    assert asker_loss(p, X) == pytest.approx(ref, rel=1e-14)
    assert answer_loss(p, X) == pytest.approx(ref, rel=1e-14)


def test_answer_gradient_is_right_and_asker_encoder_gradient_is_wrong(case):
    p, X = case
    numeric = _central_differences(p, X)
    right, wrong = answer_gradients(p, X), asker_gradients(p, X)
    for name in p:
        assert right[name].shape == p[name].shape
        np.testing.assert_allclose(right[name], numeric[name], rtol=1e-6, atol=1e-9)
    for name in ("W2", "b2"):  # the decoder part of the asker's code is right
        np.testing.assert_allclose(wrong[name], numeric[name], rtol=1e-6, atol=1e-9)
    for name in ("W1", "b1"):
        assert _rel(wrong[name], numeric[name]) > 0.1


def test_gradients_against_autograd(torch, case):
    p, X = case
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in p.items()}
    tX = torch.tensor(X, dtype=torch.float64)
    H = torch.sigmoid(tp["W1"] @ tX + tp["b1"][:, None])
    Y = torch.sigmoid(tp["W2"] @ H + tp["b2"][:, None])
    (0.5 * ((Y - tX) ** 2).sum()).backward()
    right, wrong = answer_gradients(p, X), asker_gradients(p, X)
    for name in p:
        auto = tp[name].grad.numpy()
        np.testing.assert_allclose(right[name], auto, rtol=1e-12, atol=1e-15)
        if name in ("W2", "b2"):
            np.testing.assert_allclose(wrong[name], auto, rtol=1e-12, atol=1e-15)
        else:
            assert _rel(wrong[name], auto) > 0.1


def test_asker_gradient_moves_hidden_units_in_lockstep_at_zero_init():
    X = np.random.default_rng(3).random((8, 8))
    p = seed_parameters(seed_model("zeros"))
    wrong = asker_gradients(p, X)
    # with W2 = 0 the true encoder gradient is exactly 0: no error reaches the hidden layer
    assert np.all(_central_differences(p, X)["W1"] == pytest.approx(0.0, abs=1e-9))
    assert np.all(answer_gradients(p, X)["W1"] == 0.0)
    assert np.abs(wrong["W1"]).max() > 1e-3
    assert np.all(wrong["W1"] == wrong["W1"][0])


def test_check_function_gradients_names_the_wrong_parameter_and_element(case):
    p, X = case
    result = check_function_gradients(
        lambda q: asker_loss(q, X), lambda q: asker_gradients(q, X), p
    )
    assert not result.passed
    assert result.failed == ["W1", "b1"]
    numeric = _central_differences(p, X)
    wrong = asker_gradients(p, X)
    for name in ("W1", "b1"):
        check = result.parameters[name]
        assert check.analytic == wrong[name][check.worst_index]
        assert check.numeric == pytest.approx(numeric[name][check.worst_index], rel=1e-6)
        assert f"{name}" in result.summary()
    right = check_function_gradients(
        lambda q: answer_loss(q, X), lambda q: answer_gradients(q, X), p
    )
    assert right.passed


def test_seed_data_layout():
    data, X = seed_data(3, seed=5)
    np.testing.assert_array_equal(data, np.random.default_rng(5).random((3, 8, 8)))
    assert X.shape == (24, 8)
    for s in range(3):
        for j in range(8):
            np.testing.assert_array_equal(X[8 * s + j], data[s][:, j])


def _handwritten_sgd(data, p, lr, epochs):
    """The seed's training loop: one step per sample matrix, gradients in closed form."""
    p = {k: v.copy() for k, v in p.items()}
    losses = []
    for _ in range(epochs):
        total = 0.0
        for X in data:
            H = _sigmoid(p["W1"] @ X + p["b1"][:, None])
            Y = _sigmoid(p["W2"] @ H + p["b2"][:, None])
            total += 0.5 * np.sum((Y - X) ** 2)
            d2 = (Y - X) * Y * (1 - Y)
            d1 = (p["W2"].T @ d2) * H * (1 - H)
            g = {"W1": d1 @ X.T, "b1": d1.sum(1), "W2": d2 @ H.T, "b2": d2.sum(1)}
            for k in p:
                p[k] -= lr * g[k]
        losses.append(total / len(data))
    return np.array(losses), p


@pytest.fixture(scope="module")
def small():
    return run_seed_case(n_samples=4, epochs=3, seed=11, lr=0.3, diagnose=False, progress=False)


def test_small_run_follows_handwritten_sgd(small):
    data = np.random.default_rng(11).random((4, 8, 8))
    rng = np.random.default_rng(0)  # both layers from one Generator, biases zero
    xavier = {
        "W1": rng.uniform(-XAVIER_BOUND, XAVIER_BOUND, (3, 8)),
        "b1": np.zeros(3),
        "W2": rng.uniform(-XAVIER_BOUND, XAVIER_BOUND, (8, 3)),
        "b2": np.zeros(8),
    }
    zeros = {k: np.zeros_like(v) for k, v in xavier.items()}
    assert [r.init for r in small.runs] == ["zeros", "xavier_uniform"]
    for init, start in (("zeros", zeros), ("xavier_uniform", xavier)):
        losses, end = _handwritten_sgd(data, start, lr=0.3, epochs=3)
        run = small.run(init)
        np.testing.assert_allclose(run.loss, losses, rtol=1e-12)
        assert run.final_loss == losses[-1]
        spread = np.max(np.abs(end["W1"] - end["W1"][0]))
        assert run.w1_row_spread == pytest.approx(spread, rel=1e-9, abs=1e-15)
        assert run.w1_rows_identical == (init == "zeros")
        assert run.wall_time > 0
    assert small.data_mean == pytest.approx(data.mean(), rel=1e-14)
    assert small.data_var == pytest.approx(data.var(), rel=1e-12)


def test_small_run_bounds_are_the_principal_components(small):
    data = np.random.default_rng(11).random((4, 8, 8))
    X = np.concatenate([m.T for m in data])  # every column of every matrix, one per row
    Xc = X - X.mean(axis=0)
    eig = np.sort(np.linalg.eigvalsh(Xc.T @ Xc))[::-1]
    for k in (0, 1, 3):
        # SSE summed over all rows, averaged over the 4 batches (matrices)
        assert small.code.at_rank(k) == pytest.approx(0.5 * eig[k:].sum() / 4, rel=1e-10)


def test_small_run_gradient_checks_and_timing(small):
    assert small.engine_check.passed
    assert small.answer_check.passed
    assert small.asker_check.failed == ["W1", "b1"]
    t = small.timing
    assert t.asker_us > 0 and t.engine_us > 0
    assert t.ratio == pytest.approx(t.asker_us / t.engine_us)


def test_small_run_text_and_json(small):
    text = format_seed_case(small)
    for run in small.runs:
        assert f"final loss {run.final_loss:.4f}" in text
    assert "WRONG for W1, b1" in text
    assert f"best rank-1 code {small.code.at_rank(1):.4f}" in text
    d = json.loads(json.dumps(small.to_dict()))
    assert d["runs"][0]["final_loss"] == small.runs[0].final_loss
    assert d["runs"][1]["w1_rows_identical"] is False
    assert d["gradient_checks"]["asker"]["failed"] == ["W1", "b1"]
    assert d["bounds"]["rank_3"] == small.code.at_rank(3)
    assert d["report"] is None


def test_acceptance_full_budget():
    """1000 epochs on 100 samples: zero init stalls at the rank-1 code, Xavier reaches rank 3."""
    result = run_seed_case(diagnose=False, progress=False)
    zero, xavier = result.run("zeros"), result.run("xavier_uniform")
    # Zero init: the units stay one (2.271, rank 1) unless rounding splits one off late in
    # the run, which some CPUs' BLAS kernels do; either way the loss sits at the bound of the
    # units that are distinct (rank-k bounds of this data: 2.271, 1.896, 1.539).
    bounds = {1: 2.271, 2: 1.896}
    assert zero.distinct_units in bounds
    assert zero.final_loss == pytest.approx(bounds[zero.distinct_units], rel=0.01)
    assert xavier.final_loss == pytest.approx(1.539, rel=0.015)
    assert not xavier.w1_rows_identical


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"inits": ("zeros", "bogus")}, ValueError, "bogus"),
        ({"inits": ()}, ValueError, "at least one"),
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"epochs": 2.5}, ValueError, "epochs"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"lr": float("nan")}, ValueError, "lr"),
        ({"seed": "1"}, TypeError, "seed"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        run_seed_case(**{"n_samples": 1, "epochs": 1, "diagnose": False, **kwargs})


def test_doctor_report_names_the_identical_units():
    # From zero init the rows of W1 stay equal (checked by hand above): the doctor must say so.
    result = run_seed_case(n_samples=3, epochs=5, progress=False)
    assert result.report is not None
    assert result.report.causes[0].code == "symmetric-units"
    assert "The doctor on the zero-init setup" in format_seed_case(result)
    d = json.loads(json.dumps(result.to_dict()))
    assert d["report"]["findings"][0]["code"] == "symmetric-units"


def test_the_story_in_the_askers_terms(small):
    from nndoctor.seedcase import population_bound, story

    # the population's rank-k bound per 8x8 sample of uniform data: (8 - k) / 3
    assert population_bound(0) == pytest.approx(8 / 3, rel=1e-15)
    assert population_bound(1) == pytest.approx(7 / 3, rel=1e-15)
    assert population_bound(3) == pytest.approx(5 / 3, rel=1e-15)
    parts = story(small)
    headings = [heading for heading, _ in parts]
    assert headings[:4] == [
        "1. Why the outputs sat at 0.5",
        "2. The wrong hand-written gradient",
        "3. The zero init",
        "4. The bound",
    ]
    text = {heading: " ".join(paragraphs) for heading, paragraphs in parts}
    data = np.random.default_rng(11).random((4, 8, 8))
    mean = text["1. Why the outputs sat at 0.5"]
    assert f"mean {data.mean():.3f}" in mean and "sigmoid(0) = 0.5" in mean
    assert f"{small.code.loss_at_rank[0]:.4f} per 8x8 sample (the constant baseline)" in mean
    zero = small.run("zeros")
    assert f"vary across inputs by {zero.output_spread:.3f}" in mean
    assert f"varies by {np.sqrt(data.var()):.3f}" in mean
    assert "WRONG for W1, b1" in text["2. The wrong hand-written gradient"]
    bound = text["4. The bound"]
    assert "2.33 = (8 - 1) / 3 = 2.3333" in bound
    assert f"the bound of this sample of 4 matrices is {small.code.at_rank(1):.4f}" in bound
