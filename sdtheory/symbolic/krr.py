r"""Sympy proofs of the closed forms in `sdtheory.theory.krr`.

Everything is per eigen-coordinate: with $a=d/(d+\lambda)$ the shrinkage factor of one ridge
fit, the weighted-ground-truth recursion of Borup & Andersen (2021) is
$b^{(1)}=a,\ b^{(\tau)}=a(\alpha+(1-\alpha)b^{(\tau-1)})$.

Proved here (all [derived]):

- `prove_closed_sum`: the closed sum equals the recursion, for symbolic $a,\alpha$ and every
  $\tau\le$ `max_tau` by expansion, and for symbolic $\tau$ by induction (base case and step).
- `prove_limit`: the fixed point of the recursion is $\alpha d/(\alpha d+\lambda)
  =d/(d+\lambda/\alpha)$: ridge with $\lambda/\alpha$.
- `prove_rate`: $b^{(\tau)}-b^{(\infty)}=((1-\alpha)a)^{\tau-1}(a-b^{(\infty)})$, so the rate is
  $(1-\alpha)a$.
- `prove_optimal_alpha`: the minimiser of $\|t-p-\alpha r\|^2$ is $\langle r,t-p\rangle/\|r\|^2$.
- `prove_mobahi_norm_drop`: per coordinate,
  $z^2-(dz/(c+d))^2-(cz/(c+d))^2=2cdz^2/(c+d)^2\ge0$, which gives $r_{t+1}^2\le r_t^2-1$.

Each `prove_*` returns `True` or raises `AssertionError` with the residual that did not vanish.
`shrinkage_function` lambdifies the closed sum for numeric comparison with the numpy module.
"""

from __future__ import annotations

import sympy as sp

a, alpha, d, lam, c, z = sp.symbols("a alpha d lambda c z", positive=True)
tau = sp.symbols("tau", integer=True, positive=True)

__all__ = [
    "derive_recursion",
    "derive_closed_sum",
    "derive_closed_geometric",
    "derive_limit",
    "prove_closed_sum",
    "prove_limit",
    "prove_rate",
    "prove_optimal_alpha",
    "prove_mobahi_norm_drop",
    "shrinkage_function",
]


def _zero(expr, what: str) -> bool:
    """Assert `expr == 0` identically.

    Powers with the symbolic exponent $\tau$ are split into $a^\tau$ and $(1-\alpha)^\tau$,
    which become fresh symbols; the rest is a rational function that `cancel` decides.
    """
    if expr.has(tau):
        beta, big_a, big_b = sp.symbols("beta A_tau B_tau", positive=True)
        e = expr.subs(alpha, 1 - beta)
        e = sp.expand_power_exp(sp.expand_power_base(e, force=True))
        e = e.subs({a**tau: big_a, beta**tau: big_b})
        if e.has(tau):
            raise AssertionError(f"{what}: could not eliminate tau from {e}")
        res = sp.cancel(sp.together(e))
    else:
        res = sp.simplify(sp.cancel(sp.together(sp.expand(expr))))
    if res != 0:
        raise AssertionError(f"{what}: residual {res} does not vanish")
    return True


def derive_recursion(t: int, a_=a, alpha_=alpha) -> sp.Expr:
    r"""$b^{(t)}$ by unrolling $b^{(1)}=a$, $b^{(\tau)}=a(\alpha+(1-\alpha)b^{(\tau-1)})$."""
    b = a_
    for _ in range(t - 1):
        b = a_ * (alpha_ + (1 - alpha_) * b)
    return sp.expand(b)


def derive_closed_sum(t: int | sp.Symbol, a_=a, alpha_=alpha) -> sp.Expr:
    r"""$(1-\alpha)^{t-1}a^t+\alpha\sum_{i=1}^{t-1}(1-\alpha)^{i-1}a^i$ (spec 1.2.2)."""
    i = sp.Dummy("i", integer=True, positive=True)
    return (1 - alpha_) ** (t - 1) * a_**t + alpha_ * sp.Sum(
        (1 - alpha_) ** (i - 1) * a_**i, (i, 1, t - 1)
    )


def derive_closed_geometric(t=tau, a_=a, alpha_=alpha) -> sp.Expr:
    r"""Geometric form: $\alpha a\,(1-q^{t-1})/(1-q)+(1-\alpha)^{t-1}a^t$, $q=(1-\alpha)a$.

    This is the form `KernelSelfDistillation` evaluates (with $1-q$ computed as
    $(\lambda+\alpha d)/(d+\lambda)$).
    """
    q = (1 - alpha_) * a_
    return alpha_ * a_ * (1 - q ** (t - 1)) / (1 - q) + (1 - alpha_) ** (t - 1) * a_**t


