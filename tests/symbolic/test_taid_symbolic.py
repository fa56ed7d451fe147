"""Sympy checks for TAID: gradient identity, endpoints, proxy floor step, corollary root."""

import math

import numpy as np
import pytest

sp = pytest.importorskip("sympy")
from sdtheory.symbolic import taid as sym  # noqa: E402
from sdtheory.theory import taid  # noqa: E402


@pytest.mark.claim("taid.loss-gradient")
def test_cross_entropy_and_kl_gradients_agree_and_equal_q_minus_p():
    gap, closed = sym.derive_gradient_gap(3)
    assert all(sp.simplify(g) == 0 for g in gap)
    assert all(sp.simplify(c) == 0 for c in closed)


@pytest.mark.claim("taid.loss-ends")
def test_endpoints_zero_and_forward_kl():
    at_zero, at_one = sym.derive_endpoints(3)
    assert sp.simplify(at_zero) == 0
    # the t = 1 difference may stay as an unsimplified log-sum; check it numerically at random
    # logits as well (a wrong objective gives O(1) values here)
    free = sorted(at_one.free_symbols, key=str)
    f = sp.lambdify(free, at_one, "numpy")
    rng = np.random.default_rng(0)
    for _ in range(5):
        assert abs(f(*rng.normal(size=len(free)) * 3)) < 1e-12


@pytest.mark.claim("taid.proxy-floor")
def test_floor_step_factorises_into_nonnegative_products():
    lower, upper, lower_exp, upper_exp = sym.derive_floor_step()
    assert sp.simplify(lower - lower_exp) == 0
    assert sp.simplify(upper - upper_exp) == 0
    # the factors are non-negative on the domain: check at the corners and inside
    a, abar, t, T = sp.symbols("a abar t T", nonnegative=True)
    for vals in [(0, 0, 0, 5), (1, 1, 5, 5), (0.3, 0.9, 2, 7), (0.999, 1, 1, 100)]:
        sub = dict(zip((a, abar, t, T), vals, strict=True))
        assert lower_exp.subs(sub) >= 0 and upper_exp.subs(sub) >= 0


@pytest.mark.claim("taid.proxy-noncollapse")
def test_noncollapse_root_matches_numpy():
    overlap, roots = sym.derive_noncollapse_root()
    r0, kappa, T = sp.symbols("r0 kappa T", positive=True)
    assert sp.expand(overlap - (r0**2 - r0 - T * (1 + kappa))) == 0
    assert len(roots) == 1
    for k, n in ((4.0, 100), (1.0, 3), (25.0, 40)):
        val = float(roots[0].subs({kappa: k, T: n}))
        assert math.isclose(val, taid.noncollapse_r0(k, n), rel_tol=1e-14)
