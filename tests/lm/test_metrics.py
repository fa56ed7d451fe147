"""pass@k (Chen et al. 2021) against brute-force enumeration of k-subsets, exactly; avg@k and its
band; difficulty levels. numpy only."""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdtheory.claims import bootstrap_band
from sdtheory.lm.metrics import difficulty_level, eval_summary, pass_at_k, pass_at_k_ks


def _enumerated(n: int, c: int, k: int) -> Fraction:
    """Fraction of the C(n, k) subsets of k samples (c correct ones) holding a correct one."""
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    hits = sum(any(samples[i] for i in s) for s in subsets)
    return Fraction(hits, len(subsets))


def test_pass_at_k_equals_enumeration_exactly():
    """Every (n, c, k) with n <= 9: the float is the correctly rounded enumerated fraction."""
    cases = 0
    for n in range(1, 10):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == float(_enumerated(n, c, k)), (n, c, k)
                cases += 1
    assert cases == sum((n + 1) * n for n in range(1, 10)) == 330


def _chen_product(n, c, k):
    """Chen et al.'s numerically stable form 1 - prod_{i=n-c+1}^{n} (1 - k/i) (their code)."""
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


@given(n=st.integers(1, 2000), data=st.data())
def test_pass_at_k_matches_the_product_form_at_large_n(n, data):
    c = data.draw(st.integers(0, n))
    k = data.draw(st.integers(1, n))
    exact = pass_at_k(n, c, k)
    assert 0.0 <= exact <= 1.0
    assert exact == pytest.approx(_chen_product(n, c, k), rel=1e-9, abs=1e-12)


def test_pass_at_k_special_values_and_errors():
    assert pass_at_k(16, 0, 8) == 0.0 and pass_at_k(16, 9, 8) == 1.0
    assert pass_at_k(16, 5, 1) == 5 / 16
    assert pass_at_k(200, 1, 100) == 0.5  # one correct of 200, half drawn
    with pytest.raises(ValueError, match="k must be <= n"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="c must be <= n"):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError, match="n must be an integer"):
        pass_at_k(2.5, 1, 1)


def test_eval_summary_avg_band_and_pass_at_k():
    correct, n = [0, 1, 4, 2, 4], 4
    s = eval_summary(correct, n)
    rates = np.array(correct) / n
    assert s["accuracy"] == pytest.approx(rates.mean())
    # the 95% percentile bootstrap band over the 5 problems (claims.bootstrap_band, seed 0)
    band = bootstrap_band(rates, seed=0)
    assert (s["accuracy_lo"], s["accuracy_hi"]) == (band.lo, band.hi)
    assert 0.0 <= s["accuracy_lo"] < s["accuracy"] < s["accuracy_hi"] <= 1.0
    near_zero = eval_summary([0, 0, 0, 0, 0, 0, 0, 1], 4)  # a t band would reach below 0
    assert near_zero["accuracy_lo"] == 0.0 and near_zero["accuracy_hi"] > 0.0
    assert s["pass_at_1"] == pytest.approx(s["accuracy"])  # pass@1 = avg@n
    assert s["pass_at_4"] == pytest.approx(4 / 5)  # any correct among all n
    want2 = np.mean([float(_enumerated(n, c, 2)) for c in correct])
    assert s["pass_at_2"] == pytest.approx(want2, rel=1e-15)
    assert pass_at_k_ks(4) == [1, 2, 4] and set(s) >= {"pass_at_1", "pass_at_2", "pass_at_4"}
    one = eval_summary([3], 4)
    assert math.isnan(one["accuracy_lo"]) and one["accuracy"] == 0.75
    with pytest.raises(ValueError, match="correct"):
        eval_summary([5], 4)


def test_difficulty_levels_from_reasoning_gym_metadata():
    rg = {
        "num_terms": 3,
        "num_digits": 1,
        "difficulty": {"num_terms": (2, 4), "num_digits": (1, 2)},
    }
    assert difficulty_level(rg) == "num_digits=1, num_terms=3"
    assert difficulty_level({"difficulty": 2}) == "2"
    assert difficulty_level({"difficulty": {"unknown": (1, 2)}}) is None
    assert difficulty_level({"id": "x"}) is None
