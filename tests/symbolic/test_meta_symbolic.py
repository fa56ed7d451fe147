"""The sympy derivations of `sdtheory.symbolic.meta` against the numeric `sdtheory.theory.meta`."""

from __future__ import annotations

import numpy as np
import pytest

sp = pytest.importorskip("sympy")

from sdtheory.core import kl  # noqa: E402
from sdtheory.symbolic import meta as S  # noqa: E402
from sdtheory.theory import meta  # noqa: E402

RNG = np.random.default_rng(2026)


@pytest.mark.claim("meta.arithmetic-exact-iterate")
def test_arithmetic_iterate_solves_the_recursion():
    derived = S.derive_arithmetic_iterate()
    assert sp.simplify(derived - S.arithmetic_iterate_closed_form()) == 0
    f = S.lambdify(derived, (S.lam, S.p, S.q0, S.n))
    for _ in range(20):
        k = int(RNG.integers(2, 50))
        p0, q0 = RNG.dirichlet(np.ones(k)), RNG.dirichlet(np.full(k, 0.3))
        lam, n = float(RNG.uniform(0.01, 1)), int(RNG.integers(0, 30))
        numeric = np.exp(meta.AnchoredOperator(np.log(p0), lam).iterate(np.log(q0), n)[n])
        np.testing.assert_allclose(f(lam, p0, q0, n), numeric, rtol=1e-12, atol=1e-15)


@pytest.mark.claim("meta.geometric-osc-contraction")
def test_geometric_log_ratio_solves_the_recursion():
    d = S.derive_geometric_log_ratio()
    d0 = next(s for s in d.free_symbols if s.name == "d_0")
    assert sp.simplify(d - d0 * (1 - S.lam) ** S.n) == 0
    assert S.geometric_two_step_residual() == [0, 0]  # explicit 3-outcome, 2-step iterate
    f = S.lambdify(S.geometric_log_ratio_closed_form(), (S.lam, S.p, S.q0, S.n))
    for _ in range(20):
        k = int(RNG.integers(2, 50))
        p0, q0 = RNG.dirichlet(np.ones(k)), RNG.dirichlet(np.full(k, 0.3))
        lam, n = float(RNG.uniform(0.01, 1)), int(RNG.integers(0, 30))
        lq = meta.AnchoredOperator(np.log(p0), lam, "geometric").iterate(np.log(q0), n)[n]
        resid = (lq - np.log(p0)) - f(lam, p0, q0, n)
        scale = 1 + np.abs(np.log(q0 / p0)).max()
        assert np.ptp(resid) <= 1e-12 * scale * (n + 1)  # equal up to the constant c_n


@pytest.mark.claim("meta.arithmetic-kl-contraction")
def test_two_point_kl_contraction():
    d = S.derive_two_point_kl_contraction()
    assert d["gap_at_0"] == 0 and d["gap_at_1"] == 0
    assert sp.simplify(d["kl_second_derivative"] - d["sum_of_squares"]) == 0
    gap = S.lambdify(d["gap"], (d["a"], d["b"], S.lam))
    a = RNG.uniform(0.001, 0.999, 200)
    b = RNG.uniform(0.001, 0.999, 200)
    lam = RNG.uniform(0, 1, 200)
    g = gap(a, b, lam)
    lp, lq = np.log(np.stack([a, 1 - a], -1)), np.log(np.stack([b, 1 - b], -1))
    numeric = np.array(
        [
            (1 - x) * kl(lp[i], lq[i]) - kl(lp[i], meta.arithmetic_anchor(lp[i], lq[i], x))
            for i, x in enumerate(lam)
        ]
    )
    np.testing.assert_allclose(g, numeric, rtol=1e-9, atol=1e-13)
    assert np.all(g >= -1e-13)


@pytest.mark.claim("meta.unique-fixed-point")
def test_fixed_point_is_unique():
    assert S.derive_fixed_point() == [S.p]


@pytest.mark.claim("meta.finite-sample-stationary")
def test_finite_sample_variance_matches_chi2_formula():
    s = S.derive_finite_sample_variance()
    s0 = next(x for x in s.free_symbols if x.name == "sigma_0^2")
    f = S.lambdify(s, (s0, S.lam, S.N, S.n))
    for lam, n_samples, k in ((0.0, 10, 5), (0.2, 50, 20), (0.9, 7, 3), (1.0, 100, 40)):
        gens = np.arange(1, 15)
        # chi2 = sum_i Var(q_i)/p_i with sigma_0i^2/p_i = (1 - p_i): total k - 1
        sym = np.array([f(k - 1.0, float(lam), float(n_samples), float(g)) for g in gens])
        np.testing.assert_allclose(
            sym, meta.finite_sample_chi2(k, n_samples, lam, gens), rtol=1e-12
        )
