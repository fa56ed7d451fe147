"""The core's argument checks: the positive-integer helper every module uses."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from sdtheory.core._checks import check_positive_int


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(2), 4.0, np.float32(5.0), 10**30])
def test_positive_int_accepts_integer_values_and_returns_an_int(value):
    out = check_positive_int(value, "n")
    assert type(out) is int
    assert out == value


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        2.5,
        Fraction(1, 2),
        True,
        False,
        np.bool_(True),
        float("nan"),
        float("inf"),
        "3",
        None,
        [3],
        np.array([3]),
    ],
)
def test_positive_int_rejects_with_the_name_and_the_value(value):
    with pytest.raises(ValueError) as e:
        check_positive_int(value, "n_samples")
    assert str(e.value) == f"n_samples must be an integer >= 1, got {value!r}"


def test_positive_int_minimum():
    assert check_positive_int(0, "generations", minimum=0) == 0
    assert check_positive_int(3, "k", minimum=3) == 3
    with pytest.raises(ValueError, match=r"k must be an integer >= 3, got 2"):
        check_positive_int(2, "k", minimum=3)
    with pytest.raises(ValueError, match=r"n must be an integer >= 0, got -1"):
        check_positive_int(-1, "n", minimum=0)
