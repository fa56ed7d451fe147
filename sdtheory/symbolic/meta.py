r"""Sympy derivations behind `sdtheory.theory.meta` (anchored recursive distillation).

Each `derive_*` returns sympy expressions; `tests/symbolic/test_meta_symbolic.py` simplifies the
identities to zero and compares lambdified forms with the numeric code at random points. All of
this is our own derivation (`derived`), consistent with the abstract of Flouro & Chadwick
(arXiv:2601.13100), which states contraction and a unique fixed point without formulas.

* `derive_arithmetic_iterate`: solving $q_{n+1} = \lambda p + (1-\lambda) q_n$ gives
  $q_n = p + (1-\lambda)^n (q_0 - p)$.
* `derive_geometric_log_ratio`: with $r_n = \log q_n - \log p$ and
  $\log q_{n+1} = \lambda\log p + (1-\lambda)\log q_n - \log Z_n$, differences
  $r_{n,i} - r_{n,j}$ obey $d_{n+1} = (1-\lambda) d_n$, so
  $r_n = (1-\lambda)^n r_0 + c_n$ (a constant over outcomes). `geometric_two_step_residual`
  checks this on an explicit three-outcome iterate.
* `derive_two_point_kl_contraction`: on two outcomes, $g(\lambda) = (1-\lambda)\mathrm{KL}(p\|q) -
  \mathrm{KL}(p\|\lambda p + (1-\lambda) q)$ vanishes at $\lambda\in\{0,1\}$ and is concave,
  because $\partial_\lambda^2 \mathrm{KL}(p\|m_\lambda) = \sum_i p_i (p_i-q_i)^2/m_i^2 \ge 0$; hence
  $g \ge 0$, the one-step contraction.
* `derive_fixed_point`: $\Phi_\lambda(p, q) = q$ has the single solution $q = p$ for $\lambda > 0$.
* `derive_finite_sample_variance`: the per-outcome variance recursion of finite-sample
  generations, $s_{n+1} = (1-\lambda)^2(1-1/N) s_n + \sigma_0^2/N$, solved in closed form.
"""

from __future__ import annotations

import sympy as sp

lam, n = sp.symbols("lambda n", nonnegative=True)
p, q0 = sp.symbols("p q_0", positive=True)
N = sp.symbols("N", positive=True)


def derive_arithmetic_iterate() -> sp.Expr:
    r"""$q_n$ solving $q_{n+1} = \lambda p + (1-\lambda) q_n$, $q_0$ given (one coordinate)."""
    k = sp.symbols("k", integer=True, nonnegative=True)
    f = sp.Function("q")
    sol = sp.rsolve(f(k + 1) - lam * p - (1 - lam) * f(k), f(k), {f(0): q0})
    return sp.simplify(sol.subs(k, n))


def arithmetic_iterate_closed_form() -> sp.Expr:
    r"""The form used by the numeric code: $p + (1-\lambda)^n (q_0 - p)$."""
    return p + (1 - lam) ** n * (q0 - p)


def derive_geometric_log_ratio() -> sp.Expr:
    r"""$d_n$ solving $d_{n+1} = (1-\lambda) d_n$ with $d_0 = r_{0,i} - r_{0,j}$.

    The normaliser $\log Z_n$ is the same for every outcome, so it cancels in differences.
    """
    k = sp.symbols("k", integer=True, nonnegative=True)
    d0 = sp.symbols("d_0", real=True)
    f = sp.Function("d")
    sol = sp.rsolve(f(k + 1) - (1 - lam) * f(k), f(k), {f(0): d0})
    return sp.simplify(sol.subs(k, n))


def geometric_log_ratio_closed_form() -> sp.Expr:
    r"""$(1-\lambda)^n (\log q_0 - \log p)$: $\log(q_n/p)$ up to an outcome-independent constant."""
    return (1 - lam) ** n * (sp.log(q0) - sp.log(p))


