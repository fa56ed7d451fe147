"""Capacity-limited students: M-projections onto log-linear families and the projected recursion.

Claims: meta.capacity-arithmetic-fixed-point (derived), meta.capacity-geometric-fixed-point
(simulation only).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdtheory.core import kl, log_softmax
from sdtheory.theory import meta


def _target(rng, k, alpha=0.5):
    return log_softmax(np.log(rng.gamma(alpha, size=k) + 1e-12))


@given(st.integers(0, 2**32 - 1), st.integers(3, 60), st.integers(1, 4))
@settings(max_examples=25)
def test_kl_minimisation_equals_moment_matching(seed, k, rank):
    rng = np.random.default_rng(seed)
    rank = min(rank, k - 1)
    low = meta.LowRankSoftmax.random(k, rank, rng)
    fam = meta.ExponentialFamily(low.statistics)
    lm = _target(rng, k)
    q_kl, q_mm = low.project(lm), fam.project(lm)
    np.testing.assert_allclose(q_kl, q_mm, rtol=0, atol=1e-7)
    # moment matching: E_q[T] = E_m[T]
    # fit stops at tol 1e-11 * (1 + max moment); rank-2 moments here are O(1)
    np.testing.assert_allclose(fam.moments(q_mm), fam.moments(lm), rtol=0, atol=1e-10)


@given(st.integers(0, 2**32 - 1), st.integers(3, 60))
@settings(max_examples=25)
def test_pythagorean_identity_certifies_the_projection(seed, k):
    # For an exponential family: KL(m||q') = KL(m||Pi m) + KL(Pi m||q') for every q' in it.
    rng = np.random.default_rng(seed)
    fam = meta.ExponentialFamily.discretized_gaussian(k)
    lm = _target(rng, k)
    pim = fam.project(lm)
    for _ in range(5):
        qp = fam.log_probs(rng.standard_normal(2) * 3)
        lhs = float(kl(lm, qp))
        rhs = float(kl(lm, pim) + kl(pim, qp))
        assert lhs == pytest.approx(rhs, rel=1e-9, abs=1e-11)
        assert float(kl(lm, pim)) <= lhs + 1e-12


def test_projection_of_a_member_is_itself():
    fam = meta.ExponentialFamily.discretized_gaussian(15)
    lq = fam.log_probs([0.7, -2.0])
    np.testing.assert_allclose(fam.project(lq), lq, atol=1e-12)
    np.testing.assert_allclose(fam.fit(lq), [0.7, -2.0], atol=1e-9)


@pytest.mark.claim("meta.capacity-arithmetic-fixed-point")
@pytest.mark.paper("flouro2026", "meta.capacity-arithmetic-fixed-point")
@pytest.mark.parametrize("lam", [0.1, 0.5])
def test_arithmetic_projected_recursion_contracts_moments_exactly(lam):
    # Pi depends on m only through E_m[T], which is affine in m; hence (derived)
    # mu(q_n) - mu(p0) = (1-lam)^n (mu(q_0) - mu(p0)) and the fixed point is Pi(p0).
    rng = np.random.default_rng(7)
    k = 40
    low = meta.LowRankSoftmax.random(k, 3, rng)
    lp0 = _target(rng, k)
    op = meta.AnchoredOperator(lp0, lam)
    qs = meta.projected_iterates(op, low, _target(rng, k), 12)
    mu = np.array([low.moments(q) for q in qs])
    mu0 = low.moments(lp0)
    want = (1 - lam) ** np.arange(13)[:, None] * (mu[0] - mu0)
    np.testing.assert_allclose(mu - mu0, want, rtol=0, atol=1e-9)
    q_star, it = meta.projected_fixed_point(op, low)
    np.testing.assert_allclose(q_star, low.project(lp0), atol=1e-8)
    assert it > 1


@pytest.mark.claim("meta.capacity-geometric-fixed-point")
@pytest.mark.paper("flouro2026", "meta.capacity-geometric-fixed-point")
def test_geometric_projected_recursion_has_a_different_fixed_point():
    rng = np.random.default_rng(8)
    k = 40
    fam = meta.ExponentialFamily.discretized_gaussian(k)
    lp0 = _target(rng, k, alpha=0.3)  # far from unimodal: not in the family
    op = meta.AnchoredOperator(lp0, 0.5, kind="geometric")
    q_star, _ = meta.projected_fixed_point(op, fam)
    np.testing.assert_allclose(fam.project(op(q_star)), q_star, atol=1e-9)  # it is a fixed point
    direct = fam.project(lp0)
    # Pi(p0) minimises KL(p0||.) over the family, so the geometric fixed point cannot beat it
    assert float(kl(lp0, q_star)) >= float(kl(lp0, direct)) - 1e-12
    # from two different starts it reaches the same point (attractive, within this example)
    q2, _ = meta.projected_fixed_point(op, fam, log_q0=fam.log_probs([3.0, -5.0]))
    np.testing.assert_allclose(q2, q_star, atol=1e-8)


def test_family_validation():
    with pytest.raises(ValueError, match="statistics"):
        meta.ExponentialFamily(np.ones(4))
    with pytest.raises(ValueError, match="base_log_measure"):
        meta.ExponentialFamily(np.ones((4, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="rank"):
        meta.LowRankSoftmax.random(5, 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="k must be"):
        meta.ExponentialFamily.discretized_gaussian(2)
    fam = meta.ExponentialFamily.discretized_gaussian(5)
    with pytest.raises(ValueError, match="log_m"):
        fam.project(np.log(np.full(4, 0.25)))
    with pytest.raises(ValueError, match="lam must be > 0"):
        meta.projected_fixed_point(meta.AnchoredOperator(np.log(np.full(5, 0.2)), 0.0), fam)
