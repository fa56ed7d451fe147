"""Tests for `sdtheory.theory.paced`: weights, finite-K estimation, SNR optimality, robustness."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sdtheory.theory import paced

# ----------------------------------------------------------------------------- strategies


@st.composite
def problems(draw, min_n: int = 1, max_n: int = 12):
    """Signal s >= 0 (at least one > 0) and variance v > 0 over n problems."""
    n = draw(st.integers(min_n, max_n))
    s = draw(hnp.arrays(np.float64, n, elements=st.floats(0.0, 10.0, allow_subnormal=False)))
    v = draw(hnp.arrays(np.float64, n, elements=st.floats(1e-3, 10.0)))
    i = draw(st.integers(0, n - 1))
    s[i] = max(s[i], 0.1)
    return s, v


deltas = st.floats(0.0, 0.99)


# ----------------------------------------------------------------------------- weights


def test_beta_kernel_weight_values_and_exact_zeros():
    p = np.array([0.0, 0.2, 0.5, 1.0])
    # p^2 (1-p)^0.5 computed by hand at 0.2 and 0.5.
    expected = [0.0, 0.04 * np.sqrt(0.8), 0.25 * np.sqrt(0.5), 0.0]
    np.testing.assert_allclose(paced.beta_kernel_weight(p, 2.0, 0.5), expected, rtol=1e-15)
    w = paced.beta_kernel_weight(p)  # default p(1-p)
    assert w[0] == 0.0 and w[-1] == 0.0
    assert paced.beta_kernel_weight(0.5) == 0.25
    # exponent 0 uses 0^0 = 1: alpha=0 keeps p = 0 problems.
    assert paced.beta_kernel_weight(0.0, 0.0, 1.0) == 1.0
    assert paced.beta_kernel_weight(1.0, 1.0, 0.0) == 1.0


@given(p=st.floats(0.0, 1.0), a=st.floats(0.0, 5.0), b=st.floats(0.0, 5.0))
def test_beta_kernel_weight_matches_power_formula(p, a, b):
    expected = (p**a if p > 0 or a > 0 else 1.0) * ((1 - p) ** b if p < 1 or b > 0 else 1.0)
    assert paced.beta_kernel_weight(p, a, b) == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_beta_kernel_peak_is_at_alpha_over_alpha_plus_beta():
    p = np.linspace(0, 1, 100001)
    for a, b in [(1, 1), (2, 1), (0.5, 3)]:
        w = paced.beta_kernel_weight(p, a, b)
        assert p[np.argmax(w)] == pytest.approx(a / (a + b), abs=1e-4)


@pytest.mark.parametrize(
    "call",
    [
        lambda: paced.beta_kernel_weight(1.5),
        lambda: paced.beta_kernel_weight(-0.1),
        lambda: paced.beta_kernel_weight(0.5, alpha=-1.0),
        lambda: paced.beta_kernel_weight(np.nan),
        lambda: paced.pass_rate(5, 4),
        lambda: paced.pass_rate(-1, 4),
        lambda: paced.pass_rate(1.5, 4),
        lambda: paced.pass_rate(1, 0),
        lambda: paced.unbiased_variance(0.5, 1),
        lambda: paced.misspecification_bound(1.2),
        lambda: paced.misspecification_bound(-0.1),
        lambda: paced.optimal_weights([1.0, 2.0], [1.0, 0.0]),
        lambda: paced.optimal_weights([0.0, 0.0], [1.0, 1.0]),
        lambda: paced.optimal_weights([-1.0, 2.0], [1.0, 1.0]),
        lambda: paced.snr_efficiency([0.0, 0.0], [1.0, 1.0], [1.0, 1.0]),
        lambda: paced.snr_efficiency([1.0], [1.0, 1.0], [1.0, 1.0]),
        lambda: paced.fit_beta_kernel([0.0, 0.5, 0.7], [1.0, 1.0, 1.0]),
        lambda: paced.fit_beta_kernel([0.1, 0.5, 0.7], [0.0, 1.0, 1.0]),
        lambda: paced.fit_beta_kernel([0.1, 0.5, 0.7], [1.0, 1.0, 1.0], method="x"),
        lambda: paced.gradient_snr(np.ones((1, 3))),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_error_names_the_argument():
    with pytest.raises(ValueError, match="successes"):
        paced.pass_rate(5, 4)
    with pytest.raises(ValueError, match="delta"):
        paced.misspecification_bound(2.0)
    with pytest.raises(ValueError, match="variance"):
        paced.optimal_weights([1.0], [0.0])


# ----------------------------------------------------------------------------- finite K


def test_pass_rate_is_successes_over_trials():
    np.testing.assert_array_equal(paced.pass_rate([0, 1, 4], 4), [0.0, 0.25, 1.0])
    np.testing.assert_array_equal(paced.pass_rate(3, [4, 6]), [0.75, 0.5])


@pytest.mark.claim("paced.finite-k-bias")
@pytest.mark.parametrize("k", [2, 3, 4, 8])
def test_plugin_bias_and_unbiased_correction_exact_enumeration(k):
    """Closed form = brute force: sum over the binomial distribution of S."""
    from scipy.stats import binom

    p = np.array([0.05, 0.3, 0.5, 0.9])
    sk = np.arange(k + 1)
    pmf = binom.pmf(sk[:, None], k, p)  # (k+1, len(p))
    ph = paced.pass_rate(sk, k)[:, None]
    e_plugin = np.sum(pmf * ph * (1 - ph), axis=0)
    e_unbiased = np.sum(pmf * paced.unbiased_variance(ph, k), axis=0)
    np.testing.assert_allclose(e_plugin, paced.expected_plugin_variance(p, k), rtol=1e-12)
    np.testing.assert_allclose(e_plugin, (1 - 1 / k) * p * (1 - p), rtol=1e-12)
    np.testing.assert_allclose(e_unbiased, p * (1 - p), rtol=1e-12)
    # the bias is real: the plug-in is short by p(1-p)/K.
    assert np.all(p * (1 - p) - e_plugin > 0.9 * p * (1 - p) / k)


@pytest.mark.paper("paced2026", "paced.finite-k-bias")
@pytest.mark.claim("paced.finite-k-bias")
def test_plugin_bias_and_correction_by_simulation():
    """Closed form ~ simulation; tolerance 5 SE with n = 200000 rollout batches."""
    rng = np.random.default_rng(0)
    n, k, p = 200_000, 4, 0.3
    ph = paced.pass_rate(rng.binomial(k, p, size=n), k)
    plug = paced.plugin_variance(ph)
    unb = paced.unbiased_variance(ph, k)
    se_plug = plug.std(ddof=1) / np.sqrt(n)
    se_unb = unb.std(ddof=1) / np.sqrt(n)
    truth = p * (1 - p)
    assert abs(plug.mean() - (1 - 1 / k) * truth) < 5 * se_plug
    assert abs(unb.mean() - truth) < 5 * se_unb
    # the bias (0.0525 at K=4) is many SE away from 0: the test can see it.
    assert truth - plug.mean() > 20 * se_plug


@pytest.mark.paper("paced2026", "paced.zero-weight-fraction")
def test_zero_weight_probability_and_expected_weight():
    rng = np.random.default_rng(1)
    n, k = 100_000, 4
    for p in (0.05, 0.5, 0.97):
        ph = paced.pass_rate(rng.binomial(k, p, size=n), k)
        zero = paced.beta_kernel_weight(ph) == 0.0
        pz = paced.zero_weight_probability(p, k)
        assert abs(zero.mean() - pz) < 5 * np.sqrt(pz * (1 - pz) / n)
    # alpha=beta=1: E[w(p_hat)] = (1-1/K) p(1-p) exactly (uniform scale).
    p = np.linspace(0, 1, 11)
    np.testing.assert_allclose(
        paced.expected_beta_weight(p, 8), paced.expected_plugin_variance(p, 8), atol=1e-15
    )
    # other exponents: the finite-K bias is not a constant factor.
    ratio = paced.expected_beta_weight(p[1:-1], 8, 2.0, 1.0) / paced.beta_kernel_weight(
        p[1:-1], 2.0, 1.0
    )
    assert np.ptp(ratio) > 0.1
    # K -> infinity recovers the kernel.
    np.testing.assert_allclose(
        paced.expected_beta_weight(p, 20000, 2.0, 1.0),
        paced.beta_kernel_weight(p, 2.0, 1.0),
        atol=2e-4,
    )


# ----------------------------------------------------------------------------- SNR optimality


def brute_force_snr(w, s, v, rng, n_draws=40000):
    """SNR of sum_i w_i g_i from explicit Gaussian draws g_i = s_i u + xi_i, d = 3."""
    d = 3
    u = np.zeros(d)
    u[0] = 1.0
    xi = rng.standard_normal((n_draws, len(s), d)) * np.sqrt(v / d)[None, :, None]
    g = s[None, :, None] * u + xi
    G = np.einsum("i,nid->nd", w, g)
    mean = G.mean(0)
    return mean @ mean / np.sum(G.var(0, ddof=1))


def test_snr_closed_form_matches_explicit_gradients():
    rng = np.random.default_rng(2)
    s = np.array([0.5, 1.0, 0.2])
    v = np.array([1.0, 2.0, 0.5])
    w = np.array([0.3, 0.2, 0.5])
    exact = paced.snr(w, s, v)
    measured = brute_force_snr(w, s, v, rng)
    # ratio estimator: the relative SE of tr Cov is ~ sqrt(2/(3n)); numerator error is smaller.
    assert measured == pytest.approx(exact, rel=5 * np.sqrt(2 / (3 * 40000)) + 1e-3)


@pytest.mark.paper("paced2026", "paced.optimal-weights")
@pytest.mark.claim("paced.optimal-weights")
@given(problems(), st.data())
def test_efficiency_at_most_one_with_equality_at_optimum(sv, data):
    s, v = sv
    w_star = paced.optimal_weights(s, v)
    assert paced.snr_efficiency(w_star, s, v) == pytest.approx(1.0, abs=1e-12)
    assert paced.snr_efficiency(7.0 * w_star, s, v) == pytest.approx(1.0, abs=1e-12)
    w = data.draw(hnp.arrays(np.float64, s.size, elements=st.floats(-5.0, 5.0)))
    if np.sum(w * w * v) > 1e-12:
        assert 0.0 <= paced.snr_efficiency(w, s, v) <= 1.0 + 1e-12
        # Cauchy-Schwarz gap as Lagrange's identity: best - SNR(w) >= 0
        assert paced.snr(w, s, v) <= np.sum(s * s / v) * (1 + 1e-12)


@given(problems(min_n=2))
def test_optimum_is_a_maximum_against_perturbations(sv):
    s, v = sv
    w_star = paced.optimal_weights(s, v)
    rng = np.random.default_rng(0)
    for _ in range(20):
        w = w_star + 0.05 * rng.standard_normal(s.size) * w_star.max()
        assert paced.snr(w, s, v) <= paced.snr(w_star, s, v) * (1 + 1e-12)


def test_snr_model_gives_beta_kernel_optimum():
    p = np.linspace(0.01, 0.99, 99)
    s, v = paced.snr_model(p, a0=2.0, a1=1.5, b0=0.5, b1=0.0)
    w = paced.optimal_weights(s, v)
    k = paced.beta_kernel_weight(p, 1.5, 1.5)
    np.testing.assert_allclose(w, k / k.sum(), rtol=1e-12)
    # binary-outcome default: s = p(1-p), v = 1 -> w* = p(1-p) and per-problem SNR vanishes at ends
    s, v = paced.snr_model(p)
    np.testing.assert_allclose(paced.optimal_weights(s, v), (p * (1 - p)) / np.sum(p * (1 - p)))
    per = s**2 / v
    # (0.01 * 0.99)^2 / 0.25^2 = 1.568e-3 by hand
    assert per[0] / per.max() == pytest.approx((0.01 * 0.99) ** 2 / 0.25**2, rel=1e-12)
    assert per[-1] == pytest.approx(per[0], rel=1e-12)


# ----------------------------------------------------------------------------- robustness


@pytest.mark.claim("paced.misspec-aggregate")
@given(problems(), deltas, st.data())
def test_efficiency_floor_random_misspecification(sv, delta, data):
    s, v = sv
    eps = data.draw(hnp.arrays(np.float64, s.size, elements=st.floats(-1.0, 1.0))) * delta
    w = paced.optimal_weights(s, v) * (1 + eps)
    assert paced.snr_efficiency(w, s, v) >= paced.misspecification_bound(delta) - 1e-12


@pytest.mark.paper("paced2026", "paced.misspec-aggregate")
@pytest.mark.claim("paced.misspec-aggregate")
@given(problems(max_n=8), deltas)
def test_efficiency_floor_adversarial_misspecification(sv, delta):
    """Adversary 1: all 2^n vertices by brute force; adversary 2: L-BFGS-B from the worst vertex."""
    from scipy.optimize import minimize

    s, v = sv
    w_star = paced.optimal_weights(s, v)
    floor = paced.misspecification_bound(delta)
    worst = 1.0
    for signs in itertools.product((-1.0, 1.0), repeat=s.size):
        worst = min(worst, paced.snr_efficiency(w_star * (1 + delta * np.array(signs)), s, v))
    assert worst >= floor - 1e-12
    eps, eta = paced.adversarial_misspecification(s, v, delta)
    assert eta == pytest.approx(worst, abs=1e-12)  # the helper finds the brute-force minimum
    assert np.all(np.abs(eps) <= delta + 1e-15)
    if delta > 0:
        res = minimize(
            lambda e: paced.snr_efficiency(w_star * (1 + e), s, v),
            eps * 0.9,
            bounds=[(-delta, delta)] * s.size,
            method="L-BFGS-B",
        )
        assert res.fun >= floor - 1e-9


@pytest.mark.paper("paced2026", "paced.two-point-tight")
@pytest.mark.claim("paced.two-point-tight")
@given(deltas)
def test_two_point_construction_attains_the_bound(delta):
    s, v, w, eps = paced.two_point_construction(delta)
    assert np.all(np.abs(eps) <= delta)
    a = s**2 / v
    assert np.sum(a * eps) / np.sum(a) == pytest.approx(-(delta**2), abs=1e-14)
    assert paced.snr_efficiency(w, s, v) == pytest.approx(1 - delta**2, abs=1e-12)
    # and the adversary finds the same value on this instance
    _, eta = paced.adversarial_misspecification(s, v, delta)
    assert eta == pytest.approx(1 - delta**2, abs=1e-12)


@given(deltas, st.integers(200, 400))
def test_bound_is_approached_by_many_equal_problems(delta, n):
    """With n equal problems the adversary's mass q can only be a multiple of 1/n: gap O(1/n)."""
    s, v = np.ones(n), np.ones(n)
    _, eta = paced.adversarial_misspecification(s, v, delta)
    assert 1 - delta**2 - 1e-12 <= eta <= 1 - delta**2 + 4.0 / n


