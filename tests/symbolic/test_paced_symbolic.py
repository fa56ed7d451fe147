"""Sympy derivations of `sdtheory.symbolic.paced` checked, and compared with the numeric code."""

from __future__ import annotations

import numpy as np
import pytest

sp = pytest.importorskip("sympy")

from sdtheory.symbolic import paced as sym  # noqa: E402
from sdtheory.theory import paced  # noqa: E402


@pytest.fixture(scope="module")
def opt():
    return sym.derive_optimal_weights(3)


@pytest.mark.claim("paced.optimal-weights")
def test_stationarity_gives_s_over_v(opt):
    assert all(g == 0 for g in opt["gradient_at_optimum"])
    assert sp.simplify(opt["value_at_optimum"] - opt["best"]) == 0
    assert opt["lagrange_gap"] == 0  # Cauchy-Schwarz gap is a sum of squares


def test_stationarity_is_not_satisfied_elsewhere(opt):
    """The check can fail: at w = s (not s/v) the gradient is non-zero for unequal v."""
    w, s, v = opt["w"], opt["s"], opt["v"]
    sub = {
        **dict(zip(w, s, strict=True)),
        **dict(zip(s, (1, 2, 3), strict=True)),
        **dict(zip(v, (1, 2, 5), strict=True)),
    }
    assert any(sp.simplify(g.subs(sub)) != 0 for g in opt["gradient"])


def test_symbolic_snr_matches_numeric(opt):
    rng = np.random.default_rng(0)
    f = sp.lambdify((opt["w"], opt["s"], opt["v"]), opt["snr"], "numpy")
    for _ in range(20):
        w, s, v = rng.uniform(-1, 1, 3), rng.uniform(0, 2, 3), rng.uniform(0.1, 3, 3)
        assert f(w, s, v) == pytest.approx(paced.snr(w, s, v), rel=1e-12)
        best = sp.lambdify((opt["s"], opt["v"]), opt["best"], "numpy")(s, v)
        assert best == pytest.approx(paced.snr(paced.optimal_weights(s, v), s, v), rel=1e-12)


@pytest.mark.claim("paced.two-point-tight")
def test_two_point_floor_is_one_minus_delta_squared():
    r = sym.derive_two_point_floor()
    d = r["delta"]
    assert sp.simplify(r["q_star"] - (1 - d) / 2) == 0
    assert sp.simplify(r["eta_at_q_star"] - (1 - d**2)) == 0
    assert sp.simplify(r["mean_eps_at_q_star"] + d**2) == 0
    m, M = r["m"], r["M"]
    assert sp.simplify(r["mu_star"] - 2 * m * M / (m + M)) == 0
    assert sp.simplify(r["kantorovich"] - 4 * m * M / (m + M) ** 2) == 0
    assert sp.simplify(r["floor"] - (1 - d**2)) == 0
    # numeric: the symbolic floor equals misspecification_bound and the two-point construction
    floor = sp.lambdify(d, r["floor"], "numpy")
    for delta in (0.05, 0.3, 0.77):
        assert floor(delta) == pytest.approx(paced.misspecification_bound(delta), rel=1e-14)
        s, v, w, _ = paced.two_point_construction(delta)
        assert paced.snr_efficiency(w, s, v) == pytest.approx(floor(delta), abs=1e-12)
        eta_q = sp.lambdify((r["q"], d), r["eta_q"], "numpy")
        qs = np.linspace(0.001, 0.999, 999)
        assert eta_q(qs, delta).min() >= floor(delta) - 1e-12


@pytest.mark.claim("paced.misspec-pointwise")
def test_pointwise_ratio_is_one_minus_eps_squared():
    r = sym.derive_pointwise_floor()
    eps = r["symbols"][-1]
    assert sp.simplify(r["ratio"] - (1 - eps**2)) == 0
    w, s, v, lr, L, _ = r["symbols"]
    w_star = sp.lambdify((s, v, lr, L), r["w_star"], "numpy")
    assert w_star(0.7, 1.3, 0.1, 2.0) == pytest.approx(
        float(paced.pointwise_optimal_weight(0.7, 1.3, 0.1, 2.0)), rel=1e-14
    )


@pytest.mark.paper("paced2026", "paced.finite-k-bias")
@pytest.mark.claim("paced.finite-k-bias")
def test_plugin_expectation_symbolic_and_explicit():
    r = sym.derive_plugin_expectation((1, 2, 3, 4, 8))
    p = r["p"]
    assert sp.simplify(r["general"] - r["claimed"]) == 0
    for k, e in r["explicit"].items():
        assert sp.expand(e - (1 - sp.Rational(1, k)) * p * (1 - p)) == 0
        f = sp.lambdify(p, e, "numpy")
        xs = np.linspace(0, 1, 7)
        np.testing.assert_allclose(f(xs), paced.expected_plugin_variance(xs, k), atol=1e-15)
        np.testing.assert_allclose(f(xs), paced.expected_beta_weight(xs, k), atol=1e-15)
    for e in r["unbiased_explicit"].values():
        assert sp.expand(e - p * (1 - p)) == 0
    assert r["explicit"][1] == 0  # K = 1: the plug-in is identically 0
