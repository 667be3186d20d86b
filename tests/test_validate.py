"""Shared input checks: each bad input gets one error that names what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from nndoctor._validate import as_float_array, as_rng, check_finite, check_positive_int, check_rows


def test_numeric_input_becomes_float64_without_copying_float64():
    a = np.arange(6.0).reshape(2, 3)
    assert as_float_array(a, "X") is a
    ints = as_float_array([[1, 2], [3, 4]], "X")
    assert ints.dtype == np.float64
    np.testing.assert_array_equal(ints, [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(as_float_array(np.array([[True, False]]), "X"), [[1.0, 0.0]])
    assert as_float_array([1, 2], "y", ndim=(1, 2)).shape == (2,)
    assert as_float_array(np.zeros((2, 2, 2)), "T", ndim=None).shape == (2, 2, 2)


@pytest.mark.parametrize(
    "value, message",
    [
        ([["a", "b"]], "X must be numeric, got dtype <U1"),
        (np.array([[1, None]], dtype=object), "X must be numeric, got dtype object"),
        (np.array([[1 + 2j]]), "X must be real, got dtype complex128"),
        ([[1.0, 2.0], [3.0]], "X must be a numeric array"),
    ],
)
def test_non_numeric_input_is_a_type_error(value, message):
    with pytest.raises(TypeError, match=message):
        as_float_array(value, "X")


def test_wrong_dimensions_name_the_shape():
    with pytest.raises(ValueError, match=r"X must be 2-D, got shape \(3,\)"):
        as_float_array(np.zeros(3), "X")
    with pytest.raises(ValueError, match=r"Y must be 1-D or 2-D, got shape \(1, 1, 1\)"):
        as_float_array(np.zeros((1, 1, 1)), "Y", ndim=(1, 2))


def test_the_first_non_finite_value_is_named_with_its_position():
    a = np.zeros((3, 4))
    a[1, 2] = np.inf
    a[2, 0] = np.nan
    with pytest.raises(
        ValueError, match=r"X contains 2 non-finite value\(s\); first is inf at index \(1, 2\)"
    ):
        as_float_array(a, "X")
    with pytest.raises(ValueError, match=r"first is NaN at index \(0,\)"):
        check_finite(np.array([np.nan, 1.0]), "y")
    check_finite(np.zeros((0, 3)), "empty")  # nothing to complain about


def test_as_rng_is_seeded_and_passes_generators_through():
    assert as_rng(3).random() == np.random.default_rng(3).random()
    rng = np.random.default_rng(0)
    assert as_rng(rng) is rng
    with pytest.raises(ValueError, match=r"a seed .* or numpy\.random\.Generator is required"):
        as_rng(None)


def test_check_rows_names_both_counts():
    check_rows(np.zeros((3, 2)), np.zeros((3,)))
    with pytest.raises(ValueError, match=r"inputs has 3 samples \(rows\) but targets has 2"):
        check_rows(np.zeros((3, 2)), np.zeros((2, 1)), "inputs", "targets")


def test_check_positive_int():
    assert check_positive_int(np.int64(4), "epochs") == 4
    assert type(check_positive_int(np.int64(4), "epochs")) is int
    for bad in (0, -2, 1.0, True, "3", None):
        with pytest.raises(ValueError, match="epochs must be a positive integer, got"):
            check_positive_int(bad, "epochs")
