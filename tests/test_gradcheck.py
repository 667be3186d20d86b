"""The gradient checker, judged against closed-form gradients and known bugs."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nndoctor.gradcheck import check_function_gradients, check_gradients
from nndoctor.nn import (
    BCE,
    MSE,
    SSE,
    CrossEntropy,
    Dense,
    Identity,
    LeakyReLU,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# The seed's autoencoder on one 8x8 matrix X whose columns are the samples (see shared/seed.md).
def seed_loss(p, X):
    H = sigmoid(p["W1"] @ X + p["b1"][:, None])  # (3, 8)
    Y = sigmoid(p["W2"] @ H + p["b2"][:, None])  # (8, 8)
    return 0.5 * np.sum((Y - X) ** 2)


def seed_gradients(p, X, use_W2=True):
    """The answer's matrix gradients; ``use_W2=False`` is the asker's encoder bug."""
    H = sigmoid(p["W1"] @ X + p["b1"][:, None])
    Y = sigmoid(p["W2"] @ H + p["b2"][:, None])
    d2 = (Y - X) * Y * (1 - Y)  # (8, 8)
    back = p["W2"].T @ d2 if use_W2 else d2[:3]  # the bug: W2 never enters the encoder's delta
    d1 = back * H * (1 - H)  # (3, 8)
    return {"W1": d1 @ X.T, "b1": d1.sum(axis=1), "W2": d2 @ H.T, "b2": d2.sum(axis=1)}


def seed_params(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.normal(0, 0.5, (3, 8)),
        "b1": rng.normal(0, 0.5, 3),
        "W2": rng.normal(0, 0.5, (8, 3)),
        "b2": rng.normal(0, 0.5, 8),
    }


@pytest.fixture
def seed_case():
    X = np.random.default_rng(42).random((8, 8))
    return X, seed_params()


def test_seed_matrix_gradients_pass(seed_case):
    X, params = seed_case
    result = check_function_gradients(
        lambda p: seed_loss(p, X), lambda p: seed_gradients(p, X), params
    )
    assert result.passed and result.failed == []
    assert list(result.parameters) == ["W1", "b1", "W2", "b2"]
    for check in result.parameters.values():
        assert check.passed and check.n_failed == 0
        assert check.max_abs_error < 1e-8


def test_seed_asker_bug_is_caught_and_located(seed_case):
    X, params = seed_case
    result = check_function_gradients(
        lambda p: seed_loss(p, X), lambda p: seed_gradients(p, X, use_W2=False), params
    )
    assert not result.passed
    assert result.failed == ["W1", "b1"]  # the decoder's gradients are right
    assert result.parameters["W2"].passed and result.parameters["b2"].passed
    wrong = seed_gradients(params, X, use_W2=False)
    right = seed_gradients(params, X)
    for name in ("W1", "b1"):
        check = result.parameters[name]
        assert check.n_failed > 0
        assert check.max_abs_error == pytest.approx(
            np.abs(wrong[name] - right[name]).max(), rel=1e-6
        )
        worst = check.worst_index
        assert check.analytic == wrong[name][worst]
        assert check.numeric == pytest.approx(right[name][worst], rel=1e-6)
        # the reported element really is wrong, not finite-difference noise
        assert abs(wrong[name][worst] - right[name][worst]) > 1e-3 * np.abs(right[name]).max()
    text = result.summary()
    assert "FAILED for 2 of 4" in text
    w1_line = next(line for line in text.splitlines() if line.strip().startswith("W1"))
    assert "FAIL" in w1_line and str(result.parameters["W1"].worst_index) in w1_line
    assert str(result) == text


def test_one_wrong_element_is_found_exactly():
    rng = np.random.default_rng(3)
    params = {"A": rng.normal(size=(4, 5)), "c": rng.normal(size=3), "s": np.array(0.7)}

    def loss_fn(p):  # sum sin(A) + 0.5 |c|^2 * s^2
        return np.sin(p["A"]).sum() + 0.5 * (p["c"] ** 2).sum() * p["s"] ** 2

    def true_grad(p):
        return {
            "A": np.cos(p["A"]),
            "c": p["c"] * p["s"] ** 2,
            "s": np.array((p["c"] ** 2).sum() * p["s"]),
        }

    def bad_grad(p):
        g = true_grad(p)
        g["A"][2, 3] += 1e-4
        return g

    good = check_function_gradients(loss_fn, true_grad, params)
    assert good.passed
    assert good.parameters["s"].shape == () and good.parameters["s"].worst_index == ()

    bad = check_function_gradients(loss_fn, bad_grad, params)
    check = bad.parameters["A"]
    assert bad.failed == ["A"] and check.n_failed == 1
    assert check.worst_index == (2, 3)
    assert check.max_abs_error == pytest.approx(1e-4, rel=1e-4)
    assert check.numeric == pytest.approx(np.cos(params["A"][2, 3]), rel=1e-8)
    assert check.analytic == np.cos(params["A"][2, 3]) + 1e-4


def test_inputs_are_never_modified(seed_case):
    X, params = seed_case
    before = {k: v.copy() for k, v in params.items()}

    def grad_fn(p):
        g = seed_gradients(p, X)
        p["W1"] += 1.0  # a careless user function must not reach the caller's arrays
        return g

    check_function_gradients(lambda p: seed_loss(p, X), grad_fn, params)
    assert all(np.array_equal(before[k], params[k]) for k in params)


@pytest.mark.parametrize(
    ("grads", "error", "message"),
    [
        (lambda g: {k: v for k, v in g.items() if k != "b2"}, ValueError, r"missing: \['b2'\]"),
        (lambda g: {**g, "W3": np.zeros(2)}, ValueError, r"unexpected: \['W3'\]"),
        (
            lambda g: {**g, "W1": g["W1"].T},
            ValueError,
            r"gradient 'W1' has shape \(8, 3\) but parameter 'W1' has \(3, 8\)",
        ),
        (
            lambda g: {**g, "b1": np.array([0.0, np.nan, 0.0])},
            ValueError,
            r"gradient 'b1'.*NaN at index \(1,\)",
        ),
        (lambda g: [g["W1"]], TypeError, "must return a dict"),
    ],
)
def test_bad_gradients_get_clear_errors(seed_case, grads, error, message):
    X, params = seed_case
    with pytest.raises(error, match=message):
        check_function_gradients(
            lambda p: seed_loss(p, X), lambda p: grads(seed_gradients(p, X)), params
        )


def test_bad_params_and_losses_get_clear_errors(seed_case):
    X, params = seed_case
    grad_fn = lambda p: seed_gradients(p, X)  # noqa: E731
    with pytest.raises(ValueError, match=r"params\['W2'\].*inf at index \(4, 1\)"):
        check_function_gradients(
            lambda p: 0.0,
            grad_fn,
            {**params, "W2": np.where(np.arange(24).reshape(8, 3) == 13, np.inf, 0.0)},
        )
    with pytest.raises(TypeError, match="non-empty dict"):
        check_function_gradients(lambda p: 0.0, grad_fn, [params["W1"]])
    with pytest.raises(TypeError, match=r"real scalar, got ndarray with shape \(8, 8\)"):
        check_function_gradients(lambda p: X, grad_fn, params)
    with pytest.raises(ValueError, match="the loss is nan at params"):
        check_function_gradients(lambda p: np.nan, grad_fn, params)
    with pytest.raises(ValueError, match="eps must be a positive"):
        check_function_gradients(lambda p: seed_loss(p, X), grad_fn, params, eps=0.0)


def seed_model(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(
        Dense(8, 3, bias_init="normal", seed=rng),
        Sigmoid(),
        Dense(3, 8, bias_init="normal", seed=rng),
        Sigmoid(),
    )


def test_engine_check_on_the_seed_model_leaves_it_untouched():
    model = seed_model()
    X = np.random.default_rng(42).random((8, 8))  # the seed's layout: one sample per row
    model.forward(X[:2])
    params = {k: v.copy() for k, v in model.named_parameters().items()}
    grads = {k: v.copy() for k, v in model.named_gradients().items()}

    result = check_gradients(model, X, X, SSE(), autograd=False)
    assert result.passed and result.autograd is None
    assert list(result.parameters) == ["0.W", "0.b", "2.W", "2.b"]
    assert result.loss == pytest.approx(0.5 * np.sum((model.forward(X) - X) ** 2), rel=1e-14)
    assert all(np.array_equal(params[k], v) for k, v in model.named_parameters().items())
    assert all(np.array_equal(grads[k], v) for k, v in model.named_gradients().items())


class BrokenSigmoid(Sigmoid):
    """A sigmoid whose backward forgets the (1 - s) factor."""

    def backward(self, dY):
        return dY * self._Y


def test_engine_check_catches_a_broken_backward_before_it():
    rng = np.random.default_rng(1)
    model = Sequential(Dense(4, 5, seed=rng), BrokenSigmoid(), Dense(5, 2, seed=rng))
    X, Y = rng.normal(size=(6, 4)), rng.normal(size=(6, 2))
    result = check_gradients(model, X, Y, MSE())
    assert result.failed == ["0.W", "0.b"]  # behind the broken layer; the last Dense is right
    assert result.autograd is None  # a subclass is not a layer the twin may assume it knows
    assert any(
        "autograd comparison skipped" in note and "BrokenSigmoid" in note for note in result.notes
    )


def engine_gradients(model, X, Y, loss):
    model.zero_grad()
    model.backward(loss.gradient(model.forward(X), Y))
    return {k: v.copy() for k, v in model.named_gradients().items()}


def test_autograd_comparison_flags_an_engine_bug(torch, monkeypatch):
    rng = np.random.default_rng(2)
    model = Sequential(Dense(3, 4, seed=rng), Tanh(), Dense(4, 2, seed=rng), Sigmoid())
    X, Y = rng.normal(size=(5, 3)), rng.random((5, 2))
    healthy = check_gradients(model, X, Y, BCE(), autograd=True)
    assert healthy.passed and set(healthy.autograd) == {"0.W", "0.b", "2.W", "2.b"}
    true = engine_gradients(model, X, Y, BCE())  # right: they match torch in test_torch_twin

    monkeypatch.setattr(Tanh, "backward", lambda self, dY: dY * (1.0 - self._Y))
    wrong = engine_gradients(model, X, Y, BCE())
    broken = check_gradients(model, X, Y, BCE(), autograd=True)
    assert broken.failed == ["0.W", "0.b"]
    for name in ("0.W", "0.b"):
        ag, fd = broken.autograd[name], broken.parameters[name]
        assert not ag.passed and not fd.passed
        assert ag.engine == wrong[name][ag.worst_index]
        assert ag.autograd == pytest.approx(true[name][ag.worst_index], rel=1e-12)
        assert fd.numeric == pytest.approx(true[name][fd.worst_index], rel=1e-6)
    assert broken.autograd["2.W"].passed and broken.autograd["2.b"].passed
    assert "Engine against torch autograd (float64 twin): FAILED for 2 of 4" in str(broken)


def test_relu_kinks_are_detected_and_left_out():
    # unit 0's pre-activation for sample 0 is exactly 0: 0.5 * 1 - 0.25 * 2 + 0
    first = Dense(2, 2, init="zeros")
    first.params["W"][...] = [[0.5, -0.25], [0.3, 0.2]]
    first.params["b"][...] = [0.0, 0.1]
    second = Dense(2, 1, init="ones")
    model = Sequential(first, ReLU(), second)
    X = np.array([[1.0, 2.0], [1.0, -1.0], [-2.0, 0.5]])  # other pre-activations far from 0
    Y = np.array([[1.0], [0.0], [2.0]])
    result = check_gradients(model, X, Y, SSE(), autograd=False)
    # only unit 0's incoming weights and bias move that pre-activation: 2 + 1 elements
    kinks = {name: c.n_kinks for name, c in result.parameters.items()}
    assert kinks == {"0.W": 2, "0.b": 1, "2.W": 0, "2.b": 0}
    assert result.passed
    assert any(
        note.startswith("0.W: at 2 element(s), e.g. (0, 0)") and "kink" in note
        for note in result.notes
    )


def test_zero_init_relu_network_notes_its_kinks():
    model = Sequential(Dense(3, 4, init="zeros"), LeakyReLU(0.1), Dense(4, 2, init="zeros"))
    X = np.random.default_rng(0).normal(size=(5, 3))
    result = check_gradients(model, X, np.ones((5, 2)), MSE(), autograd=False)
    assert result.parameters["0.W"].n_kinks == 12 and result.parameters["0.b"].n_kinks == 4
    assert "kink" in result.summary()


def test_bad_model_input_gets_clear_errors():
    model = Sequential(Dense(3, 2), Identity())
    X = np.zeros((4, 3))
    with pytest.raises(ValueError, match="X has 2 features"):
        check_gradients(model, np.zeros((4, 2)), np.zeros((4, 2)), MSE())
    with pytest.raises(
        ValueError,
        match=r"X contains 1 non-finite value\(s\); first is NaN at "
        r"index \(2, 1\)",
    ):
        check_gradients(
            model, np.where(np.arange(12).reshape(4, 3) == 7, np.nan, 0.0), np.zeros((4, 2)), MSE()
        )
    with pytest.raises(ValueError, match="Y has 3 columns"):
        check_gradients(model, X, np.zeros((4, 3)), MSE())
    with pytest.raises(ValueError, match="X has 4 samples"):
        check_gradients(model, X, np.zeros((5, 2)), MSE())
    with pytest.raises(ValueError, match=r"label Y\[1\] = \S*2\S* is out of range"):
        check_gradients(model, X, np.array([0, 2, 1, 0]), CrossEntropy())
    with pytest.raises(ValueError, match="no parameters to check"):
        check_gradients(Sequential(Identity()), X, X, MSE())
    with pytest.raises(ValueError, match="rtol must be a positive"):
        check_gradients(model, X, np.zeros((4, 2)), MSE(), rtol=-1.0)


def test_autograd_true_without_torch_raises_and_none_notes_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    model = seed_model()
    X = np.random.default_rng(0).random((3, 8))
    result = check_gradients(model, X, X, SSE())
    assert result.passed and result.autograd is None
    assert any("pip install 'nndoctor[torch]'" in note for note in result.notes)
    with pytest.raises(ImportError, match=r"nndoctor\[torch\]"):
        check_gradients(model, X, X, SSE(), autograd=True)


SMOOTH = (Sigmoid, Tanh, Identity, Softmax)


@settings(max_examples=30, deadline=None)
@given(
    n_dense=st.integers(1, 3),
    width=st.integers(1, 8),
    acts=st.lists(st.sampled_from(SMOOTH), min_size=3, max_size=3),
    loss=st.sampled_from(["sse", "mse", "bce", "cross_entropy"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_defaults_pass_on_correct_smooth_networks(n_dense, width, acts, loss, seed):
    """No false alarms: the engine's gradients (checked against torch elsewhere) pass."""
    rng = np.random.default_rng(seed)
    layers = []
    n_in = 5
    for i in range(n_dense):
        layers += [
            Dense(n_in, width, init="xavier_normal", bias_init="normal", seed=rng),
            Sigmoid() if loss == "bce" and i == n_dense - 1 else acts[i](),
        ]
        n_in = width
    X = rng.normal(size=(6, 5))
    Y = rng.integers(0, width, 6) if loss == "cross_entropy" else rng.random((6, width))
    result = check_gradients(Sequential(*layers), X, Y, loss, autograd=False)
    assert result.passed, result.summary()


