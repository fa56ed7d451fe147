r"""Sympy proofs of the identities behind the certificate in `sdtheory.theory.krr_scale`.

All are [derived] (`docs/theory/krr.md` §6). Notation: $P=\mathbf K(\mathbf K+\lambda I)^{-1}$,
$\tilde y=\tilde t-\lambda\tilde u$ (computed predictions, target and dual vector),
$g=\mathbf K\tilde u-\tilde y$ (true residual).

- `prove_residual_identity`: $P\tilde t-\tilde y=(I-P)\,g$ for every symmetric $\mathbf K$ and all
  vectors (generic symbolic 3 x 3 matrices).
- `prove_error_unrolling`: the recursion $e_\tau=(1-\alpha_\tau)Pe_{\tau-1}+(I-P)g_\tau$,
  $e_0=0$, unrolls to $\sum_{j\le\tau}\beta_{\tau j}P^{\tau-j}(I-P)g_j$ with
  $\beta_{\tau j}=\prod_{l=j+1}^\tau(1-\alpha_l)$ (noncommutative symbols, $\tau\le$ `max_tau`).
- `prove_certificate_constants`: $\sup_{[0,1]}x^i(1-x)=i^i/(i+1)^{i+1}$ and
  $\sup_{[0,1]}x^{2i+1}(1-x)=(2i+1)^{2i+1}/(2i+2)^{2i+2}$ for symbolic $i>0$. The
  maximiser is the only critical point inside $(0,1)$, the function vanishes at the ends, and
  the second derivative there is negative.
- `prove_filter_substitution`: with $x=d/(d+\lambda)$, the eigenvalues of $P^i(I-P)$ are
  $x^i(1-x)$, and those of $P^i(I-P)\mathbf K^{1/2}$ are $\sqrt\lambda\,x^{i+1/2}(1-x)^{1/2}$.
  Their suprema over $d\ge0$ are therefore $c_i$ and $\sqrt\lambda\kappa_i$.
- `prove_sqrt_branch_scalar`: for $0\le m\le1$, $m^2\le m$. This gives
  $\|MK^{1/2}u\|^2\le u^\top Eu$ for $E=K^{1/2}MK^{1/2}$, $0\preceq M\preceq I$.

Each `prove_*` returns `True` or raises `AssertionError` with the residual.
"""

from __future__ import annotations

import sympy as sp

__all__ = [
    "prove_certificate_constants",
    "prove_error_unrolling",
    "prove_filter_substitution",
    "prove_residual_identity",
    "prove_sqrt_branch_scalar",
]


def _assert_zero(expr, what: str) -> bool:
    res = sp.simplify(expr)
    if res != 0:
        raise AssertionError(f"{what}: residual {res} does not vanish")
    return True


def prove_residual_identity(dim: int = 3) -> bool:
    r"""$P\tilde t-(\tilde t-\lambda\tilde u)=(I-P)(\mathbf K\tilde u-\tilde t+\lambda\tilde u)$."""
    lam = sp.symbols("lambda", positive=True)
    ks = sp.symbols(f"k0:{dim * dim}")
    k = sp.Matrix(dim, dim, lambda i, j: ks[min(i, j) * dim + max(i, j)])  # symmetric
    t = sp.Matrix(sp.symbols(f"t0:{dim}"))
    u = sp.Matrix(sp.symbols(f"u0:{dim}"))
    eye = sp.eye(dim)
    inv = (k + lam * eye).inv()
    p = k * inv
    y = t - lam * u
    lhs = p * t - y
    rhs = (eye - p) * (k * u - y)
    for i in range(dim):
        _assert_zero(sp.together(lhs[i] - rhs[i]), f"residual identity, row {i}")
    return True


