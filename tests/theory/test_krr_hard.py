"""Kernel closed forms on the hard cases: singular, rank-deficient and ill-conditioned kernels.

Kernels from `hard_psd_kernels()` (exact zero eigenvalues; condition number of the range up to
1e12), ridge penalties down to 1e-8. Where a brute-force solve is the reference its own error is
about `steps * cond(K + lam I) * eps`, so the tolerance is derived from the conditioning and
examples whose reference cannot resolve the comparison are skipped (`assume`). The null-space
path (eigenvalues that are rounding noise of a zero) is checked directly: predictions do not leak
into the kernel's null space beyond `n eps d_max / lam`.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from sdtheory.testing.strategies import hard_psd_kernels, ridge_penalties, spectra
from sdtheory.theory.krr import (
    KernelSelfDistillation,
    iterative_refits,
    mobahi_rounds,
    ridge_predict,
    spectral_decomposition,
)

EPS = np.finfo(np.float64).eps


@st.composite
def hard_problems(draw, max_n: int = 30):
    """(kernel, null-space basis, y, lam): the kernel is Q diag(d) Q^T with known zero columns."""
    n = draw(st.integers(1, max_n))
    d = draw(spectra(n=n, zeros=None, max_condition=1e12))
    q, _ = np.linalg.qr(np.random.default_rng(draw(st.integers(0, 2**32 - 1))).normal(size=(n, n)))
    kernel = (q * d) @ q.T
    kernel = 0.5 * (kernel + kernel.T)
    y = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal(n)
    return kernel, q[:, d == 0.0], y, draw(ridge_penalties())


def _cond(sd: KernelSelfDistillation) -> float:
    d = sd.eigenvalues
    return float((d[0] + sd.lam) / (d[-1] + sd.lam))


@given(hard_psd_kernels())
def test_spectral_decomposition_of_singular_kernels(kernel):
    d, v, _ = spectral_decomposition(kernel)
    n = kernel.shape[0]
    scale = max(float(np.abs(d).max()), 1e-300)
    assert np.all(d >= 0.0) and np.all(np.diff(d) <= 0.0)
    np.testing.assert_allclose(v.T @ v, np.eye(n), atol=50 * n * EPS)
    np.testing.assert_allclose((v * d) @ v.T, kernel, atol=50 * n * EPS * scale)


@given(hard_problems(), st.floats(0.0, 1.0), st.integers(2, 50))
def test_closed_sum_equals_the_eigenbasis_recursion(prob, alpha, steps):
    """The constant-alpha closed sum (expm1/log1p) against the step-by-step diagonal recursion.

    The hard cases: a = d/(d + lam) within 1e-8 of 1 (d >> lam), exact zeros (a = 0).
    """
    kernel, _, y, lam = prob
    sd = KernelSelfDistillation(kernel, y, lam)
    closed = sd.shrinkage_path(steps, alpha)
    recursion = sd.shrinkage_path(steps, np.full(steps - 1, alpha))
    np.testing.assert_allclose(closed, recursion, rtol=0, atol=4 * steps * EPS)
    assert np.all((closed >= 0.0) & (closed <= 1.0 + 1e-12))


@given(hard_problems(), st.floats(0.0, 1.0), st.integers(1, 30))
def test_predictions_do_not_leak_into_the_null_space(prob, alpha, steps):
    kernel, null, y, lam = prob
    assume(null.shape[1] > 0)
    sd = KernelSelfDistillation(kernel, y, lam)
    n = kernel.shape[0]
    # a zero eigenvalue comes back as |d| <~ n eps d_max; its shrinkage a = d/(d+lam) leaks
    leak = 10 * n * EPS * max(sd.eigenvalues[0], 1e-300) / lam + 10 * EPS
    for pred in (sd.predict(steps, alpha), sd.predict(math.inf, alpha)):
        assert np.linalg.norm(null.T @ pred) <= leak * np.linalg.norm(y) + 1e-300


@given(hard_problems(max_n=20), st.floats(0.0, 1.0), st.integers(1, 20))
def test_closed_form_equals_refits_within_the_conditioning(prob, alpha, steps):
    kernel, _, y, lam = prob
    sd = KernelSelfDistillation(kernel, y, lam)
    tol = 20 * steps * _cond(sd) * EPS * float(np.max(np.abs(y)))
    assume(tol < 1e-3 * float(np.max(np.abs(y))))  # the solve can resolve the comparison
    ref = iterative_refits(kernel, y, lam, steps, alpha)
    np.testing.assert_allclose(sd.predict_path(steps, alpha), ref, rtol=0, atol=tol)


@given(hard_problems(max_n=20), st.floats(1e-3, 1.0))
def test_limit_is_ridge_with_lam_over_alpha_on_hard_kernels(prob, alpha):
    kernel, _, y, lam = prob
    sd = KernelSelfDistillation(kernel, y, lam)
    d = sd.eigenvalues
    cond = float((d[0] + lam / alpha) / (d[-1] + lam / alpha))
    tol = 20 * cond * EPS * float(np.max(np.abs(y)))
    assume(tol < 1e-3 * float(np.max(np.abs(y))))
    np.testing.assert_allclose(
        sd.predict(math.inf, alpha), ridge_predict(kernel, y, lam / alpha), rtol=0, atol=tol
    )
    # and the shrinkage of the limit is exactly alpha d / (alpha d + lam), 0 on the null space
    np.testing.assert_array_equal(sd.shrinkage(math.inf, alpha)[d == 0.0], 0.0)


@given(hard_problems(max_n=20), st.floats(0.0, 1.0))
def test_error_to_the_limit_contracts_at_rho_on_hard_kernels(prob, alpha):
    kernel, _, y, lam = prob
    sd = KernelSelfDistillation(kernel, y, lam)
    rho = sd.convergence_rate(alpha)
    b = sd.shrinkage_path(40, alpha)
    gap = np.abs(b - sd.shrinkage(math.inf, alpha)).max(axis=1)
    assert np.all(gap[1:] <= rho * gap[:-1] + 8 * EPS)


@given(hard_problems(max_n=20), st.floats(1e-3, 1.0))
def test_mobahi_rounds_on_rank_deficient_kernels(prob, eps_frac):
    """The null-space path of Mobahi's rounds: eps above the null-space residual is feasible."""
    kernel, null, y, _ = prob
    assume(null.shape[1] > 0 and null.shape[1] < kernel.shape[0])
    n = kernel.shape[0]
    eps = float(np.sum((null.T @ y) ** 2)) / n + eps_frac * float(np.mean(y**2))
    res = mobahi_rounds(kernel, y, eps, 2000)
    assert np.all(np.isfinite(res.c)) and np.all(np.diff(res.c) > 0)
    for t, _ in enumerate(res.c):
        change = float(np.mean((res.predictions[t] - res.predictions[t + 1]) ** 2))
        assert abs(change / eps - 1) < 1e-6