def test_ill_conditioned_loss_is_judged_against_its_measured_noise():
    # one output near 1 - 1e-5 under BCE: log(1 - p) loses about 5 digits, so the central
    # difference carries far more than the round-off of a well-conditioned loss
    rng = np.random.default_rng(3)
    first = Dense(5, 1, init="xavier_normal", seed=rng)
    last = Dense(1, 1, init="ones")
    model = Sequential(first, Identity(), last, Sigmoid())
    X = rng.normal(size=(6, 5))
    X[0] = first.params["W"][0] * (11.5 / np.sum(first.params["W"][0] ** 2))  # logit 11.5
    Y = rng.random((6, 1))
    assert 1e-6 < 1.0 - model.forward(X)[0, 0] < 1e-4

    result = check_gradients(model, X, Y, BCE(), autograd=False)
    plain_atol = 16 * np.finfo(float).eps * abs(result.loss) / result.eps
    worst_error = max(c.max_abs_error for c in result.parameters.values())
    assert worst_error > plain_atol  # a fixed round-off tolerance would call this a failure
    assert result.passed and result.fd_noise > plain_atol
    assert "measured difference noise" in result.summary()

    model.layers[3] = BrokenSigmoid()
    assert check_gradients(model, X, Y, BCE(), autograd=False).failed == [
        "0.W",
        "0.b",
        "2.W",
        "2.b",
    ]


def test_saturated_bce_outputs_are_noted():
    model = Sequential(Dense(2, 1, init="ones"), Sigmoid())
    X = np.array([[20.0, 20.0], [0.1, -0.3]])  # sigmoid(40) rounds to 1.0
    result = check_gradients(model, X, np.array([[0.5], [0.5]]), BCE(), autograd=False)
    assert any(note.startswith("BCE: 1 prediction(s), e.g. at (0, 0)") for note in result.notes)