def prove_error_unrolling(max_tau: int = 6) -> bool:
    r"""The error recursion unrolls to $\sum_j\beta_{\tau j}P^{\tau-j}(I-P)g_j$, $\tau\le$ max_tau."""
    p = sp.Symbol("P", commutative=False)
    one = sp.Integer(1)
    g = [sp.Symbol(f"g{j}", commutative=False) for j in range(1, max_tau + 1)]
    al = sp.symbols(f"alpha1:{max_tau + 1}")
    e = sp.Integer(0)
    for tau in range(1, max_tau + 1):
        e = sp.expand((1 - al[tau - 1]) * p * e + (one - p) * g[tau - 1])
        closed = sp.Integer(0)
        for j in range(1, tau + 1):
            beta = sp.Mul(*[(1 - al[m - 1]) for m in range(j + 1, tau + 1)])
            closed += beta * p ** (tau - j) * (one - p) * g[j - 1]
        _assert_zero(sp.expand(e - closed), f"unrolling at tau = {tau}")
    return True


def prove_certificate_constants() -> bool:
    r"""Suprema of $x^i(1-x)$ and $x^{2i+1}(1-x)$ on $[0,1]$ for symbolic $i>0$."""
    x, i = sp.symbols("x i", positive=True)
    for f, arg, value in (
        (x**i * (1 - x), i / (i + 1), i**i / (i + 1) ** (i + 1)),
        (
            x ** (2 * i + 1) * (1 - x),
            (2 * i + 1) / (2 * i + 2),
            (2 * i + 1) ** (2 * i + 1) / (2 * i + 2) ** (2 * i + 2),
        ),
    ):
        # f = x^a (1 - x): f' x (1 - x) / f = a - (a + 1) x, whose only root is `arg`
        bracket = sp.simplify(sp.diff(f, x) * x * (1 - x) / f)
        root = sp.solve(sp.Eq(bracket, 0), x)
        if [sp.simplify(r - arg) for r in root] != [0]:
            raise AssertionError(f"critical points {root}, expected only {arg}")
        at = sp.powsimp(sp.expand_power_base(f.subs(x, arg), force=True))
        _assert_zero(at - value, "value at the maximiser")
        d2 = sp.simplify(sp.diff(f, x, 2).subs(x, arg) / f.subs(x, arg))
        # f(arg) > 0, so the sign of d2 is that of f''(arg): negative for every i > 0
        if not sp.simplify(d2).is_negative:
            raise AssertionError(f"second derivative ratio {d2} is not negative")
        for end in (0, 1):
            if sp.limit(f, x, end, "+" if end == 0 else "-") != 0:
                raise AssertionError(f"f does not vanish at {end}")
    return True


def prove_filter_substitution() -> bool:
    r"""With $d=\lambda x/(1-x)$: $(d/(d+\lambda))^i\lambda/(d+\lambda)=x^i(1-x)$ and
    $(d/(d+\lambda))^i\,\lambda\sqrt d/(d+\lambda)=\sqrt\lambda\,x^{i+1/2}(1-x)^{1/2}$."""
    x, lam, i = sp.symbols("x lambda i", positive=True)
    d = lam * x / (1 - x)
    a = sp.simplify(d / (d + lam))
    one_minus = sp.simplify(lam / (d + lam))
    _assert_zero(a - x, "d/(d+lam) = x")
    _assert_zero(one_minus - (1 - x), "lam/(d+lam) = 1 - x")
    lhs = one_minus * sp.sqrt(d)
    rhs = sp.sqrt(lam) * sp.sqrt(x) * sp.sqrt(1 - x)
    # both sides positive for 0 < x < 1: compare squares
    _assert_zero(sp.simplify(lhs**2 - rhs**2), "(I-P) K^(1/2) on an eigenvector")
    return True


def prove_sqrt_branch_scalar() -> bool:
    r"""$m-m^2=m(1-m)\ge0$ on $[0,1]$ (spectral form of $M^2\preceq M$)."""
    m = sp.symbols("m", nonnegative=True)
    expr = sp.factor(m - m**2)
    if sp.simplify(expr - m * (1 - m)) != 0:
        raise AssertionError(f"m - m^2 = {expr}")
    s = sp.symbols("s", positive=True)  # m = s/(1+s) covers (0, 1)
    if not sp.simplify((m - m**2).subs(m, s / (1 + s))).is_positive:
        raise AssertionError("m - m^2 is not positive on (0, 1)")
    return True
