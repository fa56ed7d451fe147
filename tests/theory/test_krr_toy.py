"""The Borup & Andersen toy table, pinned (regression fixture).

Values: test MSE against sin(2 pi x) on the notebook's 101-point grid, computed by
`sims/krr_toy.py` at its defaults (closed form) on 2026-11-28 and cross-checked there against
brute-force refits (agreement 3e-16). They are our computation of the notebook's setting
(`Kennethborup/self_distillation@cb20d6c`, `toy_example.ipynb`), not numbers quoted from the paper.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sdtheory.theory.krr import KernelSelfDistillation
from sims.krr_toy import Config, run, toy_problem

# rows: steps 1..6 and the limit; columns: alpha = 0, 0.25, 0.35 (sims/krr_toy.py, see above)
TOY_TABLE = {
    0.0: [
        0.1647734240,
        0.1507559455,
        0.1491544295,
        0.1556053036,
        0.1673515242,
        0.1825108632,
        0.4950495050,
    ],
    0.25: [
        0.1647734240,
        0.1530889056,
        0.1495763601,
        0.1490289319,
        0.1494595197,
        0.1501132320,
        0.1525015469,
    ],
    0.35: [
        0.1647734240,
        0.1542407528,
        0.1508851778,
        0.1498338126,
        0.1495353318,
        0.1494770208,
        0.1495877797,
    ],
}


@pytest.mark.paper("borup2021", "krr.closed-form-equals-refits")
def test_toy_table_is_pinned():
    res = run(Config())
    for alpha, expected in TOY_TABLE.items():
        got = [r["mse_theory"] for r in res["rows"] if r["alpha"] == alpha]
        sim = [r["mse_sim"] for r in res["rows"] if r["alpha"] == alpha]
        np.testing.assert_allclose(got, expected, rtol=0, atol=5e-11)
        np.testing.assert_allclose(sim, expected, rtol=0, atol=5e-11)


def test_alpha_zero_limit_is_the_zero_function():
    # MSE of f = 0 against sin(2 pi x) on 0, 0.01, ..., 1: sum sin^2 / 101 = 50/101 exactly
    assert math.isclose(TOY_TABLE[0.0][-1], 50 / 101, abs_tol=1e-10)


def test_toy_shrinkage_spread_matches_the_spec():
    # spec 1.2.4 (computed independently there): max/min of diag B at alpha = 0.35 for steps 1..6
    p = toy_problem(Config())
    sd = KernelSelfDistillation(p["kernel"], p["y"], p["lam"])
    spread = [sd.shrinkage(s, 0.35).max() / sd.shrinkage(s, 0.35).min() for s in range(1, 7)]
    np.testing.assert_allclose(spread, [1.803, 2.502, 2.852, 2.964, 2.985, 2.981], atol=6e-4)
    lim = sd.shrinkage(math.inf, 0.35)
    assert abs(lim.max() / lim.min() - 2.955) < 6e-4
