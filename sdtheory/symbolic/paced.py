r"""Sympy derivations behind `sdtheory.theory.paced` (our derivation; see `docs/theory/paced.md`).

* `derive_optimal_weights`: the stationarity condition of the weighted SNR gives $w^\star \propto
  s/v$, with value $\sum_i s_i^2/v_i$, and Lagrange's identity writes the Cauchy–Schwarz gap as a
  sum of squares (so it is the global maximum).
* `derive_two_point_floor`: the minimum of $\eta = (\mathbb E X)^2/\mathbb E X^2$ over
  $X \in [1-\delta, 1+\delta]$ is $1-\delta^2$: the Kantorovich bound and its two-point extreme.
* `derive_pointwise_floor`: $\Delta(w^\star(1+\varepsilon)) = (1-\varepsilon^2)\Delta^\star$.
* `derive_plugin_expectation`: $\mathbb E[\hat p(1-\hat p)] = (1-1/K)p(1-p)$ for symbolic $K$.

Each function returns a small dict of sympy expressions; tests compare them with the numeric code.
"""

from __future__ import annotations

import sympy as sp

__all__ = [
    "derive_optimal_weights",
    "derive_plugin_expectation",
    "derive_pointwise_floor",
    "derive_two_point_floor",
]


def derive_optimal_weights(n: int = 3) -> dict[str, object]:
    r"""Stationarity of $\mathrm{SNR}(w) = (\sum w_i s_i)^2/\sum w_i^2 v_i$ for $n$ problems.

    Returns:
      A dict with
      `snr` (the expression), `gradient` (its gradient in $w$), `gradient_at_optimum` (the
      gradient at $w_i = c\,s_i/v_i$, which simplifies to zeros), `value_at_optimum`
      (simplifies to $\sum s_i^2/v_i$), `lagrange_gap` ($\sum s^2/v\cdot\sum w^2 v - (\sum ws)^2$
      minus $\sum_{i<j}(a_ib_j-a_jb_i)^2$ with $a = s/\sqrt v$, $b = w\sqrt v$; expands to 0),
      and the symbols `w`, `s`, `v`, `c`.
    """
    w = sp.symbols(f"w0:{n}", real=True)
    s = sp.symbols(f"s0:{n}", positive=True)
    v = sp.symbols(f"v0:{n}", positive=True)
    c = sp.Symbol("c", positive=True)
    num = sum(wi * si for wi, si in zip(w, s, strict=True)) ** 2
    den = sum(wi**2 * vi for wi, vi in zip(w, v, strict=True))
    snr = num / den
    grad = [sp.diff(snr, wi) for wi in w]
    opt = {wi: c * si / vi for wi, si, vi in zip(w, s, v, strict=True)}
    grad_opt = [sp.simplify(g.subs(opt)) for g in grad]
    value = sp.simplify(snr.subs(opt))
    best = sum(si**2 / vi for si, vi in zip(s, v, strict=True))
    a = [si / sp.sqrt(vi) for si, vi in zip(s, v, strict=True)]
    b = [wi * sp.sqrt(vi) for wi, vi in zip(w, v, strict=True)]
    squares = sum((a[i] * b[j] - a[j] * b[i]) ** 2 for i in range(n) for j in range(i + 1, n))
    gap = sp.expand(best * den - num - squares)
    return {
        "snr": snr,
        "gradient": grad,
        "gradient_at_optimum": grad_opt,
        "value_at_optimum": value,
        "best": best,
        "lagrange_gap": gap,
        "w": w,
        "s": s,
        "v": v,
        "c": c,
    }


