"""Tests for `sdtheory.theory.meta`: anchored operators, contraction, axioms, aggregation.

Claims pinned here (registered by the sims): meta.arithmetic-exact-iterate,
meta.arithmetic-kl-contraction, meta.geometric-osc-contraction, meta.unique-fixed-point,
meta.axioms-provided-operators, meta.geometric-temperature-coherence.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import logsumexp

from sdtheory.core import kl, log_softmax, total_variation
from sdtheory.theory import meta

# ----------------------------------------------------------------------------- strategies


def log_dirichlet(rng: np.random.Generator, k: int, alpha: float) -> np.ndarray:
    """Dirichlet(alpha) sample in log space, exact for tiny alpha (no underflow to 0).

    log G(alpha) = log G(alpha + 1) + log(U) / alpha (Marsaglia & Tsang boost), normalised.
    """
    lg = np.log(rng.gamma(alpha + 1.0, size=k)) + np.log(rng.uniform(size=k)) / alpha
    return lg - logsumexp(lg)


@st.composite
def dirichlet_pairs(draw, max_k: int = 1000):
    """(log p0, log q0) on 2..max_k outcomes; concentration down to 0.01 (near-degenerate)."""
    k = draw(st.integers(2, max_k))
    alpha = 10.0 ** draw(st.floats(-2.0, 1.0))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return log_dirichlet(rng, k, alpha), log_dirichlet(rng, k, alpha)


lams = st.floats(0.0, 1.0, exclude_min=True, allow_subnormal=False)
steps = st.integers(0, 25)


# ----------------------------------------------------------------------------- exact identities


@pytest.mark.claim("meta.arithmetic-exact-iterate")
@pytest.mark.paper("flouro2026", "meta.arithmetic-exact-iterate")
@given(dirichlet_pairs(), lams, steps)
def test_arithmetic_iterate_is_exact_geometric_decay(pair, lam, n):
    lp0, lq0 = pair
    op = meta.AnchoredOperator(lp0, lam)
    qs = op.iterate(lq0, n)
    p0, q0 = np.exp(lp0), np.exp(lq0)
    want = p0 + (1 - lam) ** n * (q0 - p0)
    # n additions of float64 probabilities <= 1: error O(n eps)
    np.testing.assert_allclose(np.exp(qs[n]), want, rtol=0, atol=1e-14 * (n + 1))
    np.testing.assert_allclose(np.exp(op.closed_form(lq0, n)), want, rtol=0, atol=1e-14)
    # TV contracts by exactly (1 - lam) per generation
    tv = total_variation(lp0, qs)
    np.testing.assert_allclose(
        tv, (1 - lam) ** np.arange(n + 1) * tv[0], rtol=0, atol=1e-14 * (n + 1)
    )


@pytest.mark.claim("meta.arithmetic-kl-contraction")
@pytest.mark.paper("flouro2026", "meta.arithmetic-kl-contraction")
@given(dirichlet_pairs(), lams, st.integers(1, 25))
def test_arithmetic_kl_contraction(pair, lam, n):
    lp0, lq0 = pair
    qs = meta.AnchoredOperator(lp0, lam).iterate(lq0, n)
    d = kl(lp0, qs)
    slack = 1e-9 * d[0] + 1e-12  # rounding of KL itself
    assert np.all(d[1:] <= (1 - lam) * d[:-1] + slack)  # one step
    assert np.all(d <= meta.kl_contraction_bound(d[0], lam, np.arange(n + 1)) + slack)
    assert np.all(np.diff(d) <= slack)


@pytest.mark.claim("meta.geometric-osc-contraction")
@pytest.mark.paper("flouro2026", "meta.geometric-osc-contraction")
@given(dirichlet_pairs(), lams, steps)
def test_geometric_log_ratio_identity(pair, lam, n):
    lp0, lq0 = pair
    op = meta.AnchoredOperator(lp0, lam, kind="geometric")
    qs = op.iterate(lq0, n)
    r0 = lq0 - lp0
    resid = (qs[n] - lp0) - (1 - lam) ** n * r0  # must be a constant c_n over outcomes
    scale = 1.0 + np.abs(r0).max() + np.abs(lp0).max()
    assert np.ptp(resid) <= 1e-13 * scale * (n + 1)
    np.testing.assert_allclose(op.closed_form(lq0, n), qs[n], rtol=0, atol=1e-12 * scale)
    osc = meta.oscillation(qs, lp0)
    np.testing.assert_allclose(
        osc, (1 - lam) ** np.arange(n + 1) * osc[0], rtol=1e-10, atol=1e-13 * scale * (n + 1)
    )


@pytest.mark.claim("meta.geometric-osc-contraction")
@given(dirichlet_pairs(), lams, st.integers(1, 25))
def test_kl_bounded_by_oscillation_and_decays(pair, lam, n):
    lp0, lq0 = pair
    qs = meta.AnchoredOperator(lp0, lam, kind="geometric").iterate(lq0, n)
    osc0 = float(meta.oscillation(lq0, lp0))
    d = kl(lp0, qs)
    tol = 1e-12 * (1 + osc0)
    assert np.all(d <= meta.oscillation(qs, lp0) + tol)
    assert np.all(kl(qs, lp0) <= meta.oscillation(qs, lp0) + tol)
    assert np.all(d <= (1 - lam) ** np.arange(n + 1) * osc0 + tol)


@pytest.mark.parametrize("kind", meta.KINDS)
@given(dirichlet_pairs(max_k=50), lams, lams)
def test_semigroup(kind, pair, lam, mu):
    # Phi_mu(p, Phi_lam(p, q)) = Phi_{1-(1-lam)(1-mu)}(p, q): n steps = one step of weight w_n
    lp0, lq0 = pair
    phi = meta.ANCHORS[kind]
    lhs = phi(lp0, phi(lp0, lq0, lam), mu)
    rhs = phi(lp0, lq0, 1 - (1 - lam) * (1 - mu))
    if kind == "arithmetic":
        # a mixture: exact in probability space (the weights round at ~1e-16, which moves the
        # log of a 1e-25 probability a lot but the probability itself by < 1e-15)
        np.testing.assert_allclose(np.exp(lhs), np.exp(rhs), rtol=1e-12, atol=1e-15)
        return
    both = np.isfinite(lhs)
    assert np.array_equal(both, np.isfinite(rhs))
    scale = 1 + np.abs(lq0 - lp0).max()
    np.testing.assert_allclose(lhs[both], rhs[both], rtol=0, atol=1e-12 * scale)


@pytest.mark.claim("meta.unique-fixed-point")
@pytest.mark.paper("flouro2026", "meta.unique-fixed-point")
@pytest.mark.paper("flouro2026", "meta.abstract-contraction")
@pytest.mark.parametrize("kind", meta.KINDS)
@given(dirichlet_pairs(max_k=200), st.floats(0.2, 1.0))
def test_anchor_is_the_globally_attractive_fixed_point(kind, pair, lam):
    lp0, lq0 = pair
    op = meta.AnchoredOperator(lp0, lam, kind=kind)
    np.testing.assert_allclose(op(lp0), lp0, atol=1e-12)  # p0 is fixed
    np.testing.assert_array_equal(op.fixed_point, lp0)
    # global attraction: (1-lam)^n <= 0.8^200 ~ 4e-20, so q_n is p0 to rounding from any start
    q = op.closed_form(lq0, 200)
    scale = 1 + np.abs(lq0 - lp0).max()
    assert float(total_variation(lp0, q)) <= 1e-12
    assert float(meta.oscillation(q, lp0)) <= 1e-12 * scale


@pytest.mark.parametrize("kind", meta.KINDS)
def test_unique_fixed_point_brute_force(kind):
    # Every fixed point of q -> Phi_lam(p0, q) on a grid of the 2-simplex is p0 (lam > 0).
    p0 = np.array([0.6, 0.3, 0.1])
    grid = [
        np.array([a, b, 1 - a - b])
        for a, b in itertools.product(np.linspace(0.01, 0.98, 30), repeat=2)
        if a + b < 0.99
    ]
    op = meta.AnchoredOperator(np.log(p0), 0.3, kind=kind)
    moves = np.array([float(total_variation(op(np.log(q)), np.log(q))) for q in grid])
    dist = np.array([float(total_variation(np.log(p0), np.log(q))) for q in grid])
    # arithmetic: TV(Phi(q), q) = lam TV(p0, q) exactly; geometric: the move vanishes only at p0
    if kind == "arithmetic":
        np.testing.assert_allclose(moves, 0.3 * dist, atol=1e-14)
    assert np.all(moves[dist > 0.02] > 1e-3)
    with pytest.raises(ValueError, match="lam must be > 0"):
        meta.AnchoredOperator(np.log(p0), 0.0, kind=kind).fixed_point


def test_lam_zero_is_identity_and_lam_one_resets():
    rng = np.random.default_rng(0)
    lp0, lq0 = log_dirichlet(rng, 20, 0.5), log_dirichlet(rng, 20, 0.5)
    for kind in meta.KINDS:
        np.testing.assert_array_equal(meta.AnchoredOperator(lp0, 0.0, kind)(lq0), lq0)
        np.testing.assert_array_equal(meta.AnchoredOperator(lp0, 1.0, kind)(lq0), lp0)


@pytest.mark.claim("meta.kl-asymptotic-rate")
@pytest.mark.paper("flouro2026", "meta.kl-asymptotic-rate")
def test_asymptotic_kl_rate_is_one_minus_lam_squared():
    # KL(p0||q_n) ~ chi2/2 ~ (1-lam)^{2n}: slope of log KL vs n is 2 log(1-lam) (derived)
    rng = np.random.default_rng(1)
    lp0, lq0 = log_dirichlet(rng, 100, 1.0), log_dirichlet(rng, 100, 1.0)
    for kind, lam in itertools.product(meta.KINDS, (0.1, 0.3)):
        # fit where (1-lam)^n runs from 1e-3 to 1e-5, so higher-order terms are ~1e-3
        lo, hi = (int(np.log(x) / np.log1p(-lam)) for x in (1e-3, 1e-5))
        qs = meta.AnchoredOperator(lp0, lam, kind).iterate(lq0, hi)
        n = np.arange(lo, hi + 1)
        slope = np.polyfit(n, np.log(kl(lp0, qs[lo:])), 1)[0]
        assert abs(slope - 2 * np.log1p(-lam)) < 0.01 * abs(2 * np.log1p(-lam))


def test_extreme_logits_stay_finite():
    lp0 = log_softmax(np.array([1e4, 0.0, -1e4, 5.0]))
    lq0 = log_softmax(np.array([-1e4, 1e4, 0.0, -3.0]))
    for kind in meta.KINDS:
        qs = meta.AnchoredOperator(lp0, 0.1, kind).iterate(lq0, 10)
        assert np.isfinite(qs).all()
        np.testing.assert_allclose(logsumexp(qs, axis=-1), 0.0, atol=1e-12)
        assert np.isfinite(kl(lp0, qs)).all()


def test_batched_operator_broadcasts():
    rng = np.random.default_rng(2)
    lp0 = np.stack([log_dirichlet(rng, 6, 1.0) for _ in range(3)])
    lq0 = log_dirichlet(rng, 6, 1.0)
    for kind in meta.KINDS:
        op = meta.AnchoredOperator(lp0, 0.4, kind)
        qs = op.iterate(lq0, 3)
        assert qs.shape == (4, 3, 6)
        for i in range(3):
            single = meta.AnchoredOperator(lp0[i], 0.4, kind).iterate(lq0, 3)
            np.testing.assert_allclose(qs[:, i], single, atol=1e-14)


def test_contraction_profile_columns():
    rng = np.random.default_rng(3)
    lp0, lq0 = log_dirichlet(rng, 30, 0.3), log_dirichlet(rng, 30, 0.3)
    prof = meta.contraction_profile(meta.AnchoredOperator(lp0, 0.2), lq0, 8)
    assert set(prof) == {"generation", "kl", "kl_bound", "tv", "tv_exact", "osc", "osc_exact"}
    assert np.all(prof["kl"] <= prof["kl_bound"] * (1 + 1e-12))
    np.testing.assert_allclose(prof["tv"], prof["tv_exact"], atol=1e-14)
    prof = meta.contraction_profile(meta.AnchoredOperator(lp0, 0.2, "geometric"), lq0, 8)
    np.testing.assert_allclose(prof["osc"], prof["osc_exact"], rtol=1e-11)


def test_oscillation_conventions():
    # provenance: log(0.5/0.8) - log(0.5/0.2) = -log 4; osc = log 4
    assert np.isclose(meta.oscillation(np.log([0.5, 0.5]), np.log([0.8, 0.2])), np.log(4))
    with np.errstate(divide="ignore"):
        assert meta.oscillation(np.log([0.5, 0.5, 0.0]), np.log([0.5, 0.5, 0.0])) == 0.0
        assert meta.oscillation(np.log([1.0, 0.0]), np.log([0.5, 0.5])) == np.inf


# ----------------------------------------------------------------------------- validation


def test_bad_arguments_raise_value_error_naming_the_argument():
    lp = np.log([0.5, 0.5])
    with pytest.raises(ValueError, match="lam"):
        meta.AnchoredOperator(lp, 1.5)
    with pytest.raises(ValueError, match="kind"):
        meta.AnchoredOperator(lp, 0.5, kind="harmonic")
    with pytest.raises(ValueError, match="anchor_log_probs"):
        meta.AnchoredOperator(np.log([0.5, 0.4]), 0.5)
    with pytest.raises(ValueError, match="log_q"):
        meta.AnchoredOperator(lp, 0.5)(np.log([0.9, 0.9]))
    with pytest.raises(ValueError, match="n must be an integer"):
        meta.AnchoredOperator(lp, 0.5).iterate(lp, -1)
    with pytest.raises(ValueError, match="disjoint supports"), np.errstate(divide="ignore"):
        meta.geometric_anchor(np.log([1.0, 0.0]), np.log([0.0, 1.0]), 0.5)
    with pytest.raises(ValueError, match="temperature"):
        meta.soften(lp, 0.0)


# ----------------------------------------------------------------------------- aggregation


def test_aggregate_matches_explicit_formulas():
    rng = np.random.default_rng(4)
    ps = np.stack([log_dirichlet(rng, 12, 0.7) for _ in range(3)])
    w = np.array([0.5, 0.3, 0.2])
    arith = np.exp(meta.aggregate(ps, w))
    np.testing.assert_allclose(arith, w @ np.exp(ps), atol=1e-15)
    geo = np.exp(meta.aggregate(ps, w, kind="geometric"))
    g = np.prod(np.exp(ps) ** w[:, None], axis=0)
    np.testing.assert_allclose(geo, g / g.sum(), rtol=1e-12)
    # two teachers with weights (lam, 1-lam) are the anchoring operators
    np.testing.assert_allclose(
        meta.aggregate(ps[:2], [0.3, 0.7]), meta.arithmetic_anchor(ps[0], ps[1], 0.3), atol=1e-14
    )
    np.testing.assert_allclose(
        meta.aggregate(ps[:2], [0.3, 0.7], "geometric"),
        meta.geometric_anchor(ps[0], ps[1], 0.3),
        atol=1e-14,
    )


@pytest.mark.claim("meta.geometric-temperature-coherence")
@pytest.mark.paper("flouro2026", "meta.geometric-temperature-coherence")
@given(dirichlet_pairs(max_k=100), st.floats(0.1, 10.0), st.floats(0.0, 1.0))
def test_geometric_aggregation_is_temperature_coherent(pair, temperature, w0):
    ps = np.stack(pair)
    w = [w0, 1 - w0]
    lhs = meta.aggregate(ps, w, kind="geometric", temperature=temperature)
    rhs = meta.soften(meta.aggregate(ps, w, kind="geometric"), temperature)
    scale = 1 + np.abs(ps).max() / min(temperature, 1.0)
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-12 * scale)


def test_arithmetic_aggregation_is_not_temperature_coherent():
    # provenance: hand computation. p1=(0.9,0.1), p2=(0.1,0.9), equal weights, T=2:
    # soften then mix gives (1/2, 1/2); mix then soften gives (1/2, 1/2) too (symmetric), so use
    # an asymmetric pair: p1=(0.8,0.2), p2=(0.5,0.5), T=2 -> softened p1=(2/3,1/3);
    # mix-then-soften: mix=(0.65,0.35) -> (sqrt(.65), sqrt(.35))/Z
    ps = np.log([[0.8, 0.2], [0.5, 0.5]])
    a = np.exp(meta.aggregate(ps, [0.5, 0.5], temperature=2.0))
    np.testing.assert_allclose(a, [0.5 * 2 / 3 + 0.25, 0.5 / 3 + 0.25], atol=1e-15)
    b = np.exp(meta.soften(meta.aggregate(ps, [0.5, 0.5]), 2.0))
    s = np.sqrt([0.65, 0.35])
    np.testing.assert_allclose(b, s / s.sum(), atol=1e-15)
    assert abs(a[0] - b[0]) > 1e-3


def test_aggregate_validation_and_zero_weights():
    ps = np.log([[0.5, 0.5], [0.9, 0.1]])
    for bad in ([0.5, 0.6], [-0.1, 1.1], [1.0], [np.nan, 1.0]):
        with pytest.raises(ValueError, match="weights"):
            meta.aggregate(ps, bad)
    with pytest.raises(ValueError, match="teacher_log_probs"):
        meta.aggregate(np.log([0.5, 0.5]), [1.0])
    with np.errstate(divide="ignore"):
        ps0 = np.log([[0.5, 0.5], [1.0, 0.0]])
    # a teacher with weight 0 has no effect, even where its probability is 0
    np.testing.assert_allclose(meta.aggregate(ps0, [1.0, 0.0], "geometric"), ps0[0], atol=1e-15)
    # uniform default weights
    np.testing.assert_allclose(np.exp(meta.aggregate(ps)), [0.7, 0.3], atol=1e-15)


# ----------------------------------------------------------------------------- axioms


@pytest.mark.claim("meta.axioms-provided-operators")
@pytest.mark.paper("flouro2026", "meta.axioms-provided-operators")
def test_provided_operators_satisfy_their_axioms():
    geo = meta.check_axioms(meta.geometric_anchor, raise_on_failure=True)
    assert geo.holds and len(geo.results) == 5
    arith = meta.check_axioms(meta.arithmetic_anchor, axioms=("A1", "A2", "A3", "A4", "A2+"))
    assert arith.holds, str(arith)
    # A5 is expected to fail for arithmetic anchoring, with a message that says why
    a5 = meta.check_temperature_coherence(meta.arithmetic_anchor)
    assert not a5.holds and "softening then anchoring differs" in a5.message and a5.worst > 0.1
    # A2+ (support recovery) fails for geometric anchoring: zeros of q are absorbing
    a2p = meta.check_support_recovery(meta.geometric_anchor)
    assert not a2p.holds and "stay at probability 0" in a2p.message


def test_aggregation_axioms():
    assert meta.check_aggregation_axioms(
        lambda ps, w: meta.aggregate(ps, w, kind="geometric")
    ).holds
    rep = meta.check_aggregation_axioms(lambda ps, w: meta.aggregate(ps, w))
    assert [r.axiom for r in rep.failures] == ["A5 temperature coherence"]


def _unnormalised(lp, lq, lam):  # forgets to renormalise the geometric mean
    return lam * lp + (1 - lam) * lq


def _reversed(lp, lq, lam):  # weights the student with lam: anchors to the wrong end
    return meta.arithmetic_anchor(lp, lq, 1 - lam)


def _stepwise(lp, lq, lam):  # lam rounded to quarters: discontinuous in lam
    return meta.arithmetic_anchor(lp, lq, round(4 * lam) / 4)


def _sharpened(lp, lq, lam):  # squares the mixture: moves away from the anchor
    m = meta.arithmetic_anchor(lp, lq, lam)
    return log_softmax(2 * m) if 0 < lam < 1 else m


def _crashes(lp, lq, lam):
    raise RuntimeError("out of memory")


@pytest.mark.parametrize(
    "op, axiom, phrase",
    [
        (_unnormalised, "A2 positivity", "does not normalise"),
        (_reversed, "A1 anchoring", "Phi_0(p, q) = q is off by"),
        (_reversed, "A4 monotone anchoring", "rises from"),
        (_stepwise, "A3 continuity", "jump of"),
        (_sharpened, "A1 anchoring", "Phi_0.3(p, p) = p is off by"),
        (_sharpened, "A4 monotone anchoring", "rises from"),
        (_crashes, "A1 anchoring", "operator raised RuntimeError: out of memory"),
    ],
)
def test_broken_operators_fail_with_a_clear_message(op, axiom, phrase):
    rep = _report(op)
    assert not rep.holds
    assert not rep[axiom].holds
    assert phrase in rep[axiom].message, rep[axiom].message
    with pytest.raises(meta.AxiomViolation, match=axiom):
        rep.raise_if_failed()


def test_raise_on_failure():
    with pytest.raises(meta.AxiomViolation, match="A1 anchoring"):
        meta.check_axioms(_reversed, axioms=("A1",), raise_on_failure=True)


@functools.cache
def _report(op):
    return meta.check_axioms(op)


def test_continuity_catches_a_hard_argmax():
    def argmax_op(lp, lq, lam):
        m = meta.arithmetic_anchor(lp, lq, lam)
        out = np.full_like(m, -np.inf)
        out[np.argmax(m)] = 0.0
        return out

    res = meta.check_continuity(argmax_op)
    assert not res.holds and res.worst == pytest.approx(1.0)  # a one-hot switch: TV jump 1


def test_check_axioms_rejects_unknown_names():
    with pytest.raises(ValueError, match="axioms must be keys"):
        meta.check_axioms(meta.geometric_anchor, axioms=("A9",))
    with pytest.raises(KeyError, match="was not checked"):
        meta.check_axioms(meta.geometric_anchor, axioms=("A1",))["A5 temperature coherence"]
