"""Initialisers: shapes, seeding, and the variances of the Glorot and He formulas."""

from __future__ import annotations

import numpy as np
import pytest

from nndoctor.nn import INITIALIZERS, Dense, get_initializer

SHAPE = (400, 600)  # (out, in): fan_in 600, fan_out 400; 240 000 draws per variance estimate
FAN_IN, FAN_OUT = 600, 400

# Variance of each scheme for a (out, in) weight, from the papers (uniform(-a, a) has a^2 / 3).
EXPECTED_VARIANCE = {
    "xavier_uniform": (6.0 / (FAN_IN + FAN_OUT)) / 3.0,
    "xavier_normal": 2.0 / (FAN_IN + FAN_OUT),
    "he_uniform": (6.0 / FAN_IN) / 3.0,
    "he_normal": 2.0 / FAN_IN,
    "uniform": 0.05**2 / 3.0,
    "normal": 0.05**2,
}


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_every_initializer_gives_its_shape_and_is_seeded(name):
    init = get_initializer(name)
    a = init((3, 5), np.random.default_rng(11))
    b = init((3, 5), np.random.default_rng(11))
    assert a.shape == (3, 5) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert init((7,), np.random.default_rng(0)).shape == (7,)


@pytest.mark.parametrize("name", sorted(EXPECTED_VARIANCE))
def test_variance_matches_the_formula_and_a_fresh_seed_differs(name):
    init = get_initializer(name)
    W = init(SHAPE, np.random.default_rng(1))
    assert abs(W.mean()) < 0.01 * np.sqrt(EXPECTED_VARIANCE[name])
    assert W.var() == pytest.approx(EXPECTED_VARIANCE[name], rel=0.02)
    assert not np.array_equal(W[:2, :2], init((2, 2), np.random.default_rng(2)))


@pytest.mark.parametrize(
    "name, bound",
    [("xavier_uniform", np.sqrt(6.0 / (FAN_IN + FAN_OUT))), ("he_uniform", np.sqrt(6.0 / FAN_IN))],
)
def test_uniform_schemes_stay_inside_their_bound(name, bound):
    W = get_initializer(name)(SHAPE, np.random.default_rng(3))
    assert np.abs(W).max() <= bound
    assert np.abs(W).max() > 0.99 * bound  # the draw fills the interval


def test_aliases_are_the_same_functions():
    assert INITIALIZERS["glorot_uniform"] is INITIALIZERS["xavier_uniform"]
    assert INITIALIZERS["kaiming_normal"] is INITIALIZERS["he_normal"]


def test_constants_zeros_and_callables():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(get_initializer("zeros")((2, 3), rng), np.zeros((2, 3)))
    np.testing.assert_array_equal(get_initializer("ones")((2,), rng), np.ones(2))
    np.testing.assert_array_equal(get_initializer(0.25)((2, 2), rng), np.full((2, 2), 0.25))
    np.testing.assert_array_equal(get_initializer(3)((1,), rng), [3.0])

    def custom(shape, rng):
        return np.arange(np.prod(shape), dtype=float).reshape(shape)

    assert get_initializer(custom) is custom
    layer = Dense(2, 3, init=custom, bias_init=-1.0)
    np.testing.assert_array_equal(layer.params["W"], [[0, 1], [2, 3], [4, 5]])
    np.testing.assert_array_equal(layer.params["b"], [-1.0, -1.0, -1.0])


@pytest.mark.parametrize("bad", ["glorot", True, None, "Xavier_Uniform"])
def test_unknown_init_lists_the_choices(bad):
    with pytest.raises(
        ValueError,
        match=r"unknown init .*; choose one of: glorot_normal, .*, zeros, a number, or a callable",
    ):
        get_initializer(bad)


def test_dense_seed_int_is_reproducible_and_shared_generator_differs():
    a, b = Dense(8, 3, seed=5), Dense(8, 3, seed=5)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(a.params["W"], Dense(8, 3, seed=6).params["W"])
    rng = np.random.default_rng(0)
    first, second = Dense(8, 3, seed=rng), Dense(8, 3, seed=rng)
    assert not np.array_equal(first.params["W"], second.params["W"])
    rng = np.random.default_rng(0)
    bound = np.sqrt(6.0 / 11.0)
    np.testing.assert_array_equal(first.params["W"], rng.uniform(-bound, bound, (3, 8)))
    np.testing.assert_array_equal(second.params["W"], rng.uniform(-bound, bound, (3, 8)))


def test_dense_without_a_seed_is_refused():
    with pytest.raises(ValueError, match=r"a seed .* is required"):
        Dense(2, 2, seed=None)
