"""Losses: values against the formulas written out by hand, gradients against central
differences, PyTorch's BCE clamps, and the target checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _fd import max_rel_err, numeric_gradient
from nndoctor.nn import BCE, MSE, SSE, CrossEntropy, get_loss

TOL = 1e-7


def _pair(seed: int, shape: tuple[int, int] = (4, 3)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.95, size=shape), rng.uniform(0.0, 1.0, size=shape)


def test_sse_is_half_the_sum_of_squares():
    P, T = _pair(0)
    by_hand = 0.5 * sum((p - t) ** 2 for p, t in zip(P.ravel(), T.ravel(), strict=True))
    assert math.isclose(SSE()(P, T), by_hand, rel_tol=1e-14)
    assert SSE().reduction == "sum"


@pytest.mark.parametrize("reduction, divisor", [("mean", 12), ("sum", 1)])
def test_mse_value_over_all_elements(reduction, divisor):
    P, T = _pair(1)
    by_hand = sum((p - t) ** 2 for p, t in zip(P.ravel(), T.ravel(), strict=True)) / divisor
    assert math.isclose(MSE(reduction)(P, T), by_hand, rel_tol=1e-14)


@pytest.mark.parametrize("reduction, divisor", [("mean", 12), ("sum", 1)])
def test_bce_value_matches_the_formula(reduction, divisor):
    P, T = _pair(2)
    by_hand = -sum(
        t * math.log(p) + (1 - t) * math.log(1 - p)
        for p, t in zip(P.ravel(), T.ravel(), strict=True)
    )
    assert math.isclose(BCE(reduction)(P, T), by_hand / divisor, rel_tol=1e-13)


@pytest.mark.parametrize(
    "loss",
    [SSE(), MSE(), MSE("sum"), BCE(), BCE("sum"), CrossEntropy(), CrossEntropy("sum")],
    ids=repr,
)
def test_gradient_matches_finite_differences(loss):
    P, T = _pair(3)
    if isinstance(loss, CrossEntropy):
        P = np.random.default_rng(3).normal(0.0, 2.0, size=(4, 3))  # logits
        T = np.array([2.0, 0.0, 1.0, 2.0])
    analytic = loss.gradient(P, T)
    numeric = numeric_gradient(lambda: loss(P, T), P)
    assert analytic.shape == P.shape
    assert max_rel_err(analytic, numeric) < TOL


def test_bce_clamps_log_at_minus_100_like_pytorch():
    P = np.array([[0.0, 1.0, 0.0, 1.0]])
    T = np.array([[1.0, 0.0, 0.0, 1.0]])
    # Two terms are log(0) clamped to -100; the other two are exactly 0.
    assert BCE("sum")(P, T) == 200.0
    assert BCE()(P, T) == 50.0


def test_bce_gradient_denominator_clamped_at_1e_12():
    P = np.array([[0.0, 1.0, 1e-20, 0.5]])
    T = np.array([[1.0, 0.0, 1.0, 1.0]])
    # (p - t) / max(p (1 - p), 1e-12): the first three hit the clamp, the last is -0.5 / 0.25.
    expected = np.array([[-1e12, 1e12, (1e-20 - 1.0) / 1e-12, -2.0]])
    np.testing.assert_allclose(BCE("sum").gradient(P, T), expected, rtol=1e-15)
    np.testing.assert_allclose(BCE().gradient(P, T), expected / 4, rtol=1e-15)


def test_cross_entropy_is_minus_log_softmax_of_the_label():
    Z = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0], [800.0, 805.0, 790.0]])
    y = np.array([0, 2, 1])
    by_hand = []
    for z, label in zip(Z, y, strict=True):
        shift = max(z)  # exp(800) overflows; the shifted form is the same number
        by_hand.append(-(z[label] - shift - math.log(sum(math.exp(v - shift) for v in z))))
    assert math.isclose(CrossEntropy("sum")(Z, y), sum(by_hand), rel_tol=1e-14)
    assert math.isclose(CrossEntropy()(Z, y), sum(by_hand) / 3, rel_tol=1e-14)
    assert math.isclose(by_hand[1], math.log(3.0), rel_tol=1e-15)


def test_cross_entropy_gradient_is_softmax_minus_one_hot():
    Z = np.array([[1.0, 2.0, 3.0]])
    s = [math.exp(v) / (math.exp(1.0) + math.exp(2.0) + math.exp(3.0)) for v in (1.0, 2.0, 3.0)]
    np.testing.assert_allclose(
        CrossEntropy("sum").gradient(Z, np.array([1])), [[s[0], s[1] - 1.0, s[2]]], rtol=1e-14
    )


def test_cross_entropy_label_checks():
    loss = CrossEntropy()
    np.testing.assert_array_equal(loss.check_targets([[0], [2], [1]], 3), [0.0, 2.0, 1.0])
    np.testing.assert_array_equal(loss.check_targets(np.array([1.0, 0.0]), 2), [1.0, 0.0])
    with pytest.raises(
        ValueError, match=r"label Y\[1\] = .*3.* out of range.*labels must be in 0\.\.2"
    ):
        loss.check_targets(np.array([0, 3, 1]), 3)
    with pytest.raises(ValueError, match=r"label Y\[0\] = .*-1.* out of range"):
        loss.check_targets(np.array([-1, 0]), 3)
    with pytest.raises(ValueError, match=r"whole numbers; Y\[2\] = .*0.5"):
        loss.check_targets(np.array([1.0, 0.0, 0.5]), 3)
    with pytest.raises(
        ValueError, match=r"labels of shape \(n,\), got Y of shape \(2, 3\).*argmax"
    ):
        loss.check_targets(np.eye(3)[:2], 3)
    with pytest.raises(TypeError, match="must be integers, got dtype <U1"):
        loss.check_targets(np.array(["a", "b"]), 3)
    with pytest.raises(ValueError, match=r"NaN at index \(1,\)"):
        loss.check_targets(np.array([0.0, np.nan]), 3)


def test_vector_targets_for_a_one_output_model_are_refused_with_the_fix():
    T = np.zeros(5)
    with pytest.raises(
        ValueError, match=r"Y has shape \(5,\) but the model outputs shape \(n, 1\)"
    ) as info:
        MSE().check_targets(T, 1)
    assert "Y.reshape(-1, 1)" in str(info.value) and "(n, n)" in str(info.value)
    np.testing.assert_array_equal(MSE().check_targets(T.reshape(-1, 1), 1), T.reshape(-1, 1))


def test_target_width_must_match_the_model_outputs():
    with pytest.raises(ValueError, match="Y has 2 columns but the model has 3 outputs"):
        SSE().check_targets(np.zeros((4, 2)), 3)
    with pytest.raises(ValueError, match=r"Y must be 2-D, got shape \(4,\)"):
        SSE().check_targets(np.zeros(4), 3)


def test_get_loss_by_name_and_bad_reduction():
    assert isinstance(get_loss("SSE"), SSE)
    assert isinstance(get_loss("cross_entropy"), CrossEntropy)
    loss = BCE("sum")
    assert get_loss(loss) is loss
    with pytest.raises(ValueError, match="unknown loss 'hinge'; choose one of: sse, mse, bce"):
        get_loss("hinge")
    with pytest.raises(ValueError, match="reduction must be one of"):
        MSE("none")


def test_labels_one_to_c_get_the_subtract_one_hint():
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2\); subtract 1 from Y"):
        CrossEntropy().check_targets(np.array([1, 2, 3, 1]), 3)
