"""Sympy proofs for the kernel self-distillation closed forms, and their numeric bridge."""

from __future__ import annotations

import math

import numpy as np
import pytest

sp = pytest.importorskip("sympy")

from sdtheory.symbolic import krr as sk  # noqa: E402
from sdtheory.theory.krr import KernelSelfDistillation  # noqa: E402


@pytest.mark.claim("krr.closed-form-equals-refits")
def test_closed_sum_equals_recursion_up_to_8_and_by_induction():
    assert sk.prove_closed_sum(max_tau=8)


@pytest.mark.claim("krr.limit-amplified-ridge")
def test_fixed_point_is_ridge_with_lam_over_alpha():
    assert sk.prove_limit()


@pytest.mark.claim("krr.convergence-rate")
def test_rate_identity():
    assert sk.prove_rate()


@pytest.mark.claim("krr.optimal-alpha-derived")
def test_optimal_alpha_formula():
    assert sk.prove_optimal_alpha()


@pytest.mark.claim("mobahi.collapse-bounds")
def test_mobahi_norm_split():
    assert sk.prove_mobahi_norm_drop()


def test_the_prover_rejects_wrong_formulas():
    # a closed form with the wrong exponent on (1 - alpha) must fail the induction step
    wrong = (1 - sk.alpha) ** sk.tau * sk.a**sk.tau
    with pytest.raises(AssertionError):
        sk._zero(wrong.subs(sk.tau, sk.tau + 1) - sk.a * (sk.alpha + (1 - sk.alpha) * wrong), "w")
    with pytest.raises(AssertionError):
        sk._zero(sk.derive_limit() - sk.d / (sk.d + sk.lam * sk.alpha), "wrong limit")
    with pytest.raises(AssertionError):
        sk._zero(sk.derive_recursion(3) - sk.a**3, "alpha-free recursion")


def test_lambdified_closed_form_matches_numpy_module():
    f = sk.shrinkage_function()
    rng = np.random.default_rng(0)
    d = np.sort(rng.uniform(0.01, 5.0, 12))[::-1]
    lam = 0.4
    sd = KernelSelfDistillation(np.diag(d), np.ones(12), lam)
    a = sd.eigenvalues / (sd.eigenvalues + lam)
    for alpha in (0.05, 0.3, 0.9):
        for t in (1, 2, 7, 30):
            np.testing.assert_allclose(f(a, alpha, t), sd.shrinkage(t, alpha), rtol=1e-12)
        lim = sp.lambdify((sk.d, sk.lam, sk.alpha), sk.derive_limit(), "numpy")
        np.testing.assert_allclose(
            lim(sd.eigenvalues, lam, alpha), sd.shrinkage(math.inf, alpha), rtol=1e-13
        )