def derive_limit(d_=d, lam_=lam, alpha_=alpha) -> sp.Expr:
    r"""Fixed point $b^\star$ of $b\mapsto a(\alpha+(1-\alpha)b)$ with $a=d/(d+\lambda)$."""
    b = sp.Symbol("b")
    a_ = d_ / (d_ + lam_)
    (sol,) = sp.solve(sp.Eq(b, a_ * (alpha_ + (1 - alpha_) * b)), b)
    return sp.simplify(sol)


def prove_closed_sum(max_tau: int = 8) -> bool:
    r"""Closed sum = recursion: by expansion for $\tau=1..$`max_tau`, then by induction.

    Induction on the geometric form $G(\tau)$: $G(1)=a$ and
    $G(\tau+1)-a(\alpha+(1-\alpha)G(\tau))=0$ for symbolic $\tau$.
    """
    for t in range(1, max_tau + 1):
        _zero(derive_closed_sum(t).doit() - derive_recursion(t), f"closed sum, tau={t}")
        _zero(derive_closed_geometric(t) - derive_recursion(t), f"geometric vs recursion, tau={t}")
    g = derive_closed_geometric
    _zero(g(1) - a, "induction base")
    _zero(g(tau + 1) - a * (alpha + (1 - alpha) * g(tau)), "induction step")
    return True


def prove_limit() -> bool:
    r"""The fixed point equals $\alpha d/(\alpha d+\lambda)=d/(d+\lambda/\alpha)$, and for
    $0\le(1-\alpha)a<1$ the geometric form tends to it as $\tau\to\infty$."""
    lim = derive_limit()
    _zero(lim - alpha * d / (alpha * d + lam), "fixed point vs alpha d/(alpha d + lambda)")
    _zero(lim - d / (d + lam / alpha), "fixed point vs ridge with lambda/alpha")
    # tau -> infinity of the geometric form: drop the q^(tau-1) and (1-alpha)^(tau-1) a^tau terms
    a_ = d / (d + lam)
    q = (1 - alpha) * a_
    _zero(alpha * a_ / (1 - q) - lim, "limit of the geometric form")
    return True


def prove_rate() -> bool:
    r"""$b^{(\tau)}-b^{(\infty)}=((1-\alpha)a)^{\tau-1}(a-b^{(\infty)})$ for symbolic $\tau$,
    with $b^{(\infty)}=\alpha a/(1-(1-\alpha)a)$; the map's derivative is $(1-\alpha)a$."""
    b_inf = alpha * a / (1 - (1 - alpha) * a)
    q = (1 - alpha) * a
    _zero(derive_closed_geometric(tau) - b_inf - q ** (tau - 1) * (a - b_inf), "rate identity")
    b = sp.Symbol("b")
    _zero(sp.diff(a * (alpha + (1 - alpha) * b), b) - q, "derivative of the step map")
    return True


def prove_optimal_alpha(dim: int = 3) -> bool:
    r"""$\arg\min_\alpha\|t-p-\alpha r\|^2=\langle r,t-p\rangle/\|r\|^2$ (length-`dim` vectors)."""
    t = sp.Matrix(sp.symbols(f"t0:{dim}", real=True))
    p = sp.Matrix(sp.symbols(f"p0:{dim}", real=True))
    r = sp.Matrix(sp.symbols(f"r0:{dim}", real=True))
    al = sp.Symbol("alpha_star", real=True)
    loss = ((t - p - al * r).T * (t - p - al * r))[0]
    (sol,) = sp.solve(sp.diff(loss, al), al)
    _zero(sol - (r.T * (t - p))[0] / (r.T * r)[0], "stationary point")
    _zero(sp.diff(loss, al, 2) - 2 * (r.T * r)[0], "curvature 2||r||^2 >= 0")
    return True


def prove_mobahi_norm_drop() -> bool:
    r"""$z^2=(dz/(c+d))^2+(cz/(c+d))^2+2cdz^2/(c+d)^2$: the kept and removed parts of one
    coordinate are orthogonal up to a non-negative cross term, so
    $\|z_t\|^2\ge\|z_{t+1}\|^2+n\epsilon$."""
    kept, removed = d * z / (c + d), c * z / (c + d)
    _zero(z**2 - kept**2 - removed**2 - 2 * c * d * z**2 / (c + d) ** 2, "norm split")
    _zero(kept + removed - z, "kept + removed = z")
    return True


def shrinkage_function():
    r"""Numpy function `f(a, alpha, tau)` of the geometric closed form (via `sympy.lambdify`)."""
    return sp.lambdify((a, alpha, tau), derive_closed_geometric(tau), "numpy")
