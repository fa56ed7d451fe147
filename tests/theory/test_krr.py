"""Tests for `sdtheory.theory.krr`: closed forms vs brute-force refits, limits, rates, Mobahi.

Brute force is `iterative_refits` (a fresh `np.linalg.solve` per step, the notebook's recursion
verbatim) and `np.linalg.solve` ridge. Tolerances are float64 closed-form-vs-solve tolerances:
the refits accumulate about `steps * cond(K + lam I) * eps` of rounding, relative to `max |y|`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdtheory.testing.strategies import psd_kernels
from sdtheory.theory.krr import (
    KernelSelfDistillation,
    distillation_grid,
    iterative_refits,
    mobahi_constant,
    mobahi_rounds,
    ridge_predict,
    spectral_decomposition,
)

REL = 1e-10  # the acceptance tolerance, relative to max |y|


@st.composite
def problems(draw, max_n: int = 60):
    n = draw(st.integers(1, max_n))
    kernel = draw(psd_kernels(n=n))
    seed = draw(st.integers(0, 2**32 - 1))
    y = np.random.default_rng(seed).standard_normal(n)
    lam = draw(st.floats(1e-2, 10.0))
    return kernel, y, lam


alphas = st.floats(0.0, 1.0)


def _close(actual, desired, scale):
    err = float(np.max(np.abs(np.asarray(actual) - np.asarray(desired))))
    assert err <= REL * scale, f"max abs error {err:.3g} > {REL} * {scale:.3g}"


# ----------------------------------------------------------------- closed form = brute force


@pytest.mark.claim("krr.closed-form-equals-refits")
@pytest.mark.paper("borup2021", "krr.closed-form-equals-refits")
@given(problems(), alphas, st.integers(1, 50))
def test_closed_form_equals_refits_constant_alpha(prob, alpha, steps):
    kernel, y, lam = prob
    sd = KernelSelfDistillation(kernel, y, lam)
    ref = iterative_refits(kernel, y, lam, steps, alpha)
    scale = float(np.max(np.abs(y)))
    _close(sd.predict_path(steps, alpha), ref, scale)
    _close(sd.predict(steps, alpha), ref[-1], scale)


@pytest.mark.claim("krr.closed-form-equals-refits")
@pytest.mark.paper("borup2021", "krr.closed-form-equals-refits")
@given(problems(), st.integers(1, 50), st.integers(0, 2**32 - 1))
def test_closed_form_equals_refits_per_step_alpha(prob, steps, seed):
    kernel, y, lam = prob
    al = np.random.default_rng(seed).uniform(0.0, 1.0, steps - 1)
    sd = KernelSelfDistillation(kernel, y, lam)
    ref = iterative_refits(kernel, y, lam, steps, al)
    scale = float(np.max(np.abs(y)))
    _close(sd.predict_path(steps, al), ref, scale)
    _close(sd.predict(steps, al), ref[-1], scale)


@pytest.mark.claim("krr.closed-form-equals-refits")
@given(problems(max_n=30), alphas, st.integers(1, 20), st.integers(0, 2**32 - 1))
def test_closed_form_at_new_points(prob, alpha, steps, seed):
    kernel, y, lam = prob
    n = kernel.shape[0]
    ke = np.random.default_rng(seed).standard_normal((7, n))
    sd = KernelSelfDistillation(kernel, y, lam)
    ref = iterative_refits(kernel, y, lam, steps, alpha, kernel_eval=ke)
    scale = float(np.max(np.abs(y))) * float(np.max(np.abs(ke).sum(1))) / lam
    _close(sd.predict(steps, alpha, ke), ref[-1], scale)
    _close(sd.predict_path(steps, alpha, ke), ref, scale)
    # the training Gram matrix as kernel_eval reproduces the training predictions
    _close(sd.predict(steps, alpha, kernel), sd.predict(steps, alpha), float(np.max(np.abs(y))))


@pytest.mark.claim("krr.closed-form-equals-refits")
@given(problems(), st.lists(alphas, min_size=1, max_size=4), st.integers(1, 50))
def test_cholesky_grid_equals_refits(prob, alpha_list, steps):
    kernel, y, lam = prob
    grid = distillation_grid(kernel, y, lam, alpha_list, steps)
    assert grid.shape == (len(alpha_list), steps, kernel.shape[0])
    for i, al in enumerate(alpha_list):
        _close(grid[i], iterative_refits(kernel, y, lam, steps, al), float(np.max(np.abs(y))))


def test_constant_alpha_closed_sum_equals_diagonal_recursion():
    rng = np.random.default_rng(0)
    d = np.sort(rng.uniform(0, 5, 25))[::-1]
    sd = KernelSelfDistillation(np.diag(d), rng.standard_normal(25), lam=0.3)
    for alpha in (0.0, 1e-9, 0.2, 0.5, 1.0):
        np.testing.assert_allclose(
            sd.shrinkage_path(60, alpha),
            sd.shrinkage_path(60, np.full(59, alpha)),
            rtol=1e-12,
            atol=1e-15,
        )


def test_multi_output_targets():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((15, 4))
    kernel = x @ x.T + 0.1 * np.eye(15)
    y = rng.standard_normal((15, 3))
    sd = KernelSelfDistillation(kernel, y, 0.5)
    ke = rng.standard_normal((5, 15))
    for c in range(3):
        one = KernelSelfDistillation(kernel, y[:, c], 0.5)
        np.testing.assert_allclose(sd.predict(4, 0.3)[:, c], one.predict(4, 0.3), atol=1e-13)
        np.testing.assert_allclose(
            sd.predict(4, 0.3, ke)[:, c], one.predict(4, 0.3, ke), atol=1e-13
        )
        np.testing.assert_allclose(
            sd.predict_path(4, 0.3, ke)[:, :, c], one.predict_path(4, 0.3, ke), atol=1e-13
        )


# ----------------------------------------------------------------- special cases and limits


@given(problems(max_n=30), st.integers(1, 30))
def test_alpha_zero_is_power_and_alpha_one_is_ridge(prob, steps):
    kernel, y, lam = prob
    sd = KernelSelfDistillation(kernel, y, lam)
    a = sd.eigenvalues / (sd.eigenvalues + lam)
    np.testing.assert_allclose(sd.shrinkage(steps, 0.0), a**steps, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(sd.shrinkage(steps, 1.0), a, rtol=1e-13, atol=0)
    _close(sd.predict(1, 0.7), ridge_predict(kernel, y, lam), float(np.max(np.abs(y))))


@pytest.mark.claim("krr.limit-amplified-ridge")
@pytest.mark.paper("borup2021", "krr.limit-amplified-ridge")
@given(problems(), st.floats(1e-3, 1.0), st.integers(0, 2**32 - 1))
def test_limit_is_ridge_with_lam_over_alpha(prob, alpha, seed):
    kernel, y, lam = prob
    sd = KernelSelfDistillation(kernel, y, lam)
    scale = float(np.max(np.abs(y)))
    _close(sd.predict(math.inf, alpha), ridge_predict(kernel, y, lam / alpha), scale)
    ke = np.random.default_rng(seed).standard_normal((4, kernel.shape[0]))
    _close(
        sd.predict(math.inf, alpha, ke),
        ridge_predict(kernel, y, lam / alpha, ke),
        scale * float(np.max(np.abs(ke).sum(1))) / lam,
    )


@pytest.mark.claim("krr.limit-amplified-ridge")
def test_finite_steps_converge_to_the_limit():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20, 6))
    kernel = x @ x.T
    y = rng.standard_normal(20)
    sd = KernelSelfDistillation(kernel, y, 1.0)
    for alpha in (0.1, 0.5, 0.9):
        # rho^2000 underflows for these alphas: step 2000 is the limit to rounding
        np.testing.assert_allclose(sd.predict(2000, alpha), sd.predict(math.inf, alpha), atol=1e-12)
    np.testing.assert_array_equal(sd.predict(math.inf, 0.0), np.zeros(20))


# ----------------------------------------------------------------- convergence rate


@pytest.mark.claim("krr.convergence-rate")
@given(problems(max_n=30), st.floats(0.0, 0.99))
def test_error_contracts_by_at_most_rho_per_step(prob, alpha):
    kernel, y, lam = prob
    sd = KernelSelfDistillation(kernel, y, lam)
    rho = sd.convergence_rate(alpha)
    b_inf = sd.shrinkage(math.inf, alpha)
    err = np.abs(sd.shrinkage_path(50, alpha) - b_inf).max(axis=1)  # operator-norm error
    # absolute slack: rounding of b itself (b <= 1), which dominates once err is ~1e-16
    assert np.all(err[1:] <= rho * err[:-1] * (1 + 1e-12) + 1e-15)
    pred_err = np.linalg.norm(sd.predict_path(50, alpha) - sd.predict(math.inf, alpha), axis=1)
    bound = rho ** np.arange(50) * pred_err[0]
    assert np.all(pred_err <= bound * (1 + 1e-9) + 1e-13 * np.linalg.norm(y))


@pytest.mark.claim("krr.convergence-rate")
@pytest.mark.paper("borup2021", "krr.convergence-rate")
@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.35, 0.7])
def test_measured_slope_matches_rate(alpha):
    # spectrum with a clear top gap, so the slope of log error is set by the top eigenvalue
    rng = np.random.default_rng(3)
    d = np.concatenate([[4.0], rng.uniform(0.001, 0.05, 29)])
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    kernel = (q * d) @ q.T
    y = rng.standard_normal(30)
    sd = KernelSelfDistillation(kernel, y, lam=0.5)
    taus = np.arange(1, 81)
    err = np.linalg.norm(sd.predict_path(80, alpha) - sd.predict(math.inf, alpha), axis=1)
    # from step 8 the second eigen-direction weighs < (0.091 / 0.889)^8 ~ 1e-8 relative; stop
    # before the error reaches the rounding floor
    keep = (taus >= 8) & (err > 1e-11 * np.linalg.norm(y))
    assert keep.sum() >= 8
    slope = np.polyfit(taus[keep], np.log(err[keep]), 1)[0]
    # predicted rate (1 - alpha) * 4 / 4.5
    assert abs(math.exp(slope) / sd.convergence_rate(alpha) - 1) < 1e-5


# ----------------------------------------------------------------- sparsification


@pytest.mark.claim("krr.sparsification-alpha0")
@pytest.mark.claim("krr.sparsification-bounded")
@pytest.mark.paper("borup2021", "krr.sparsification-alpha0")
@given(problems(max_n=30), st.floats(0.05, 0.95))
def test_consecutive_ratios_unbounded_at_alpha0_bounded_otherwise(prob, alpha):
    kernel, y, lam = prob
    sd = KernelSelfDistillation(kernel, y, lam)
    d = sd.eigenvalues
    keep = np.flatnonzero(d > 1e-8 * d[0])
    if keep.shape[0] < 2 or np.any(np.diff(d[keep]) >= -1e-6 * d[0]):
        return  # needs distinct, clearly positive eigenvalues
    a = d[keep] / (d[keep] + lam)
    r0 = [sd.shrinkage(t, 0.0)[keep] for t in (1, 5, 20)]
    ratios0 = [b[:-1] / b[1:] for b in r0]
    np.testing.assert_allclose(ratios0[2], (a[:-1] / a[1:]) ** 20, rtol=1e-10)
    assert np.all(ratios0[0] < ratios0[1]) and np.all(ratios0[1] < ratios0[2])
    b_inf = sd.shrinkage(math.inf, alpha)[keep]
    b_far = sd.shrinkage(3000, alpha)[keep]
    np.testing.assert_allclose(b_far[:-1] / b_far[1:], b_inf[:-1] / b_inf[1:], rtol=1e-9)
    # the limit ratios are bounded by the eigenvalue ratios d_k / d_(k+1) for every alpha
    dk = d[keep]
    assert np.all(b_inf[:-1] / b_inf[1:] <= dk[:-1] / dk[1:] * (1 + 1e-12))


@pytest.mark.claim("krr.convergence-rate")
@given(st.integers(2, 60), st.floats(0.0, 0.7), st.floats(0.5, 2.0), st.integers(0, 2**32 - 1))
def test_measured_slope_matches_rate_on_random_kernels(n, alpha, lam_ratio, seed):
    # random kernel whose top eigenvalue (1) is >= 10x the others, lam comparable to it, and y
    # with a unit component on the top direction: then the top direction dominates the error
    # after a few steps (its weight relative to the rest grows like (q_1/q_2)^tau >= 2^tau)
    rng = np.random.default_rng(seed)
    d = np.concatenate([[1.0], rng.uniform(0.0, 0.1, n - 1)])
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    kernel = (q * d) @ q.T
    y = q @ np.concatenate([[1.0], rng.standard_normal(n - 1)])
    sd = KernelSelfDistillation(kernel, y, lam_ratio)
    rho = sd.convergence_rate(alpha)
    err = np.linalg.norm(sd.predict_path(60, alpha) - sd.predict(math.inf, alpha), axis=1)
    ok = np.flatnonzero(err > 1e-9 * np.linalg.norm(y))
    last = ok[-4:] if ok.shape[0] >= 4 else ok  # the last steps above the rounding floor
    if last.shape[0] < 2:
        return
    slope = np.polyfit(last + 1, np.log(err[last]), 1)[0]
    # contamination by the other directions decays like (q_2/q_1)^tau; over 300 random draws of
    # this construction the worst relative gap was 1e-8
    assert abs(math.exp(slope) / rho - 1) < 1e-4


# ----------------------------------------------------------------- optimal alpha (derived)


@pytest.mark.claim("krr.optimal-alpha-derived")
@pytest.mark.paper("borup2021", "krr.optimal-alpha-derived")
@given(problems(max_n=25), st.integers(2, 6), st.integers(0, 2**32 - 1), st.booleans())
def test_optimal_alpha_is_a_stationary_minimum(prob, steps, seed, new_points):
    kernel, y, lam = prob
    n = kernel.shape[0]
    rng = np.random.default_rng(seed)
    ke = rng.standard_normal((9, n)) if new_points else None
    target = rng.standard_normal(9 if new_points else n)
    sd = KernelSelfDistillation(kernel, y, lam)
    al = sd.optimal_alpha(target, steps, ke)
    assert al.shape == (steps - 1,)

    def loss(seq):
        pred = iterative_refits(kernel, y, lam, len(seq) + 1, seq, ke)[-1]
        return float(np.sum((pred - target) ** 2))

    for i in range(steps - 1):
        base = loss(al[: i + 1])
        for h in (1e-3, 1e-1):
            for sgn in (-1, 1):
                pert = al[: i + 1].copy()
                pert[i] += sgn * h
                assert loss(pert) >= base - 1e-9 * (1 + base)


def test_optimal_alpha_on_the_toy_matches_grid_search():
    from sims.krr_toy import Config, toy_problem

    prob = toy_problem(Config())
    sd = KernelSelfDistillation(prob["kernel"], prob["y"], prob["lam"])
    al = sd.optimal_alpha(prob["f_train"], 5)
    # spec 1.2.5 (derived, computed independently there): -0.78, 0.29, 0.30, 0.30 for tau = 2..5
    np.testing.assert_allclose(al, [-0.78, 0.29, 0.30, 0.30], atol=0.006)
    grid = np.linspace(-2, 2, 4001)
    losses = [
        np.sum(
            (iterative_refits(prob["kernel"], prob["y"], prob["lam"], 2, g)[-1] - prob["f_train"])
            ** 2
        )
        for g in grid
    ]
    assert abs(grid[int(np.argmin(losses))] - al[0]) <= 1e-3
    con = sd.optimal_alpha(prob["f_train"], 5, constrain=True)
    assert con[0] == 0.0 and np.all((con >= 0) & (con <= 1))


# ----------------------------------------------------------------- clipping and validation


def test_rank_deficient_kernel_clips_and_still_matches_refits():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 5))
    kernel = x @ x.T  # rank 5: 35 eigenvalues are rounding noise of either sign
    d_raw = np.linalg.eigvalsh(kernel)
    assert (d_raw < 0).any()  # the situation the clipping exists for
    y = rng.standard_normal(40)
    sd = KernelSelfDistillation(kernel, y, 0.1)
    assert sd.n_clipped == int((d_raw < 0).sum())  # negatives set to 0, tiny positives kept
    assert np.all(sd.eigenvalues >= 0) and np.all(sd.eigenvalues[5:] < 1e-10)
    assert np.all(np.diff(sd.eigenvalues) <= 0)
    ref = iterative_refits(kernel, y, 0.1, 10, 0.3)
    np.testing.assert_allclose(sd.predict_path(10, 0.3), ref, atol=1e-11)
    ke = rng.standard_normal((3, 5)) @ x.T
    np.testing.assert_allclose(
        sd.predict(10, 0.3, ke), iterative_refits(kernel, y, 0.1, 10, 0.3, ke)[-1], atol=1e-10
    )
    d, _, n0 = spectral_decomposition(kernel, clip_small=True)
    assert n0 == 35 and np.all(d[5:] == 0.0)


def test_clipping_does_not_move_predictions_beyond_rounding():
    # RBF Gram matrix: most eigenvalues lie below n * eps * d_max; keeping the tiny positive
    # ones keeps the closed form at solve accuracy even for a small lam
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, (200, 2))
    kernel = np.exp(-2.0 * ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    y = rng.standard_normal(200)
    sd = KernelSelfDistillation(kernel, y, 1e-2)
    ref = iterative_refits(kernel, y, 1e-2, 5, 0.3)
    # solve accuracy: cond(K + lam I) * eps ~ 200 / 1e-2 * 2.2e-16 ~ 4e-12 relative
    np.testing.assert_allclose(sd.predict_path(5, 0.3), ref, atol=2e-11 * np.abs(y).max())


def test_spectral_decomposition_rejects_indefinite_and_asymmetric():
    with pytest.raises(ValueError, match="positive semi-definite"):
        spectral_decomposition(np.diag([1.0, -0.5]))
    with pytest.raises(ValueError, match="symmetric"):
        spectral_decomposition(np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        spectral_decomposition(np.ones((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        spectral_decomposition(np.array([[np.nan]]))
    # an explicit tolerance clips more
    d, _, n0 = spectral_decomposition(np.diag([1.0, 1e-6]), eig_tol=1e-5, clip_small=True)
    assert n0 == 1 and d[1] == 0.0
    d, _, n0 = spectral_decomposition(np.diag([1.0, 1e-6]), eig_tol=1e-5)
    assert n0 == 0 and d[1] == 1e-6
    with pytest.raises(ValueError, match="eig_tol"):
        spectral_decomposition(np.eye(2), eig_tol=-1.0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda sd: KernelSelfDistillation(np.eye(3), np.ones(3), 0.0), "lam"),
        (lambda sd: KernelSelfDistillation(np.eye(3), np.ones(3), -1.0), "lam"),
        (lambda sd: KernelSelfDistillation(np.eye(3), np.ones(4), 1.0), "y must"),
        (lambda sd: sd.predict(0, 0.5), "step"),
        (lambda sd: sd.predict(2.5, 0.5), "step"),
        (lambda sd: sd.predict(True, 0.5), "step"),
        (lambda sd: sd.predict(3, [0.5]), "alpha"),
        (lambda sd: sd.predict(3, np.nan), "alpha"),
        (lambda sd: sd.predict(math.inf, 1.5), "alpha"),
        (lambda sd: sd.predict(math.inf, [0.5, 0.5]), "alpha"),
        (lambda sd: sd.predict(2, 0.5, np.ones((2, 4))), "kernel_eval"),
        (lambda sd: sd.convergence_rate(-0.1), "alpha"),
        (lambda sd: sd.optimal_alpha(np.ones(2), 3), "target"),
    ],
)
def test_bad_arguments_raise(call, match):
    sd = KernelSelfDistillation(np.eye(3), np.ones(3), 1.0)
    with pytest.raises(ValueError, match=match):
        call(sd)


# ----------------------------------------------------------------- Mobahi et al. 2020


def _random_problem(seed, n=30, cond=50.0):
    rng = np.random.default_rng(seed)
    d = np.exp(rng.uniform(0, np.log(cond), n))
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * d) @ q.T, rng.standard_normal(n)


@pytest.mark.claim("mobahi.constraint-active")
@pytest.mark.paper("mobahi2020", "mobahi.constraint-active")
@pytest.mark.parametrize("seed", range(5))
def test_mobahi_rounds_solve_the_constrained_problem(seed):
    kernel, y = _random_problem(seed)
    n = y.shape[0]
    eps = 0.01 * float(np.mean(y**2))
    res = mobahi_rounds(kernel, y, eps, 500)
    assert res.collapse_round is not None and res.collapse_round == len(res.c)
    g = kernel / n
    for t, c in enumerate(res.c):
        # brute force: the Lagrangian solution at c_t, by a linear solve
        nxt = g @ np.linalg.solve(g + c * np.eye(n), res.predictions[t])
        np.testing.assert_allclose(res.predictions[t + 1], nxt, atol=1e-10)
        # the constraint is active: mean squared change equals eps
        assert abs(np.mean((res.predictions[t] - nxt) ** 2) / eps - 1) < 1e-9
    np.testing.assert_array_equal(res.predictions[-1], 0.0)


@pytest.mark.claim("mobahi.c-increasing")
@pytest.mark.paper("mobahi2020", "mobahi.c-increasing")
@pytest.mark.parametrize("seed", range(5))
def test_mobahi_c_increases_and_norm_decreases(seed):
    kernel, y = _random_problem(seed)
    res = mobahi_rounds(kernel, y, 0.005 * float(np.mean(y**2)), 1000)
    assert np.all(np.diff(res.c) > 0)
    assert np.all(np.diff(res.norms) < 0)


@pytest.mark.claim("mobahi.collapse-bounds")
@pytest.mark.paper("mobahi2020", "mobahi.collapse-bounds")
@given(st.integers(2, 40), st.floats(1.0, 1e3), st.floats(1e-3, 0.5), st.integers(0, 2**32 - 1))
def test_mobahi_collapse_round_within_derived_bounds(n, cond, eps_frac, seed):
    kernel, y = _random_problem(seed, n=n, cond=cond)
    eps = eps_frac * float(np.mean(y**2))
    res = mobahi_rounds(kernel, y, eps, 10_000)
    t_star = res.collapse_round
    assert t_star is not None
    r0 = res.r0
    assert r0 - 1 <= t_star + 1e-9  # implies the attributed (r0 - 1)/kappa for kappa >= 1
    assert t_star <= r0**2 + 1e-9
    # per-round forms of the two derived inequalities: r_{t+1} >= r_t - 1, r_{t+1}^2 <= r_t^2 - 1
    r = res.norms[:-1] / math.sqrt(n * eps)
    assert np.all(r[1:] >= r[:-1] - 1 - 1e-9)
    assert np.all(r[1:] ** 2 <= r[:-1] ** 2 - 1 + 1e-9)
    # bracket used by the root finder: d_min/(r_t - 1) <= c_t <= d_max/(r_t - 1)
    d = res.eigenvalues
    assert np.all(res.c >= d.min() / (r[: len(res.c)] - 1) * (1 - 1e-8))
    assert np.all(res.c <= d.max() / (r[: len(res.c)] - 1) * (1 + 1e-8))


@pytest.mark.claim("mobahi.sparsification")
@pytest.mark.paper("mobahi2020", "mobahi.sparsification")
def test_mobahi_shrinkage_ratios_grow():
    kernel, y = _random_problem(7)
    res = mobahi_rounds(kernel, y, 0.002 * float(np.mean(y**2)), 1000)
    b = res.shrinkage[: res.collapse_round + 1]  # rows before the zero row
    ratios = b[:, :-1] / b[:, 1:]  # eigenvalues descending: b_j / b_{j+1}
    assert np.all(np.diff(ratios, axis=0) >= -1e-12)
    assert np.all(np.diff(res.ratio_top_bottom[: res.collapse_round + 1]) > 0)


def test_mobahi_collapse_at_round_zero_and_errors():
    kernel, y = _random_problem(8, n=10)
    res = mobahi_rounds(kernel, y, 10 * float(np.mean(y**2)), 5)
    assert res.collapse_round == 0 and res.c.shape == (0,)
    res = mobahi_rounds(kernel, y, 1e-6 * float(np.mean(y**2)), 2)
    assert res.collapse_round is None and res.c.shape == (2,)
    with pytest.raises(ValueError, match="eps"):
        mobahi_rounds(kernel, y, 0.0, 5)
    with pytest.raises(ValueError, match="max_rounds"):
        mobahi_rounds(kernel, y, 0.1, 0)
    x = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match="infeasible"):
        mobahi_rounds(x @ x.T, y, 1e-8, 5)  # rank 2: the null space residual exceeds eps


def test_mobahi_rounds_on_a_rank_deficient_kernel():
    # crashed before: Brent's bracket started at c = 0, where 0 / (0 + 0) is NaN on the null space
    rng = np.random.default_rng(0)
    n = 10
    x = rng.standard_normal((n, 3))
    y = x @ rng.standard_normal(3) + 0.3 * rng.standard_normal(n)
    kernel = x @ x.T  # rank 3
    eps = 0.05 * float(np.mean(y**2))
    res = mobahi_rounds(kernel, y, eps, 500)
    assert res.collapse_round is not None and len(res.c) >= 2
    g = kernel / n
    for t, c in enumerate(res.c):  # brute force, as for a full-rank kernel
        nxt = g @ np.linalg.solve(g + c * np.eye(n), res.predictions[t])
        np.testing.assert_allclose(res.predictions[t + 1], nxt, atol=1e-10)
        assert abs(np.mean((res.predictions[t] - nxt) ** 2) / eps - 1) < 1e-9


def test_mobahi_constant_solves_the_constraint_inside_the_bracket():
    rng = np.random.default_rng(0)
    for kappa in (1.0, 3.0, 50.0):
        d = np.geomspace(1.0, kappa, 16)
        z = rng.standard_normal(16)
        z *= 7.5 / np.linalg.norm(z)  # r = 7.5
        c = mobahi_constant(z, d, 1.0)
        assert math.isclose(np.linalg.norm(c * z / (c + d)), 1.0, rel_tol=1e-12)
        assert d.min() / 6.5 * (1 - 1e-12) <= c <= d.max() / 6.5 * (1 + 1e-12)
    d = np.array([1.0, 2.0])
    assert mobahi_constant(np.array([0.6, 0.8]), d, 1.0) == math.inf  # ||z|| = target: collapse
    assert mobahi_constant(np.array([0.3, 0.4]), d, 1.0) == math.inf


@pytest.mark.parametrize("ulps", [1, 2, 4, 9, 256, 257, 300, 10**4, 10**6, 10**9, 10**12])
@pytest.mark.parametrize("kappa", [1.0, 1.0 + 1e-12, 4.0])
def test_mobahi_constant_just_above_collapse(ulps, kappa):
    # r = ||z|| / target = 1 + ulps * eps. sims/taid_proxy.py reached r = 1 + 1..9 ulps in its
    # kappa = 1 cells, where rounding hid the sign change of Brent's bracket (issue 13).
    eps = np.finfo(float).eps
    d = np.geomspace(1.0, kappa, 16)
    u = np.random.default_rng(ulps).standard_normal(16)
    z = u / np.linalg.norm(u) * (1.0 + ulps * eps)
    r = float(np.linalg.norm(z))  # target 1
    c = mobahi_constant(z, d, 1.0)
    if r <= 1.0 + 256 * eps:
        assert c == math.inf  # 1 to rounding: collapse
    else:
        assert d.min() / (r - 1) * (1 - 1e-9) <= c <= d.max() / (r - 1) * (1 + 1e-9)
        assert abs(np.linalg.norm(c * z / (c + d)) - 1.0) <= 8 * eps  # a root to rounding


def test_mobahi_constant_null_space_and_errors():
    d = np.array([2.0, 1.0, 0.0])
    z = np.array([3.0, 2.0, 0.5])  # the null-space coordinate is never fitted: residual >= 0.5
    c = mobahi_constant(z, d, 1.0)
    assert 0.0 < c < d.max() / (np.linalg.norm(z) - 1.0)
    assert math.isclose(np.linalg.norm(c * z / (c + d)), 1.0, rel_tol=1e-12)
    with pytest.raises(ValueError, match="null space leaves a residual 1.5"):
        mobahi_constant(np.array([3.0, 2.0, 1.5]), d, 1.0)
    bad = [
        ((np.ones(3), np.ones(2), 1.0), "z and d must be 1-d"),
        ((np.array([1.0, np.nan]), np.ones(2), 1.0), "z must be finite"),
        ((np.ones(2), np.array([1.0, -1.0]), 1.0), "d must be finite and >= 0"),
        ((np.ones(2), np.zeros(2), 1.0), "with a positive entry"),
        ((np.ones(2), np.ones(2), 0.0), "target must be a finite number > 0, got 0.0"),
    ]
    for args, msg in bad:
        with pytest.raises(ValueError, match=msg):
            mobahi_constant(*args)