def derive_two_point_floor() -> dict[str, object]:
    r"""The efficiency floor $1-\delta^2$ as the extreme of the Kantorovich inequality.

    Two steps, both symbolic in $\delta$:

    1. Two-point distributions: $X = 1+\delta$ with probability $q$, $1-\delta$ otherwise.
       $\eta(q) = (\mathbb E X)^2/\mathbb E X^2$; $\partial_q\eta = 0$ at $q^\star = (1-\delta)/2$
       and $\eta(q^\star) = 1-\delta^2$, with $\mathbb E\varepsilon = -\delta^2$ there.
    2. Any $X \in [m, M]$: $(X-m)(M-X) \ge 0$ gives $\mathbb E X^2 \le (m+M)\mu - mM$ with
       $\mu = \mathbb E X$, so $\eta \ge g(\mu) = \mu^2/((m+M)\mu - mM)$; $g$ is minimised at
       $\mu^\star = 2mM/(m+M)$ with $g(\mu^\star) = 4mM/(m+M)^2$, which is $1-\delta^2$ at
       $m = 1-\delta$, $M = 1+\delta$. Two-point laws on $\{m, M\}$ make the first inequality an
       equality, so the floor is attained.

    Returns:
      A dict with `eta_q`, `q_star`, `eta_at_q_star`, `mean_eps_at_q_star`, `g_mu`, `mu_star`,
      `kantorovich` (= $4mM/(m+M)^2$), `floor` (at $m, M = 1\mp\delta$) and the symbols.
    """
    d = sp.Symbol("delta", positive=True)
    q = sp.Symbol("q", positive=True)
    M, m = 1 + d, 1 - d
    mean = q * M + (1 - q) * m
    second = q * M**2 + (1 - q) * m**2
    eta_q = mean**2 / second
    crit = sp.solve(sp.Eq(sp.diff(eta_q, q), 0), q)
    q_star = [r for r in crit if sp.simplify(r - (1 - d) / 2) == 0]
    q_star = q_star[0] if q_star else None
    eta_star = sp.simplify(eta_q.subs(q, q_star)) if q_star is not None else None
    mean_eps = sp.simplify((mean - 1).subs(q, q_star)) if q_star is not None else None

    mu, lo, hi = sp.symbols("mu m M", positive=True)
    g = mu**2 / ((lo + hi) * mu - lo * hi)
    mu_crit = [r for r in sp.solve(sp.Eq(sp.diff(g, mu), 0), mu) if r != 0]
    mu_star = mu_crit[0]
    kant = sp.simplify(g.subs(mu, mu_star))
    floor = sp.simplify(kant.subs({lo: 1 - d, hi: 1 + d}))
    return {
        "eta_q": eta_q,
        "q_star": q_star,
        "eta_at_q_star": eta_star,
        "mean_eps_at_q_star": mean_eps,
        "g_mu": g,
        "mu_star": mu_star,
        "kantorovich": kant,
        "floor": floor,
        "delta": d,
        "q": q,
        "mu": mu,
        "m": lo,
        "M": hi,
    }


def derive_pointwise_floor() -> dict[str, object]:
    r"""One SGD step: $\Delta(w) = \eta w s^2 - \tfrac{L\eta^2}{2}w^2(s^2+v)$.

    Returns:
      A dict with `progress`, `w_star` (the stationary point), `best` ($\Delta(w^\star)$) and
      `ratio` ($\Delta(w^\star(1+\varepsilon))/\Delta^\star$, which simplifies to
      $1-\varepsilon^2$).
    """
    w, eps = sp.symbols("w epsilon", real=True)
    s, v, lr, L = sp.symbols("s v eta L", positive=True)
    progress = lr * w * s**2 - L * lr**2 / 2 * w**2 * (s**2 + v)
    w_star = sp.solve(sp.Eq(sp.diff(progress, w), 0), w)[0]
    best = sp.simplify(progress.subs(w, w_star))
    ratio = sp.simplify(progress.subs(w, w_star * (1 + eps)) / best)
    return {
        "progress": progress,
        "w_star": w_star,
        "best": best,
        "ratio": ratio,
        "symbols": (w, s, v, lr, L, eps),
    }


def derive_plugin_expectation(k_values: tuple[int, ...] = (1, 2, 3, 4, 8)) -> dict[str, object]:
    r"""$\mathbb E[\hat p(1-\hat p)]$ for $\hat p = S/K$, $S \sim \mathrm{Bin}(K, p)$.

    Symbolic $K$: the factorial moments come from the probability generating function
    $G(z) = (1-p+pz)^K$: $\mathbb E S = G'(1) = Kp$, $\mathbb E S(S-1) = G''(1) = K(K-1)p^2$,
    so $\mathbb E[\hat p - \hat p^2] = p - (\mathbb E S(S-1) + \mathbb E S)/K^2 = (1-1/K)p(1-p)$.
    For each concrete $K$ in `k_values` the binomial sum is also expanded explicitly.

    Returns:
      A dict with `general` (the expectation for symbolic K, simplified), `claimed`
      ($(1-1/K)p(1-p)$), `explicit` ({K: expanded sum}), `unbiased_explicit`
      ({K: E[K/(K-1) p̂(1-p̂)]} for K >= 2) and the symbols `p`, `K`.
    """
    p = sp.Symbol("p", positive=True)
    K = sp.Symbol("K", positive=True, integer=True)
    z = sp.Symbol("z")
    G = (1 - p + p * z) ** K
    m1 = sp.simplify(sp.diff(G, z).subs(z, 1))
    m2f = sp.simplify(sp.diff(G, z, 2).subs(z, 1))
    general = sp.simplify(m1 / K - (m2f + m1) / K**2)
    claimed = (1 - 1 / K) * p * (1 - p)
    explicit, unbiased = {}, {}
    for k in k_values:
        terms = [
            sp.binomial(k, j)
            * p**j
            * (1 - p) ** (k - j)
            * sp.Rational(j, k)
            * (1 - sp.Rational(j, k))
            for j in range(k + 1)
        ]
        explicit[k] = sp.expand(sum(terms))
        if k >= 2:
            unbiased[k] = sp.expand(sp.Rational(k, k - 1) * explicit[k])
    return {
        "general": general,
        "claimed": claimed,
        "explicit": explicit,
        "unbiased_explicit": unbiased,
        "p": p,
        "K": K,
    }
