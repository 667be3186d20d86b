"""Optimisers: a few steps on a tiny quadratic, the expected numbers worked out by hand
(PyTorch's documented update rules), plus the state and copy helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nndoctor.nn import SGD, Adam


def _run(opt, p0: float, steps: int, curvature: float = 1.0) -> list[float]:
    """Minimise 0.5 * curvature * p^2 (gradient curvature * p); the parameter after each step."""
    params = {"p": np.array([p0])}
    grads = {"p": np.zeros(1)}
    path = []
    for _ in range(steps):
        grads["p"][...] = curvature * params["p"]  # refilled in place, as the layers do
        opt.step(params, grads)
        path.append(float(params["p"][0]))
    return path


def test_plain_sgd_is_geometric_decay():
    # p <- p - lr * a p = (1 - lr a) p
    np.testing.assert_allclose(_run(SGD(lr=0.1), 1.0, 5, curvature=2.0), 0.8 ** np.arange(1, 6))


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        # v1 = g1 = 1, p1 = 0.9; v2 = 0.9 * 1 + 0.9 = 1.8, p2 = 0.72; v3 = 1.62 + 0.72, p3 = 0.486
        ({"momentum": 0.9}, [0.9, 0.72, 0.486]),
        # no dampening on the first step: v1 = 1, p1 = 0.9; v2 = 0.9 + 0.5 * 0.9 = 1.35, p2 = 0.765
        ({"momentum": 0.9, "dampening": 0.5}, [0.9, 0.765]),
        # g' = g + mu v: p1 = 1 - 0.1 * 1.9 = 0.81; v2 = 0.9 + 0.81 = 1.71, g' = 0.81 + 1.539
        ({"momentum": 0.9, "nesterov": True}, [0.81, 0.5751]),
        # g = p + 0.1 p: p_t = (1 - 0.1 * 1.1)^t
        ({"weight_decay": 0.1}, [0.89, 0.89**2, 0.89**3]),
    ],
)
def test_sgd_variants_by_hand(kwargs, expected):
    np.testing.assert_allclose(
        _run(SGD(lr=0.1, **kwargs), 1.0, len(expected)), expected, rtol=1e-14
    )


def test_momentum_buffer_does_not_alias_the_gradient_array():
    opt = SGD(lr=0.1, momentum=0.9)
    params, grads = {"p": np.array([1.0])}, {"p": np.array([1.0])}
    opt.step(params, grads)  # v = 1, p = 0.9
    grads["p"][...] = 0.0  # the layer overwrites its gradient in place
    opt.step(params, grads)  # v = 0.9, p = 0.81
    assert params["p"][0] == pytest.approx(0.81, rel=1e-15)


def test_adam_first_step_moves_by_lr_whatever_the_gradient_scale():
    # m_hat = g and v_hat = g^2 after one step, so the move is lr * g / (|g| + eps).
    for g in (1e-3, 1.0, 1e3):
        opt = Adam(lr=0.01)
        params = {"p": np.array([5.0, 5.0])}
        opt.step(params, {"p": np.array([g, -g])})
        np.testing.assert_allclose(
            params["p"], [5.0 - 0.01 * g / (g + 1e-8), 5.0 + 0.01 * g / (g + 1e-8)]
        )


def test_adam_puts_eps_after_the_bias_corrected_square_root():
    # With eps = 1 the placement shows: sqrt(v_hat) + eps = 1 + 1, so the move is lr / 2.
    opt = Adam(lr=0.1, eps=1.0)
    params = {"p": np.array([1.0])}
    opt.step(params, {"p": np.array([1.0])})
    assert params["p"][0] == pytest.approx(0.95, rel=1e-15)


def test_adam_three_steps_by_hand():
    lr, b1, b2, eps, wd = 0.1, 0.9, 0.999, 1e-8, 0.01
    p, m, v = 1.0, 0.0, 0.0
    expected = []
    for t in (1, 2, 3):
        g = 2.0 * p + wd * p  # curvature 2, L2 weight decay
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p -= lr * (m / (1 - b1**t)) / (math.sqrt(v / (1 - b2**t)) + eps)
        expected.append(p)
    got = _run(Adam(lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd), 1.0, 3, curvature=2.0)
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_step_updates_the_callers_arrays_in_place():
    p = np.array([1.0, 2.0])
    SGD(lr=0.5).step({"p": p}, {"p": np.array([2.0, 2.0])})
    np.testing.assert_array_equal(p, [0.0, 1.0])


@pytest.mark.parametrize(
    "opt",
    [SGD(lr=0.3, momentum=0.5, dampening=0.1, weight_decay=1e-3), Adam(lr=0.02, betas=(0.8, 0.99))],
    ids=repr,
)
def test_get_params_round_trip_and_with_lr(opt):
    copy = type(opt)(**opt.get_params())
    assert copy.get_params() == opt.get_params()
    faster = opt.with_lr(0.5)
    assert type(faster) is type(opt) and faster.lr == 0.5
    assert {k: v for k, v in faster.get_params().items() if k != "lr"} == {
        k: v for k, v in opt.get_params().items() if k != "lr"
    }
    assert opt.lr != 0.5
    assert repr(opt).startswith(type(opt).__name__ + "(lr=")


def test_with_lr_and_reset_start_without_state():
    opt = SGD(lr=0.1, momentum=0.9)
    _run(opt, 1.0, 3)
    assert opt.state and not opt.with_lr(0.2).state
    fresh = opt.fresh()
    assert fresh.state == {} and fresh.get_params() == opt.get_params()
    # the fresh copy's first step is plain SGD, while opt carries its momentum on
    assert _run(fresh, 1.0, 1) == pytest.approx([0.9], rel=1e-15)
    opt.reset()
    assert opt.state == {}
    # Without state the first step is plain SGD again: 1 - 0.1 * 1.
    assert _run(opt, 1.0, 1) == pytest.approx([0.9], rel=1e-15)

    adam = Adam(lr=0.1)
    _run(adam, 1.0, 3)
    adam.reset()
    assert _run(adam, 1.0, 1) == pytest.approx([1.0 - 0.1 / (1.0 + 1e-8)], rel=1e-15)


@pytest.mark.parametrize("lr", [-0.1, math.nan, math.inf, "0.1"])
def test_bad_learning_rate_is_refused(lr):
    with pytest.raises(ValueError, match="learning rate must be a finite number >= 0"):
        SGD(lr=lr)


def test_bad_hyperparameters_are_refused():
    with pytest.raises(ValueError, match="Nesterov momentum requires momentum > 0"):
        SGD(lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"Nesterov momentum requires .* dampening = 0"):
        SGD(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Adam betas must be two numbers in"):
        Adam(betas=(0.9, 1.0))
