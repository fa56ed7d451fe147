"""Property and value tests for `sdtheory.core` divergences."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import rel_entr

from sdtheory import core
from sdtheory.testing import strategies as sst
from sdtheory.testing.asserts import assert_close

# Asymmetric pair pinning the argument order. Values computed by hand:
# KL(p||q) = .7 ln(.7/.2) + .2 ln(.2/.3) + .1 ln(.1/.5) = 0.634897265081714...
# KL(q||p) = .2 ln(.2/.7) + .3 ln(.3/.2) + .5 ln(.5/.1) = 0.675805894950425...
P = np.log([0.7, 0.2, 0.1])
Q = np.log([0.2, 0.3, 0.5])
KL_PQ = 0.7 * np.log(0.7 / 0.2) + 0.2 * np.log(0.2 / 0.3) + 0.1 * np.log(0.1 / 0.5)
KL_QP = 0.2 * np.log(0.2 / 0.7) + 0.3 * np.log(0.3 / 0.2) + 0.5 * np.log(0.5 / 0.1)


def test_kl_direction_is_pinned():
    assert KL_PQ == pytest.approx(0.6348972650817145, rel=1e-15)
    assert KL_QP == pytest.approx(0.6758058949504258, rel=1e-15)
    assert core.kl(P, Q) == pytest.approx(KL_PQ, rel=1e-14)
    assert core.kl(Q, P) == pytest.approx(KL_QP, rel=1e-14)
    assert abs(core.kl(P, Q) - core.kl(Q, P)) > 0.04


def test_jsd_endpoints_follow_gkd_convention():
    # p = teacher, q = student: beta=0 forward KL(p||q), beta=1 reverse KL(q||p).
    assert core.generalized_jsd(P, Q, 0.0, normalized=True) == pytest.approx(KL_PQ, rel=1e-14)
    assert core.generalized_jsd(P, Q, 1.0, normalized=True) == pytest.approx(KL_QP, rel=1e-14)
    assert core.generalized_jsd(P, Q, 0.0) == 0.0
    assert core.generalized_jsd(P, Q, 1.0) == 0.0


@pytest.mark.parametrize("beta", [1e-14, 1e-10, 1e-6, 1e-3])
def test_normalized_jsd_is_continuous_at_both_ends(beta):
    lo = core.generalized_jsd(P, Q, beta, normalized=True)
    hi = core.generalized_jsd(P, Q, 1 - beta, normalized=True)
    # Derivative in beta is O(1) (a few nats), so the gap is O(beta) plus rounding.
    assert abs(lo - KL_PQ) <= 5 * beta + 1e-13
    assert abs(hi - KL_QP) <= 5 * beta + 1e-12


def test_jsd_half_matches_textbook_formula():
    p, q = np.exp(P), np.exp(Q)
    m = 0.5 * (p + q)
    ref = 0.5 * rel_entr(p, m).sum() + 0.5 * rel_entr(q, m).sum()
    assert core.generalized_jsd(P, Q, 0.5) == pytest.approx(ref, rel=1e-14)


@given(sst.log_prob_pairs())
def test_kl_nonnegative(pair):
    assert np.all(core.kl(*pair) >= 0)


@given(sst.log_prob_pairs(degenerate=False))
def test_kl_matches_rel_entr(pair):
    # Probability-space reference; valid while no probability underflows (non-degenerate rows).
    lp, lq = pair
    val = core.kl(lp, lq)
    ref = rel_entr(np.exp(lp), np.exp(lq)).sum(-1)
    # The generalised form adds sum(q - p) = O(k eps) for inputs that normalise to rounding.
    np.testing.assert_allclose(val, ref, rtol=1e-9, atol=1e-12)


@given(sst.log_probs())
def test_kl_zero_iff_equal(lp):
    np.testing.assert_array_equal(core.kl(lp, lp), 0.0)
    np.testing.assert_allclose(core.generalized_jsd(lp, lp, 0.3), 0.0, atol=1e-15)
    np.testing.assert_array_equal(core.total_variation(lp, lp), 0.0)


@given(sst.log_prob_pairs(), st.floats(0.0, 1.0))
def test_jsd_bounded_by_binary_entropy(pair, beta):
    lp, lq = pair
    val = core.generalized_jsd(lp, lq, beta)
    hb = -(beta * np.log(beta) if beta > 0 else 0.0) - (
        (1 - beta) * np.log1p(-beta) if beta < 1 else 0.0
    )
    assert np.all(val >= 0)
    assert np.all(val <= hb + 1e-12)


@given(sst.log_prob_pairs())
def test_jsd_half_is_symmetric(pair):
    lp, lq = pair
    assert_close(core.generalized_jsd(lp, lq, 0.5), core.generalized_jsd(lq, lp, 0.5), atol=1e-14)


# Dyadic betas, so that 1 - beta is exact and both calls mix with the same weight.
@given(sst.log_prob_pairs(), st.integers(0, 2**20).map(lambda i: i / 2**20))
def test_normalized_jsd_swaps_with_beta(pair, beta):
    lp, lq = pair
    a = core.generalized_jsd(lp, lq, beta, normalized=True)
    b = core.generalized_jsd(lq, lp, 1 - beta, normalized=True)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@given(sst.log_prob_pairs())
def test_pinsker(pair):
    lp, lq = pair
    tv = core.total_variation(lp, lq)
    assert np.all(tv <= np.sqrt(core.kl(lp, lq) / 2) + 1e-12)
    assert np.all((tv >= 0) & (tv <= 1 + 1e-15))


@given(st.lists(sst.log_probs(k=6, batch=()), min_size=4, max_size=4), st.floats(0.0, 1.0))
def test_kl_jointly_convex(dists, w):
    p1, q1, p2, q2 = dists
    pm = core.log_mix(p1, p2, w)
    qm = core.log_mix(q1, q2, w)
    lhs = core.kl(pm, qm)
    rhs = w * core.kl(p1, q1) + (1 - w) * core.kl(p2, q2)
    assert np.all(lhs <= rhs + 1e-12)


@given(sst.log_prob_pairs(), st.data())
def test_merging_into_tail_bucket_never_increases_kl(pair, data):
    lp, lq = pair
    v = lp.shape[-1]
    k = data.draw(st.integers(1, v))
    _, idx = core.top_k(lp, k)
    lp_b = core.with_tail_bucket(lp, idx)
    lq_b = core.with_tail_bucket(lq, idx)
    assert np.all(core.kl(lp_b, lq_b) <= core.kl(lp, lq) + 1e-10)
    np.testing.assert_allclose(np.exp(lp_b).sum(-1), 1.0, atol=1e-12)


@given(sst.log_probs(), st.data())
def test_top_k_renormalises_and_orders(lp, data):
    k = data.draw(st.integers(1, lp.shape[-1]))
    vals, idx = core.top_k(lp, k)
    np.testing.assert_allclose(np.exp(vals).sum(-1), 1.0, atol=1e-12)
    assert np.all(np.diff(vals, axis=-1) <= 0)
    # Ratios inside the support are preserved.
    np.testing.assert_allclose(
        vals - vals[..., :1], core.gather(lp, idx) - core.gather(lp, idx[..., :1]), atol=1e-9
    )


@given(sst.logits(), st.floats(-50, 50))
def test_log_softmax_shift_invariant(z, c):
    np.testing.assert_allclose(core.log_softmax(z + c), core.log_softmax(z), atol=1e-12)


@given(sst.log_prob_pairs(), st.floats(0.0, 1.0))
def test_log_mix_matches_direct(pair, w):
    lp, lq = pair
    direct = w * np.exp(lp) + (1 - w) * np.exp(lq)
    np.testing.assert_allclose(np.exp(core.log_mix(lp, lq, w)), direct, rtol=1e-12, atol=1e-300)


@given(sst.log_prob_pairs(), st.floats(0.0, 1.0))
def test_skew_kl_between_zero_and_kl(pair, alpha):
    lp, lq = pair
    s = core.skew_kl(lp, lq, alpha)
    assert np.all(s >= 0)
    assert np.all(s <= core.kl(lp, lq) * (1 - alpha) + 1e-10)  # convexity in the second argument


def test_skew_kl_endpoints():
    assert core.skew_kl(P, Q, 0.0) == pytest.approx(KL_PQ, rel=1e-14)
    assert core.skew_kl(P, Q, 1.0) == 0.0


@given(sst.log_prob_pairs())
def test_cross_entropy_decomposes(pair):
    lp, lq = pair
    np.testing.assert_allclose(
        core.cross_entropy(lp, lq), core.entropy(lp) + core.kl(lp, lq), rtol=1e-9, atol=1e-9
    )


def test_zero_log_zero_is_exact():
    lp = np.log([0.5, 0.5, 0.0])
    lq = np.log([0.25, 0.25, 0.5])
    assert core.kl(lp, lq) == pytest.approx(np.log(2), rel=1e-15)
    assert core.entropy(lp) == pytest.approx(np.log(2), rel=1e-15)
    assert core.kl(lq, lp) == np.inf
    assert core.kl(lp, lp) == 0.0
    assert np.isfinite(core.generalized_jsd(lq, lp, 0.5))


def test_log_space_beats_probability_space_when_q_underflows():
    # q_0 = e^-750 underflows to 0 in probability space (rel_entr says inf); the exact value is
    # 0.5 (log 0.5 + 750) + 0.5 (log 0.5 - 0) = 375 + log 0.5.
    lp = np.log([0.5, 0.5])
    lq = np.array([-750.0, 0.0])
    assert np.isinf(rel_entr(np.exp(lp), np.exp(lq)).sum())
    assert core.kl(lp, lq) == pytest.approx(375 + np.log(0.5), rel=1e-15)


def test_extreme_logits_and_large_vocab_stay_finite():
    rng = np.random.default_rng(0)
    v = 2**17
    z1 = rng.uniform(-1e4, 1e4, size=(2, v))
    z2 = rng.uniform(-1e4, 1e4, size=(2, v))
    a, b = core.log_softmax(z1), core.log_softmax(z2)
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(np.exp(a).sum(-1), 1.0, atol=1e-12)
    for val in (
        core.kl(a, b),
        core.generalized_jsd(a, b, 0.5),
        core.generalized_jsd(a, b, 0.0, normalized=True),
        core.entropy(a),
        core.total_variation(a, b),
        core.skew_kl(a, b, 0.1),
    ):
        assert np.all(np.isfinite(val)) and np.all(val >= 0)
    # A tail of 1e-300 stays finite in log space.
    lp = core.log_softmax(np.array([0.0, -700.0, -700.0]))
    tail = core.with_tail_bucket(lp, np.array([0]))
    assert np.isfinite(tail).all() and tail[-1] == pytest.approx(np.log(2) - 700, rel=1e-12)


def test_broadcasting_over_batch():
    rng = np.random.default_rng(1)
    a = core.log_softmax(rng.standard_normal((4, 1, 7)))
    b = core.log_softmax(rng.standard_normal((1, 3, 7)))
    out = core.kl(a, b)
    assert out.shape == (4, 3)
    assert out[2, 1] == pytest.approx(core.kl(a[2, 0], b[0, 1]), rel=1e-14)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: core.generalized_jsd(P, Q, 1.5), "beta must lie in \\[0, 1\\], got 1.5"),
        (lambda: core.generalized_jsd(P, Q, -0.1), "beta"),
        (lambda: core.skew_kl(P, Q, 2.0), "alpha must lie in"),
        (
            lambda: core.log_softmax(P, temperature=0.0),
            "temperature must be a finite number > 0, got 0.0",
        ),
        (lambda: core.log_softmax(P, temperature=-1), "temperature"),
        (lambda: core.top_k(P, 0), "k must be an integer >= 1, got 0"),
        (lambda: core.top_k(P, 4), "k must be at most the vocabulary size 3, got 4"),
        (
            lambda: core.kl(P, np.log([0.5, 0.5])),
            "log_p with shape \\(3,\\) and log_q with shape \\(2,\\)",
        ),
        (lambda: core.kl(np.log([0.5, 0.6]), Q[:2], validate=True), "log_p does not normalise"),
        (lambda: core.kl(P, np.array([0.1, -1.0, -2.0])), "log_q must be log-probabilities"),
        (lambda: core.kl(np.array([np.nan, 0.0]), np.log([0.5, 0.5])), "log_p contains NaN"),
        (lambda: core.entropy(np.float64(0.0)), "log_p must have at least one axis"),
    ],
)
def test_bad_input_names_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_validate_accepts_normalised_input():
    assert core.kl(P, Q, validate=True) == pytest.approx(KL_PQ)
