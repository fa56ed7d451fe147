"""Statistical tests for the sampled KL estimators (seeded; tolerances from the estimator SE)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdtheory import core
from sdtheory.testing import strategies as sst

N = 200_000  # samples per check


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scale", [0.2, 1.0])
def test_k1_and_k3_unbiased(seed, scale):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(40)
    lq = core.log_softmax(z)
    lp = core.log_softmax(z + scale * rng.standard_normal(40))
    x = rng.choice(40, size=N, p=np.exp(lq))
    exact = core.kl(lq, lp)
    for est in (core.k1, core.k3):
        v = est(lq[x], lp[x])
        se = v.std(ddof=1) / np.sqrt(N)
        assert abs(v.mean() - exact) <= 5 * se, (est.__name__, v.mean(), exact, se)


def test_k2_is_biased_at_large_divergence():
    rng = np.random.default_rng(3)
    z = rng.standard_normal(40)
    lq = core.log_softmax(z)
    lp = core.log_softmax(z + 2.0 * rng.standard_normal(40))
    x = rng.choice(40, size=N, p=np.exp(lq))
    v = core.k2(lq[x], lp[x])
    se = v.std(ddof=1) / np.sqrt(N)
    assert abs(v.mean() - core.kl(lq, lp)) > 10 * se


@settings(max_examples=40)
@given(
    st.lists(sst.finite_floats(-50, 0), min_size=1, max_size=20),
    st.lists(sst.finite_floats(-50, 0), min_size=1, max_size=20),
)
def test_k2_k3_nonnegative(a, b):
    n = min(len(a), len(b))
    lq, lp = np.array(a[:n]), np.array(b[:n])
    assert np.all(core.k3(lq, lp) >= 0)
    assert np.all(core.k2(lq, lp) >= 0)
    np.testing.assert_allclose(core.k1(lq, lp), lq - lp)


def test_k3_exact_for_tiny_ratio():
    r = np.array([1e-10, -1e-10])
    np.testing.assert_allclose(core.k3(np.zeros(2), r), r**2 / 2, rtol=1e-6)


def test_estimator_rejects_impossible_sample():
    with pytest.raises(ValueError, match="log_q_samples contains -inf"):
        core.k1(np.array([-np.inf]), np.array([0.0]))
