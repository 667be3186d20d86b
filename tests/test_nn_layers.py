"""Layers: every backward rule against central differences of its own forward, plus the
closed forms (sigmoid limits, the softmax Jacobian, leaky slopes) written out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _fd import max_rel_err, numeric_gradient
from nndoctor.nn import (
    Dense,
    Identity,
    LeakyReLU,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    get_activation,
    mlp,
)

TOL = 1e-7


def _away_from_kinks(X: np.ndarray) -> np.ndarray:
    # A difference step of 1e-5 must not cross 0, where ReLU has no derivative.
    return np.where(np.abs(X) < 0.1, np.copysign(0.1, X), X)


@pytest.mark.parametrize(
    "layer", [Sigmoid(), Tanh(), ReLU(), LeakyReLU(0.2), Identity(), Softmax()], ids=repr
)
def test_activation_backward_matches_finite_differences(layer):
    rng = np.random.default_rng(1)
    X = _away_from_kinks(rng.normal(0.0, 1.5, size=(4, 5)))
    G = rng.normal(size=(4, 5))  # an arbitrary upstream gradient dL/dY
    layer.forward(X)
    analytic = layer.backward(G)
    numeric = numeric_gradient(lambda: layer.forward(X), X, G)
    assert analytic.shape == X.shape
    assert max_rel_err(analytic, numeric) < TOL


def test_dense_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    layer = Dense(5, 3, init="normal", bias_init="normal", seed=rng)
    X = rng.normal(size=(4, 5))
    G = rng.normal(size=(4, 3))
    layer.forward(X)
    dX = layer.backward(G)
    checks = {"X": (dX, X), "W": (layer.grads["W"], layer.params["W"])}
    checks["b"] = (layer.grads["b"], layer.params["b"])
    for name, (analytic, array) in checks.items():
        numeric = numeric_gradient(lambda: layer.forward(X), array, G)
        assert max_rel_err(analytic, numeric) < TOL, name


def test_dense_forward_is_x_times_w_transposed_plus_b():
    rng = np.random.default_rng(3)
    layer = Dense(3, 2, init="normal", bias_init="normal", seed=rng)
    X = rng.normal(size=(4, 3))
    W, b = layer.params["W"], layer.params["b"]
    expected = [
        [sum(X[n, i] * W[o, i] for i in range(3)) + b[o] for o in range(2)] for n in range(4)
    ]
    np.testing.assert_allclose(layer.forward(X), expected, rtol=1e-14)


def test_dense_backward_overwrites_gradients_in_the_same_arrays():
    rng = np.random.default_rng(4)
    model = Sequential(Dense(3, 2, seed=rng))
    grads = model.named_gradients()
    X = rng.normal(size=(5, 3))
    G = rng.normal(size=(5, 2))
    for _ in range(2):  # a second backward must replace, not accumulate
        model.forward(X)
        model.backward(G)
    np.testing.assert_allclose(grads["0.W"], G.T @ X, rtol=1e-14)
    np.testing.assert_allclose(grads["0.b"], G.sum(axis=0), rtol=1e-14)


def test_dense_rejects_wrong_input_width_naming_the_expected_shape():
    with pytest.raises(
        ValueError, match=r"Dense\(4, 2\) expects input of shape \(n, 4\), got \(3, 5\)"
    ):
        Dense(4, 2).forward(np.zeros((3, 5)))


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "3"])
def test_dense_rejects_non_positive_integer_widths(bad):
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        Dense(bad, 2)


def test_sigmoid_is_exact_at_the_limits_without_warnings():
    X = np.array([[-1e4, -800.0, -40.0, 0.0, 40.0, 800.0, 1e4]])
    layer = Sigmoid()
    # errstate turns overflow, division and invalid operations into errors; pytest already
    # turns RuntimeWarnings into errors.
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        Y = layer.forward(X)
        dX = layer.backward(np.ones_like(X))
    assert Y[0, 0] == 0.0 and Y[0, 1] == 0.0
    assert Y[0, 3] == 0.5
    assert Y[0, -1] == 1.0 and Y[0, -2] == 1.0 and Y[0, 4] == 1.0
    assert math.isclose(Y[0, 2], math.exp(-40.0) / (1.0 + math.exp(-40.0)), rel_tol=1e-15)
    assert np.all(np.isfinite(dX)) and dX[0, 0] == 0.0 and dX[0, -1] == 0.0


def test_sigmoid_matches_the_textbook_formula_where_it_is_safe():
    X = np.linspace(-700.0, 700.0, 2001).reshape(1, -1)  # exp(700) < float64 max
    expected = 1.0 / (1.0 + np.exp(-X))
    np.testing.assert_allclose(Sigmoid().forward(X), expected, rtol=4e-16, atol=0)


def test_relu_has_zero_derivative_at_zero_like_pytorch():
    layer = ReLU()
    X = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(layer.forward(X), [[0.0, 0.0, 3.0]])
    np.testing.assert_array_equal(layer.backward(np.full((1, 3), 5.0)), [[0.0, 0.0, 5.0]])


def test_leaky_relu_slope_forward_and_backward():
    layer = LeakyReLU(negative_slope=0.2)
    X = np.array([[-3.0, -0.5, 0.0, 2.0]])
    np.testing.assert_allclose(layer.forward(X), [[-0.6, -0.1, 0.0, 2.0]], rtol=1e-15)
    np.testing.assert_allclose(layer.backward(np.full((1, 4), 10.0)), [[2.0, 2.0, 2.0, 10.0]])
    assert LeakyReLU().negative_slope == 0.01  # PyTorch's default
    assert layer.config() == {"negative_slope": 0.2}


def test_softmax_rows_match_hand_computation_and_survive_large_logits():
    X = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 999.0]])
    Y = Softmax().forward(X)
    first = [math.exp(v) / sum(math.exp(u) for u in (1.0, 2.0, 3.0)) for v in (1.0, 2.0, 3.0)]
    e = math.exp(-1.0)
    second = [1.0 / (2.0 + e), 1.0 / (2.0 + e), e / (2.0 + e)]
    np.testing.assert_allclose(Y, [first, second], rtol=1e-15)


def test_softmax_backward_is_the_jacobian_transpose_times_dy():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3, 4))
    G = rng.normal(size=(3, 4))
    layer = Softmax()
    S = layer.forward(X)
    dX = layer.backward(G)
    for n in range(3):
        J = np.diag(S[n]) - np.outer(S[n], S[n])  # dS_j / dx_k
        np.testing.assert_allclose(dX[n], J.T @ G[n], rtol=1e-12, atol=1e-15)


def test_sequential_chain_rule_matches_finite_differences_for_every_tensor():
    rng = np.random.default_rng(6)
    model = Sequential(
        Dense(4, 5, init="normal", bias_init="normal", seed=rng),
        Tanh(),
        Dense(5, 3, init="xavier_normal", bias_init="normal", seed=rng),
        Sigmoid(),
        Dense(3, 2, init="he_uniform", bias_init="normal", seed=rng),
        Softmax(),
    )
    X = rng.normal(size=(6, 4))
    G = rng.normal(size=(6, 2))
    model.forward(X)
    dX = model.backward(G)
    tensors = {"X": (dX, X)}
    grads = model.named_gradients()
    tensors.update({k: (grads[k], p) for k, p in model.named_parameters().items()})
    assert sorted(tensors) == ["0.W", "0.b", "2.W", "2.b", "4.W", "4.b", "X"]
    for name, (analytic, array) in tensors.items():
        numeric = numeric_gradient(lambda: model.forward(X), array, G)
        assert max_rel_err(analytic, numeric) < TOL, name


def test_named_parameters_are_the_layers_own_arrays():
    rng = np.random.default_rng(7)
    model = Sequential(Dense(2, 3, seed=rng), ReLU(), Dense(3, 1, seed=rng))
    params = model.named_parameters()
    assert list(params) == ["0.W", "0.b", "2.W", "2.b"]
    assert params["2.W"].shape == (1, 3) and params["0.b"].shape == (3,)
    params["0.b"] += 1.0
    np.testing.assert_array_equal(model[0].params["b"], np.ones(3))
    assert model.n_parameters == 2 * 3 + 3 + 3 + 1
    assert (model.in_features, model.out_features) == (2, 1)


def test_sequential_rejects_mismatched_widths_and_non_layers():
    with pytest.raises(ValueError, match="layer 0 outputs 3 features but layer 2 expects 4"):
        Sequential(Dense(2, 3), ReLU(), Dense(4, 1))
    with pytest.raises(
        TypeError, match=r"layer 1 is builtin_function_or_method, not an nndoctor\.nn layer"
    ):
        Sequential(Dense(2, 3), len)


def test_set_parameters_checks_names_and_shapes():
    model = Sequential(Dense(2, 3))
    model.set_parameters({"0.b": [1.0, 2.0, 3.0]})
    np.testing.assert_array_equal(model[0].params["b"], [1.0, 2.0, 3.0])
    with pytest.raises(KeyError, match=r"unknown parameter\(s\) \['1.W'\]"):
        model.set_parameters({"1.W": np.zeros((3, 2))})
    with pytest.raises(ValueError, match=r"parameter 0.W has shape \(3, 2\), got \(2, 3\)"):
        model.set_parameters({"0.W": np.zeros((2, 3))})


def test_copy_is_independent():
    model = Sequential(Dense(2, 2, seed=1))
    twin = model.copy()
    twin[0].params["W"][...] = 0.0
    assert np.all(model[0].params["W"] != 0.0)


def test_get_activation_by_name_and_unknown_name_lists_choices():
    assert isinstance(get_activation("ReLU"), ReLU)
    assert isinstance(get_activation("linear"), Identity)
    layer = Tanh()
    assert get_activation(layer) is layer
    with pytest.raises(
        ValueError, match="unknown activation 'swish'; choose one of: sigmoid, tanh"
    ):
        get_activation("swish")


def test_mlp_builds_the_layers_it_names_from_one_generator():
    model = mlp([4, 6, 5, 2], activation="tanh", output_activation="softmax", seed=7)
    kinds = [type(layer) for layer in model]
    assert kinds == [Dense, Tanh, Dense, Tanh, Dense, Softmax]
    assert [(d.in_features, d.out_features) for d in model if isinstance(d, Dense)] == [
        (4, 6),
        (6, 5),
        (5, 2),
    ]
    # The same draws by hand: one Generator, Xavier bounds sqrt(6 / (in + out)); zero biases
    # draw nothing.
    rng = np.random.default_rng(7)
    for dense, (n_in, n_out) in zip(model[::2], [(4, 6), (6, 5), (5, 2)], strict=True):
        bound = math.sqrt(6.0 / (n_in + n_out))
        np.testing.assert_array_equal(dense.params["W"], rng.uniform(-bound, bound, (n_out, n_in)))
        np.testing.assert_array_equal(dense.params["b"], np.zeros(n_out))


def test_mlp_identity_output_adds_no_layer_and_needs_two_sizes():
    model = mlp([3, 2])
    assert [type(layer) for layer in model] == [Dense]
    with pytest.raises(ValueError, match="at least an input and an output size"):
        mlp([3])