@pytest.mark.claim("paced.misspec-pointwise")
@given(
    st.floats(0.01, 5.0),
    st.floats(0.01, 5.0),
    st.floats(0.01, 2.0),
    st.floats(0.1, 3.0),
    deltas,
    st.floats(-1.0, 1.0),
)
@pytest.mark.paper("paced2026", "paced.misspec-pointwise")
def test_pointwise_progress_floor(s, v, lr, L, delta, u):
    eps = u * delta
    w_star = paced.pointwise_optimal_weight(s, v, lr, L)
    best = paced.pointwise_progress(w_star, s, v, lr, L)
    got = paced.pointwise_progress(w_star * (1 + eps), s, v, lr, L)
    assert got == pytest.approx((1 - eps**2) * best, rel=1e-10, abs=1e-14)
    assert got >= paced.misspecification_bound(delta) * best - 1e-12
    # w* is the maximiser: a grid search cannot beat it
    grid = w_star * np.linspace(0, 2, 401)
    assert paced.pointwise_progress(grid, s, v, lr, L).max() <= best * (1 + 1e-12)


# ----------------------------------------------------------------------------- Beta fit


@pytest.mark.claim("paced.beta-fit-recovers")
@given(
    a=st.floats(0.0, 3.0),
    b=st.floats(0.0, 3.0),
    c=st.floats(0.01, 100.0),
    method=st.sampled_from(["lsq", "boundary", "minimax"]),
)
@pytest.mark.paper("paced2026", "paced.beta-fit-recovers")
def test_beta_fit_recovers_known_exponents(a, b, c, method):
    p = np.linspace(0.01, 0.99, 60)
    fit = paced.fit_beta_kernel(p, c * paced.beta_kernel_weight(p, a, b), method=method)
    assert fit.alpha == pytest.approx(a, abs=1e-7)
    assert fit.beta == pytest.approx(b, abs=1e-7)
    assert fit.scale == pytest.approx(c, rel=1e-7)
    assert fit.delta == pytest.approx(0.0, abs=1e-7)