def geometric_two_step_residual() -> list[sp.Expr]:
    r"""For three outcomes, $[r_{2,i} - r_{2,0}] - (1-\lambda)^2 [r_{0,i} - r_{0,0}]$, $i = 1, 2$.

    The iterate is built explicitly (two geometric anchoring steps with normalisation); each
    residual must simplify to 0.
    """
    ps = sp.symbols("p_0:3", positive=True)
    qs = sp.symbols("q_0:3", positive=True)
    lt = sp.symbols("lambda", positive=True)  # strict: 0 < lambda for the powers

    def step(q):
        un = [ps[i] ** lt * q[i] ** (1 - lt) for i in range(3)]
        z = sum(un)
        return [u / z for u in un]

    q2 = step(step(list(qs)))
    out = []
    for i in (1, 2):
        r2 = sp.log(q2[i] / ps[i]) - sp.log(q2[0] / ps[0])
        r0 = sp.log(qs[i] / ps[i]) - sp.log(qs[0] / ps[0])
        out.append(sp.simplify(sp.expand_log(r2 - (1 - lt) ** 2 * r0, force=True)))
    return out


def derive_two_point_kl_contraction() -> dict[str, sp.Expr]:
    r"""Two-point case of $\mathrm{KL}(p\|\lambda p+(1-\lambda)q)\le(1-\lambda)\mathrm{KL}(p\|q)$.

    Returns:
      `gap` $g(\lambda)$, `gap_at_0`, `gap_at_1`, `kl_second_derivative`
      $\partial_\lambda^2 \mathrm{KL}(p\|m_\lambda)$ and `sum_of_squares`, the non-negative form
      $a(a-b)^2/m_1^2 + (1-a)(a-b)^2/m_2^2$ it must equal, with $p=(a,1-a)$, $q=(b,1-b)$.
    """
    a, b = sp.symbols("a b", positive=True)
    m1 = lam * a + (1 - lam) * b
    m2 = lam * (1 - a) + (1 - lam) * (1 - b)

    def kl2(x, y1, y2):
        return x * sp.log(x / y1) + (1 - x) * sp.log((1 - x) / y2)

    kl_m = kl2(a, m1, m2)
    gap = (1 - lam) * kl2(a, b, 1 - b) - kl_m
    d2 = sp.diff(kl_m, lam, 2)
    sos = a * (a - b) ** 2 / m1**2 + (1 - a) * (a - b) ** 2 / m2**2
    return {
        "gap": gap,
        "gap_at_0": sp.simplify(gap.subs(lam, 0)),
        "gap_at_1": sp.simplify(gap.subs(lam, 1)),
        "kl_second_derivative": d2,
        "sum_of_squares": sos,
        "a": a,
        "b": b,
    }


def derive_fixed_point() -> list[sp.Expr]:
    r"""Solutions $q$ of $\lambda p + (1-\lambda) q = q$ for symbolic $\lambda > 0$."""
    q = sp.symbols("q", real=True)
    lp = sp.symbols("lambda", positive=True)
    return sp.solve(sp.Eq(lp * p + (1 - lp) * q, q), q)


def derive_finite_sample_variance() -> sp.Expr:
    r"""$s_n$ solving $s_{n+1} = (1-\lambda)^2(1-1/N)s_n + \sigma_0^2/N$, $s_0 = 0$.

    $s_n$ is the covariance $\mathrm{Cov}(q_n)$ along one direction with $\sigma_0^2$ the
    multinomial variance of $p_0$; summed with weights $1/p_{0,i}$ it gives
    `sdtheory.theory.meta.finite_sample_chi2` ($\sum_i \sigma_{0,i}^2/p_{0,i} = k-1$).
    """
    k = sp.symbols("k", integer=True, nonnegative=True)
    s0 = sp.symbols("sigma_0^2", positive=True)
    f = sp.Function("s")
    a = (1 - lam) ** 2 * (1 - 1 / N)
    sol = sp.rsolve(f(k + 1) - a * f(k) - s0 / N, f(k), {f(0): 0})
    return sp.simplify(sol.subs(k, n))


def lambdify(expr: sp.Expr, args) -> object:
    """`sympy.lambdify(args, expr, "numpy")`: the bridge the tests use against numeric code."""
    return sp.lambdify(args, expr, "numpy")
