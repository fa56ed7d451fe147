r"""Closed-form values and student-log-probability gradients of the full-vocabulary divergences.

Used by `DivergenceSpec.value_and_logit_grad`, hence by the plain path (`token_divergence`,
`distillation_loss`, through a custom autograd function) and by the fused loss. Autograd of
`DivergenceSpec.from_log_probs` stays the reference: the tests compare the two at $10^{-10}$ in
float64 and against finite differences.

**Notation.** $s = \mathrm{softmax}(z_s/\tau)$, $t = \mathrm{softmax}(z_t/\tau)$ on the vocabulary,
$\ell_s = \log s$, $\ell_t = \log t$, $d = \ell_t - \ell_s$ (elementwise),
$\varphi(u) = e^u - 1 - u \ge 0$. For a mixture $m = w\,t + (1-w)\,s$ let
$u_s = \log(m/s)$ and $u_t = \log(m/t)$, so that $s\,e^{u_s} = t\,e^{u_t} = m$. The teacher is a
constant; $g = \partial D/\partial \ell_s$ and $v$ indexes the vocabulary.

**Values.** The reference sums the generalised terms $p\,\varphi(\log q - \log p)$; here:

* forward KL, $\sum_v t\,\varphi(-d) = \sum_v \big[(s - t) + t\,d\big]$;
* reverse KL, $\sum_v s\,\varphi(d) = \sum_v \big[(t - s) - s\,d\big]$;
* skew KL, $m = \alpha t + (1-\alpha) s$: $\sum_v t\,\varphi(u_t)$ term by term, as
  $t\,(\mathrm{expm1}(u_t) - u_t)$ for $u_t \le 2$ and $(1-\alpha)(s - t) - t\,u_t$ for
  $u_t \ge 1$ (no overflow), blended on $[1, 2]$: near $\alpha = 1$ the classic
  $-\sum_v t\,u_t$ would cancel to $O((1-\alpha)^2)$ from terms of order $1-\alpha$;
* generalised JSD, $m = \beta t + (1-\beta) s$:
  $\beta\sum_v t\,\varphi(u_t) + (1-\beta)\sum_v s\,\varphi(u_s)
  = -\sum_v \big(\beta\,t\,u_t + (1-\beta)\,s\,u_s\big)$, because per element
  $\beta(m - t) + (1-\beta)(m - s) = 0$ (each element is $m\,\mathrm{KL}(\mathrm{Bern}(\beta t/m)
  \,\|\,\mathrm{Bern}(\beta)) \ge 0$); normalised, it is divided by $\beta(1-\beta)$;
* TVD, $\tfrac12\sum_v |s - t|$.

The $(s - t)$ terms sum to zero mathematically but are kept, computed from $d$ (below): the two
log-normalisers are rounded separately, which shifts $d$ by a constant $c$ of a few ulps of
$\log V$; with them the KL values move by $O(c\cdot\mathrm{KL})$, without them by $c$ itself
(a relative error of 100% when a float32 student is within $10^{-6}$ of its teacher). The JSD
form is insensitive to that shift to first order as it stands.

**Gradients** (our derivation). With $\partial\ell_{m}/\partial\ell_s = (1-w)\,s/m$ elementwise,
$t\,\varphi'(u_t) = m - t$ and $s\,\varphi'(u_s) = m - s$:

* forward KL: $g = t\,\varphi'(\ell_s - \ell_t) = s - t$;
* reverse KL: $g = s\,\varphi(-d) - s\,\varphi'(-d) = -s\,(\ell_t - \ell_s) = s\,(\ell_s - \ell_t)$;
* JSD: $g = \big[\beta(m - t) + (1-\beta)(m - s)\big](1-\beta)\frac{s}{m}
  + (1-\beta)\big[s\,\varphi(u_s) - (m - s)\big] = -(1-\beta)\,s\,u_s$; normalised,
  $g = -s\,u_s/\beta$ (at $\beta = 0$, $1$ the normalised JSD is the forward, reverse KL);
* skew KL: $g = (m - t)(1-\alpha)\frac{s}{m} = -(1-\alpha)\,s\,\mathrm{expm1}(-u_t)$;
* TVD: $g = \tfrac12\,s\,\mathrm{sign}(s - t)$ (a subgradient, 0 where $s = t$).

**Softmax and temperature.** $\ell_s = z_s/\tau - \operatorname{logsumexp}(z_s/\tau)$ gives
$\partial\ell_{s,v}/\partial z_{s,w} = (\delta_{vw} - s_w)/\tau$, hence
$\partial D/\partial z_{s,w} = (g_w - s_w\sum_v g_v)/\tau$. No $\tau^2$ factor is applied.

**Numerics.** Both mixture offsets are one function,
$u_s = L(w, d)$ and $u_t = L(1-w, -d)$ with $L(w, x) = \log(1 - w + w\,e^{x})$, evaluated as
`log1p(w * expm1(x))` for $|x| \le 2$ (no cancellation: the argument of `log1p` is above
$e^{-2} - 1$) and as `logaddexp(log(1 - w), log(w) + x)` for $|x| \ge 1$ (no overflow, and exact
relative accuracy when $w$ is tiny or close to 1), blended linearly in $|x|$ on $[1, 2]$ where
both are accurate. $L(w, 0) = 0$ exactly, so a teacher equal to the student gives $u \equiv 0$,
hence an exactly zero value and gradient. The forward-KL gradient $s - t$ is evaluated as
$t\,\mathrm{expm1}(-\max(d, 0)) - s\,\mathrm{expm1}(\min(d, 0))$: relatively accurate when
$s \approx t$, no overflow at logits of $\pm 10^4$. No operation branches per element: on CPU,
`torch.where` on an unpredictable mask costs about twenty arithmetic passes.
"""