@pytest.mark.paper("paced2026", "paced.beta-fit-delta")
@pytest.mark.claim("paced.beta-fit-recovers")
@given(a=st.floats(0.3, 3.0), b=st.floats(0.3, 3.0), amp=st.floats(0.0, 0.5))
def test_boundary_fit_recovers_leading_exponents_under_smooth_factor(a, b, amp):
    """w* = p^a (1-p)^b h(p) with smooth h: the boundary fit sees a, b up to O(tail) errors."""
    p = np.concatenate([np.geomspace(1e-6, 0.5, 200), 1 - np.geomspace(1e-6, 0.5, 200)[::-1]])
    h = 1.0 + amp * np.sin(3 * p)
    w = paced.beta_kernel_weight(p, a, b) * h
    fit = paced.fit_beta_kernel(p, w, method="boundary", tail=0.01)
    # |d log h / d log p| <= 3 p amp/(1-amp) <= 0.03 * 1 on the left tail
    assert fit.alpha == pytest.approx(a, abs=0.04)
    assert fit.beta == pytest.approx(b, abs=0.04)
    # the implied delta is the exact range statistic of h / fitted kernel, and it guarantees
    # efficiency >= 1 - delta^2 for the fitted kernel against the target weights
    _, v = np.ones(p.size), np.ones(p.size)
    eta = paced.snr_efficiency(fit(p), w, v)  # signal = w*, variance 1 -> w* is optimal
    assert eta >= paced.misspecification_bound(min(fit.delta, 1.0)) - 1e-12


