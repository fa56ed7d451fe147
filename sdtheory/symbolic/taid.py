r"""Sympy derivations behind `sdtheory.theory.taid` and `sdtheory.lm.methods.taid`.

* `derive_gradient_gap`: with a detached target $p$, the gradients of the cross-entropy
  $-\sum_i p_i\log q_i$ and of $\mathrm{KL}(p\|q)$ in the student logits coincide, and both equal
  $q_j - p_j$ (on the simplex $\sum_i p_i = 1$).
* `derive_endpoints`: the TAID objective $\mathrm{KL}(p_t\|q)$ is 0 at $t=0$ and the forward KL
  $\mathrm{KL}(p\|q)$ at $t=1$.
* `derive_floor_step`: one step of the proxy recursion
  $\bar a_t=(1-\tfrac tT)\,a\,\bar a_{t-1}+\tfrac tT$ keeps $\bar a_t\in[t/T,1]$ whenever
  $a,\bar a_{t-1}\in[0,1]$, which gives the floor $\|\tilde z_t\|\ge\tfrac tT\|z_0\|$.
* `derive_noncollapse_root`: the windows overlap iff $r_0(r_0-1)\ge T(1+\kappa)$, whose positive
  root is $\tfrac12(1+\sqrt{1+4T(1+\kappa)})$.

All four are our own derivations (`derived`); the floor and the corollary restate the secondary
reconstruction of the paper's Section 4 (`docs/theory/taid.md`).
"""

from __future__ import annotations

import sympy as sp


def _softmax(z):
    den = sum(sp.exp(zi) for zi in z)
    return [sp.exp(zi) / den for zi in z]


def derive_gradient_gap(vocab: int = 3):
    """Returns `(gap, ce_minus_closed_form)`: lists over logits $z_j$ of
    $\\partial_j(\\mathrm{CE}-\\mathrm{KL})$ and $\\partial_j\\mathrm{CE}-(q_j-p_j)$, both after
    substituting $p_V = 1-\\sum_{i<V}p_i$. Each simplifies to 0."""
    z = sp.symbols(f"z0:{vocab}", real=True)
    p = list(sp.symbols(f"p0:{vocab - 1}", positive=True))
    p.append(1 - sum(p))
    q = _softmax(z)
    log_q = [zi - sp.log(sum(sp.exp(zk) for zk in z)) for zi in z]
    ce = -sum(pi * lq for pi, lq in zip(p, log_q, strict=True))
    kl = sum(pi * (sp.log(pi) - lq) for pi, lq in zip(p, log_q, strict=True))
    gap = [sp.simplify(sp.diff(ce - kl, zj)) for zj in z]
    closed = [sp.simplify(sp.diff(ce, zj) - (qj - pj)) for zj, qj, pj in zip(z, q, p, strict=True)]
    return gap, closed


def derive_endpoints(vocab: int = 3):
    """Returns `(at_zero, at_one_minus_fkl)` for the TAID objective with symbolic logits; both
    simplify to 0."""
    s = sp.symbols(f"s0:{vocab}", real=True)
    w = sp.symbols(f"w0:{vocab}", real=True)  # teacher logits
    t = sp.symbols("t", nonnegative=True)

    def objective(tv):
        mix = [(1 - tv) * si + tv * wi for si, wi in zip(s, w, strict=True)]
        pt = _softmax(mix)
        q = _softmax(s)
        return sum(a * (sp.log(a) - sp.log(b)) for a, b in zip(pt, q, strict=True))

    p = _softmax(w)
    q = _softmax(s)
    fkl = sum(a * (sp.log(a) - sp.log(b)) for a, b in zip(p, q, strict=True))
    at_zero = sp.simplify(objective(t).subs(t, 0))
    at_one = sp.simplify(sp.expand_log(objective(t).subs(t, 1) - fkl, force=True))
    return at_zero, at_one


def derive_floor_step():
    """Returns `(lower_gap, upper_gap, lower_expected, upper_expected)` where
    `lower_gap` $=\\bar a_t - t/T$ and `upper_gap` $=1-\\bar a_t$, with the factorised forms
    $(1-\\tfrac tT)\\,a\\,\\bar a_{t-1}$ and $(1-\\tfrac tT)(1-a\\,\\bar a_{t-1})$, products of
    non-negative factors when $0\\le a,\\bar a_{t-1}\\le1$ and $t\\le T$."""
    a, abar, t, T = sp.symbols("a abar t T", nonnegative=True)
    new = (1 - t / T) * a * abar + t / T
    lower_gap = new - t / T
    upper_gap = 1 - new
    return (
        sp.simplify(lower_gap),
        sp.simplify(upper_gap),
        (1 - t / T) * a * abar,
        (1 - t / T) * (1 - a * abar),
    )


def derive_noncollapse_root():
    """Returns `(overlap_condition, positive_root)`: the early window's end $(r_0-1)/(1+\\kappa)$
    (with $\\gamma=1$) minus the late window's start $T/r_0$, times $r_0(1+\\kappa)$, and the
    positive root in $r_0$ of $r_0(r_0-1)=T(1+\\kappa)$."""
    r0, kappa, T = sp.symbols("r0 kappa T", positive=True)
    overlap = sp.expand(sp.cancel(((r0 - 1) / (1 + kappa) - T / r0) * r0 * (1 + kappa)))
    roots = sp.solve(sp.Eq(r0 * (r0 - 1), T * (1 + kappa)), r0)
    # r0 = 1/2 +- sqrt(1 + 4T(1+kappa))/2: keep the root above 1/2 (the other is negative)
    return overlap, [r for r in roots if (r - sp.Rational(1, 2)).is_positive]