from __future__ import annotations

import math

import torch


def _log_mix(x: torch.Tensor, w: float, log_w: float, log_1mw: float) -> torch.Tensor:
    r"""$\log(1 - w + w\,e^{x})$ elementwise for a constant $0 < w < 1$ (see the module docstring).

    `log_w` and `log_1mw` are $\log w$ and $\log(1-w)$, passed separately so that $w$ within
    rounding of 0 or 1 keeps both logarithms exact.
    """
    near = x.clamp(-2.0, 2.0).expm1_().mul_(w).log1p_()
    far = x + log_w
    torch.logaddexp(far, torch.tensor(log_1mw, dtype=x.dtype, device=x.device), out=far)
    ramp = x.abs().sub_(1.0).clamp_(0.0, 1.0)
    return far.sub_(near).mul_(ramp).add_(near)


def _mix_offsets(d: torch.Tensor, w: float, need_s: bool = True):
    r"""$(u_s, u_t) = (\log(m/s), \log(m/t))$ for $m = w\,t + (1-w)\,s$ and $d = \log t - \log s$.

    Consumes `d`. For $\tfrac14 \le w \le \tfrac34$ (GKD's usual $\beta = 0.5$) in 12 passes:
    with $a = L(w, \min(d, 0))$ and $b = L(1-w, -\max(d, 0))$, both `log1p(c * expm1(x))` with
    $x \le 0$ and $c \le \tfrac34$ (so $1 + c\,\mathrm{expm1}(x) \ge \tfrac14$: no cancellation,
    no overflow), $u_s = a + b + \max(d, 0)$ and $u_t = a + b - \min(d, 0)$; adding $|d|$ to the
    offset of the more likely side loses at most a factor $1/\min(w, 1-w) \le 4$ in relative
    accuracy. Outside that range, both offsets by `_log_mix`. `u_s` is None unless `need_s`.
    """
    if 0.25 <= w <= 0.75:
        pos = d.clamp(min=0.0)
        neg = d.clamp_(max=0.0)
        r = neg.expm1().mul_(w).log1p_()
        r.add_(torch.neg(pos).expm1_().mul_(1.0 - w).log1p_())
        u_s = r + pos if need_s else None
        return u_s, r.sub_(neg)
    log_w, log_1mw = math.log(w), math.log1p(-w)
    u_s = _log_mix(d, w, log_w, log_1mw) if need_s else None
    return u_s, _log_mix(d.neg_(), 1.0 - w, log_1mw, log_w)