@given(a=st.floats(0.3, 2.0), b=st.floats(0.3, 2.0), amp=st.floats(0.01, 0.6))
def test_minimax_fit_has_smallest_delta_and_delta_formula(a, b, amp):
    p = np.linspace(0.02, 0.98, 49)
    h = np.exp(amp * np.cos(4 * p))
    w = paced.beta_kernel_weight(p, a, b) * h
    fits = {m: paced.fit_beta_kernel(p, w, method=m) for m in ("lsq", "minimax")}
    assert fits["minimax"].delta <= fits["lsq"].delta + 1e-9
    f = fits["lsq"]
    ratio = f(p) / w
    assert np.max(np.abs(ratio - 1)) == pytest.approx(f.delta, rel=1e-9)
    # delta = (hmax - hmin) / (hmax + hmin) with h = w / kernel
    hh = w / (p**f.alpha * (1 - p) ** f.beta)
    assert f.delta == pytest.approx((hh.max() - hh.min()) / (hh.max() + hh.min()), rel=1e-9)


# ----------------------------------------------------------------------------- SNR estimator


def test_gradient_snr_debiasing_by_simulation():
    """E[debiased] = true SNR; the plain ratio is biased up by ~1/n. 4000 repetitions of n = 20."""
    rng = np.random.default_rng(3)
    d, n, reps = 5, 20, 4000
    mu = np.zeros(d)
    mu[0] = 0.5
    true = mu @ mu / d  # unit covariance: tr = d
    deb, raw = [], []
    for _ in range(reps):
        g = mu + rng.standard_normal((n, d))
        deb.append(paced.gradient_snr(g))
        raw.append(paced.gradient_snr(g, debias=False))
    deb, raw = np.array(deb), np.array(raw)
    # the debiased numerator is unbiased; the ratio keeps an O(1/n) bias from the denominator,
    # bounded here by 2/n * true; the tolerance adds 5 SE.
    assert abs(deb.mean() - true) < 5 * deb.std() / np.sqrt(reps) + 2 * true / n
    assert raw.mean() - true > 0.5 / n