def _s_minus_t(s: torch.Tensor, t: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    r"""$s - t$ elementwise as $t\,\mathrm{expm1}(-\max(d, 0)) - s\,\mathrm{expm1}(\min(d, 0))$.

    Relatively accurate when $s \approx t$, no overflow, and computed from $d$ like the offsets,
    so that a rounding offset in one log-normaliser cancels to first order in the values.
    """
    out = d.clamp(min=0.0).neg_().expm1_().mul_(t)
    return out.sub_(d.clamp(max=0.0).expm1_().mul_(s))


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """$\\sum_v a_v b_v$ over the last axis of two (rows, V) tensors, without a temporary."""
    return torch.einsum("rv,rv->r", a, b)


def full_vocab_value_and_grad(
    ls: torch.Tensor,
    lt: torch.Tensor,
    *,
    divergence: str,
    beta: float,
    normalized: bool,
    alpha: float,
    scale: float,
    need_grad: bool = True,
    out: torch.Tensor | None = None,
):
    r"""Per-row values and $\mathrm{scale}\cdot\partial D/\partial z_s$ from (rows, V) log-probabilities.

    `ls` and `lt` are normalised student and teacher log-probabilities (after the temperature);
    both are **overwritten**. `scale` is $1/\tau$. The gradient is written into `out` when given
    (it may alias the logits the log-probabilities came from); it is None when not `need_grad`.
    """
    div, b, a = divergence, beta, alpha
    zero = (div == "jsd" and b in (0.0, 1.0) and not normalized) or (div == "skew_kl" and a == 1.0)
    if div == "jsd" and b in (0.0, 1.0):
        div = "forward_kl" if b == 0.0 else "reverse_kl"
    if div == "skew_kl" and a == 0.0:
        div = "forward_kl"
    if zero:  # the raw JSD at beta in {0, 1}, KL(t || t) for alpha = 1
        value = ls.new_zeros(ls.shape[:-1])
        if not need_grad:
            return value, None
        return value, (out.zero_() if out is not None else torch.zeros_like(ls))

    d = lt - ls if div != "tvd" else None
    if div in ("forward_kl", "reverse_kl", "skew_kl"):
        s, t = ls.exp_(), lt.exp_()
        s_t = _s_minus_t(s, t, d)
    if div == "forward_kl":  # sum t phi(-d) = sum (s - t) + t d
        value = s_t.sum(-1).add_(_rowdot(t, d))
        g = s_t
    elif div == "reverse_kl":  # sum s phi(d) = sum (t - s) - s d
        g = d.mul_(s).neg_()
        value = g.sum(-1).sub_(s_t.sum(-1))
    elif div == "tvd":
        s = ls.exp_()
        g = s - lt.exp_()
        value = g.abs().sum(-1).mul_(0.5)
        g.sign_().mul_(s).mul_(0.5)
    elif div == "skew_kl":  # sum t phi(u_t), with t expm1(u_t) = m - t = (1 - alpha)(s - t)
        _, u_t = _mix_offsets(d, a, need_s=False)
        u_c = u_t.clamp(max=2.0)
        near = u_c.expm1().sub_(u_c).mul_(t)
        far = s_t.mul_(1.0 - a).sub_(t * u_t)
        ramp = u_t.sub(1.0).clamp_(0.0, 1.0)
        value = far.sub_(near).mul_(ramp).add_(near).sum(-1)
        g = u_t.neg_().expm1_().mul_(s).mul_(-(1.0 - a))
    else:  # jsd, 0 < beta < 1
        u_s, u_t = _mix_offsets(d, b)
        del d
        s = ls.exp_()
        to_t = _rowdot(lt.exp_(), u_t)  # sum t u_t
        g = u_s.mul_(s)  # s u_s
        to_s = g.sum(-1)
        if normalized:
            value = to_t.div_(-(1.0 - b)).sub_(to_s.div_(b))
            g.mul_(-1.0 / b)
        else:
            value = to_t.mul_(-b).sub_(to_s.mul_(1.0 - b))
            g.mul_(-(1.0 - b))
    if not need_grad:
        return value, None
    if scale != 1.0:
        g.mul_(scale)
    s.mul_(g.sum(-1, keepdim=True))
    if out is None:
        return value, g.sub_(s)
    return value, torch.sub(g, s, out=out)
