r"""Per-token divergences between student and teacher logits, and sampled-token estimators (torch).

The conventions are those of `sdtheory.core._divergences`, with the teacher in the first slot:

| `divergence` | per token ($m = \beta t + (1-\beta)s$) | `sdtheory.core` reference |
|---|---|---|
| `"forward_kl"` | $\mathrm{KL}(t\|s)$ | `kl(log_t, log_s)` |
| `"reverse_kl"` | $\mathrm{KL}(s\|t)$ | `kl(log_s, log_t)` |
| `"jsd"` | $\beta\mathrm{KL}(t\|m)+(1-\beta)\mathrm{KL}(s\|m)$ | `generalized_jsd(lt, ls, β)` |
| `"skew_kl"` | $\mathrm{KL}(t\|\alpha t + (1-\alpha) s)$ | `skew_kl(log_t, log_s, alpha)` |
| `"tvd"` | $\tfrac12\sum_v \lvert t_v - s_v\rvert$ | `total_variation(log_t, log_s)` |

Every KL-type sum is evaluated term by term in the generalised form $p_v(e^{u_v} - 1 - u_v)$,
$u_v = \log q_v - \log p_v$ (as the numpy core does): each term is $\ge 0$, the sum equals the
KL for normalised inputs, and a teacher equal to the student gives $u \equiv 0$, hence *exactly*
zero loss and exactly zero gradient. Mixtures are formed as
$\log m = \log s + \log(1 + \beta(e^{d}-1))$ with $d = \log t - \log s$ (mirrored for $d > 0$),
which is exactly $\log s$ when $d = 0$.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...core._checks import check_positive_int
from ._closed_form import full_vocab_value_and_grad

DIVERGENCES = ("forward_kl", "reverse_kl", "jsd", "skew_kl", "tvd")
SUPPORTS = ("full", "teacher_topk", "student_topk_tail")
ESTIMATORS = ("k1", "k2", "k3", "advantage")

# Bytes per (rows, V) temporary of the closed-form pass: large enough that its few dozen passes
# per block cost little on a busy machine, small enough to be reused by the allocator.
BLOCK_BYTES = 2**24


# ----------------------------------------------------------------------------- argument checks


def _check_choice(value, choices, name: str) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _check_unit(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not (0.0 <= v <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return v


def _check_positive(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}") from None
    if not (v > 0.0 and math.isfinite(v)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def _check_float_tensor(x, name: str, min_dim: int = 1) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype, got {x.dtype}")
    if x.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimension(s), got shape {tuple(x.shape)}"
        )
    return x


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; float32, bfloat16 and float16 are computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


# ----------------------------------------------------------------------------- elementwise maths


def _gkl(lp: torch.Tensor, lq: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
    r"""Elementwise $p(e^u - 1 - u)$ with $u = \log q - \log p$ (so that $\sum$ is KL(p||q)).

    `u` may be passed when it is known more accurately than `lq - lp`. Branches as in the core:
    `expm1` for $u \le 1$ (no cancellation), $q - p - pu$ above (no overflow); the argument of
    `expm1` is clamped inside the unused branch only, so gradients stay finite.
    """
    if u is None:
        u = lq - lp
    p = lp.exp()
    small = p * (torch.expm1(u.clamp(max=1.0)) - u)
    large = lq.exp() - p - p * u
    return torch.where(u <= 1.0, small, large)


def _mix_offsets(lt: torch.Tensor, ls: torch.Tensor, w: float):
    r"""For $m = w\,t + (1-w)\,s$ with $0 < w < 1$: $(\log m - \log t,\ \log m - \log s,\ \log m)$.

    With $d = \log t - \log s$: for $d \le 0$, $\log m = \log s + \log((1-w) + w e^{d})$;
    for $d > 0$, $\log m = \log t + \log(w + (1-w) e^{-d})$. Where $|d| \le 1$ the offset is
    `log1p(w * expm1(d))` (resp. `log1p((1 - w) * expm1(-d))`): exactly 0 at $d = 0$, so a teacher
    equal to the student gives exactly zero loss. Where $|d| > 1$ it is a `logaddexp`, which stays
    exact when $w$ is tiny (or close to 1) and $e^{-|d|}$ is below the float epsilon, where
    `1 + w * expm1(...)` would round to 0.
    """
    d = lt - ls
    log_w, log_1mw = math.log(w), math.log1p(-w)
    a_near = torch.log1p(w * torch.expm1(d.clamp(min=-1.0, max=0.0)))
    a_far = torch.logaddexp(torch.full_like(d, log_1mw), log_w + d.clamp(max=-1.0))
    a = torch.where(d >= -1.0, a_near, a_far)
    b_near = torch.log1p((1.0 - w) * torch.expm1((-d).clamp(min=-1.0, max=0.0)))
    b_far = torch.logaddexp(torch.full_like(d, log_w), log_1mw - d.clamp(min=1.0))
    b = torch.where(d <= 1.0, b_near, b_far)
    neg = d <= 0
    u_t = torch.where(neg, a - d, b)
    u_s = torch.where(neg, a, b + d)
    lm = torch.where(neg, ls + a, lt + b)
    return u_t, u_s, lm


def _with_tail(z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of softmax(z) on the entries `idx` plus one bucket with the rest.

    The tail is the log-sum-exp of the logits *outside* `idx` minus the full log-sum-exp: exact,
    with no $\\log(1 - \\text{head})$ cancellation when the head holds almost all the mass.
    """
    lse = torch.logsumexp(z, dim=-1, keepdim=True)
    head = z.gather(-1, idx) - lse
    rest = z.scatter(-1, idx, float("-inf"))
    tail = torch.logsumexp(rest, dim=-1, keepdim=True) - lse
    return torch.cat([head, tail], dim=-1)


# ----------------------------------------------------------------------------- the specification


@dataclass(frozen=True)
class DivergenceSpec:
    """A validated choice of divergence, its parameters, temperature and support.

    Built by `token_divergence` and the fused loss from their keyword arguments; see
    `token_divergence` for the meaning of each field.
    """

    divergence: str = "forward_kl"
    beta: float = 0.5
    normalized: bool = False
    alpha: float = 0.1
    temperature: float = 1.0
    support: str = "full"
    k: int | None = None

    def __post_init__(self):
        _check_choice(self.divergence, DIVERGENCES, "divergence")
        object.__setattr__(self, "beta", _check_unit(self.beta, "beta"))
        object.__setattr__(self, "alpha", _check_unit(self.alpha, "alpha"))
        object.__setattr__(self, "temperature", _check_positive(self.temperature, "temperature"))
        if not isinstance(self.normalized, bool):
            raise ValueError(f"normalized must be a bool, got {self.normalized!r}")
        _check_choice(self.support, SUPPORTS, "support")
        if self.support == "full":
            if self.k is not None:
                raise ValueError(
                    f"k is only used with a top-k support, got k={self.k!r} with support='full'"
                )
        else:
            k = check_positive_int(self.k, f"k (for support={self.support!r})")
            object.__setattr__(self, "k", k)

    def check_vocab(self, vocab: int) -> None:
        if self.support == "teacher_topk" and self.k > vocab:
            raise ValueError(f"k must be at most the vocabulary size {vocab}, got {self.k}")
        if self.support == "student_topk_tail" and self.k >= vocab:
            raise ValueError(
                f"k must be below the vocabulary size {vocab} for support='student_topk_tail' "
                f"(the tail bucket would be empty), got {self.k}"
            )

    # -- log-probabilities on the support ------------------------------------------------------
    def log_probs(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor):
        """(log s, log t) on the support, computed in float32 or float64 after the temperature."""
        cd = _compute_dtype(student_logits.dtype)
        zs = student_logits.to(cd)
        zt = teacher_logits.to(cd)
        if self.temperature != 1.0:
            zs = zs / self.temperature
            zt = zt / self.temperature
        if self.support == "full":
            return torch.log_softmax(zs, dim=-1), torch.log_softmax(zt, dim=-1)
        if self.support == "teacher_topk":
            idx = zt.detach().topk(self.k, dim=-1).indices
            return (
                torch.log_softmax(zs.gather(-1, idx), dim=-1),
                torch.log_softmax(zt.gather(-1, idx), dim=-1),
            )
        idx = zs.detach().topk(self.k, dim=-1).indices  # student_topk_tail
        return _with_tail(zs, idx), _with_tail(zt, idx)

    # -- the divergence on log-probabilities ---------------------------------------------------
    def from_log_probs(self, ls: torch.Tensor, lt: torch.Tensor) -> torch.Tensor:
        """Per-token divergence from normalised log-probabilities (last axis reduced)."""
        div = self.divergence
        if div == "forward_kl":
            return _gkl(lt, ls).sum(-1)
        if div == "reverse_kl":
            return _gkl(ls, lt).sum(-1)
        if div == "tvd":
            return 0.5 * (ls.exp() - lt.exp()).abs().sum(-1)
        if div == "skew_kl":
            a = self.alpha
            if a == 1.0:
                return ls.sum(-1) * 0.0  # KL(t || t) = 0, kept in the graph
            if a == 0.0:
                return _gkl(lt, ls).sum(-1)
            u_t, _, lm = _mix_offsets(lt, ls, a)
            return _gkl(lt, lm, u_t).sum(-1)
        b = self.beta  # jsd
        if b in (0.0, 1.0):
            if not self.normalized:
                return ls.sum(-1) * 0.0  # the raw JSD vanishes at both ends
            return _gkl(lt, ls).sum(-1) if b == 0.0 else _gkl(ls, lt).sum(-1)
        u_t, u_s, lm = _mix_offsets(lt, ls, b)
        to_t = _gkl(lt, lm, u_t).sum(-1)  # KL(t || m)
        to_s = _gkl(ls, lm, u_s).sum(-1)  # KL(s || m)
        if self.normalized:
            return to_t / (1.0 - b) + to_s / b
        return b * to_t + (1.0 - b) * to_s

    # -- value and gradient in one pass (full support only) ------------------------------------
    def value_and_logit_grad(
        self,
        zs: torch.Tensor,
        zt: torch.Tensor,
        *,
        need_grad: bool = True,
        out: torch.Tensor | None = None,
    ):
        r"""Per-token values and $\partial D/\partial z_s$ (float32/64) without autograd.

        Only for `support="full"`; the teacher is a constant. The closed forms and their
        derivation are in `sdtheory.lm.losses._closed_form`: with $g = \partial D/\partial\log s$,
        the logit gradient is $(g - s\sum_v g_v)/\tau$, where $g$ is $s - t$ (forward KL),
        $s\log(s/t)$ (reverse KL), $-(1-\beta)\,s\log(m/s)$ (JSD; $-s\log(m/s)/\beta$
        normalised), $-(1-\alpha)\,s\,(t/m - 1)$ (skew KL), $\tfrac12 s\,\mathrm{sign}(s - t)$
        (TVD). Autograd of `from_log_probs` is the reference it is tested against.

        Args:
          zs, zt: student and teacher logits (rows, V), any floating dtype.
          need_grad: compute the gradient (else it is returned as None).
          out: optional (rows, V) tensor in the compute dtype receiving the gradient; it may be
            `zs` itself (the logits are read before it is written).

        Returns:
          `(values, grad)`: values (rows,) and the logit gradient (rows, V), float32 or float64.
        """
        cd = _compute_dtype(zs.dtype)
        zs = zs.to(cd)
        zt = zt.to(cd)
        if self.temperature != 1.0:
            zs = zs / self.temperature
            zt = zt / self.temperature
        return full_vocab_value_and_grad(
            torch.log_softmax(zs, dim=-1),
            torch.log_softmax(zt, dim=-1),
            divergence=self.divergence,
            beta=self.beta,
            normalized=self.normalized,
            alpha=self.alpha,
            scale=1.0 / self.temperature,
            need_grad=need_grad,
            out=out,
        )


# ----------------------------------------------------------------------------- full support, fast


def _row_blocks(rows: int, vocab: int, itemsize: int):
    """Slices of rows holding about `BLOCK_BYTES` bytes each."""
    step = max(1, BLOCK_BYTES // (itemsize * max(vocab, 1)))
    for start in range(0, rows, step):
        yield slice(start, min(start + step, rows))


def _full_vocab_blocks(spec: DivergenceSpec, zs: torch.Tensor, zt: torch.Tensor, need_grad: bool):
    """Values (N,) and, if asked, logit gradients (N, V) of (N, V) logits, block by block."""
    n, vocab = zs.shape
    cd = _compute_dtype(zs.dtype)
    values = torch.empty(n, dtype=cd, device=zs.device)
    grad = torch.empty((n, vocab), dtype=cd, device=zs.device) if need_grad else None
    for sl in _row_blocks(n, vocab, values.element_size()):
        out = grad[sl] if need_grad else None
        values[sl] = spec.value_and_logit_grad(zs[sl], zt[sl], need_grad=need_grad, out=out)[0]
    return values, grad


class _FullVocabDivergence(torch.autograd.Function):
    """Per-token divergence on the full vocabulary; forward stores the closed-form gradient.

    Backward only scales it by the incoming per-token gradient, so autograd keeps one (N, V)
    gradient instead of the dozen tensors its graph of the reference formula would hold. Under
    `create_graph=True` (higher derivatives) backward differentiates the reference formula
    instead, so second derivatives are those of autograd.
    """

    @staticmethod
    def forward(ctx, zs, zt, spec):
        values, grad = _full_vocab_blocks(spec, zs, zt, need_grad=True)
        ctx.save_for_backward(grad, zs, zt)
        ctx.spec = spec
        return values

    @staticmethod
    def backward(ctx, grad_values):
        grad, zs, zt = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a differentiable gradient
            ls, lt = ctx.spec.log_probs(zs, zt)
            values = ctx.spec.from_log_probs(ls, lt)
            (g,) = torch.autograd.grad(values, zs, grad_values, create_graph=True)
            return g, None, None
        g = grad * grad_values.to(grad.dtype).unsqueeze(-1)
        return g.to(zs.dtype), None, None


def _per_token(spec: DivergenceSpec, zs: torch.Tensor, zt: torch.Tensor) -> torch.Tensor:
    """Per-token values of `spec` on logits of the same shape (..., V), checks already done.

    On the full support with a constant teacher: the closed form (values and gradient in one
    pass over blocks of rows). Otherwise (top-k supports, or a teacher that requires a gradient):
    autograd of `from_log_probs`, the reference.
    """
    grad_on = torch.is_grad_enabled()
    if spec.support != "full" or (grad_on and zt.requires_grad):
        ls, lt = spec.log_probs(zs, zt)
        return spec.from_log_probs(ls, lt)
    lead, vocab = zs.shape[:-1], zs.shape[-1]
    zs2, zt2 = zs.reshape(-1, vocab), zt.detach().reshape(-1, vocab)
    if grad_on and zs.requires_grad:
        values = _FullVocabDivergence.apply(zs2, zt2, spec)
    else:
        values = _full_vocab_blocks(spec, zs2.detach(), zt2, need_grad=False)[0]
    return values.reshape(lead)


# ----------------------------------------------------------------------------- public functions


def token_divergence(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    divergence: str = "forward_kl",
    beta: float = 0.5,
    normalized: bool = False,
    alpha: float = 0.1,
    temperature: float = 1.0,
    support: str = "full",
    k: int | None = None,
) -> torch.Tensor:
    r"""Per-token divergence between teacher and student next-token distributions.

    Both logits are divided by `temperature` and normalised with `log_softmax`; then, with
    $t$ the teacher and $s$ the student distribution on the chosen support:

    * `"forward_kl"`: $\mathrm{KL}(t\|s)$ (mode covering);
    * `"reverse_kl"`: $\mathrm{KL}(s\|t)$ (mode seeking);
    * `"jsd"`: $\beta\,\mathrm{KL}(t\|m) + (1-\beta)\,\mathrm{KL}(s\|m)$ with
      $m = \beta t + (1-\beta)s$, i.e. `sdtheory.core.generalized_jsd(log_t, log_s, beta)`.
      Raw, it vanishes at $\beta \in \{0, 1\}$; with `normalized=True` it is divided by
      $\beta(1-\beta)$ and equals $\mathrm{KL}(t\|s)$ at $\beta = 0$ and $\mathrm{KL}(s\|t)$ at
      $\beta = 1$, continuously in $\beta$ (GKD/TRL direction without TRL's jump);
    * `"skew_kl"`: $\mathrm{KL}(t\,\|\,\alpha t + (1-\alpha)s)$ (DistiLLM);
    * `"tvd"`: $\tfrac12\sum_v|t_v - s_v|$.

    Supports: `"full"` (exact); `"teacher_topk"`: the teacher's `k` most likely tokens, both
    distributions renormalised on them (a proper divergence on $k$ outcomes: $\ge 0$, biased);
    `"student_topk_tail"`: the student's `k` most likely tokens plus one bucket holding the rest
    of each distribution's mass (a coarsening: $0 \le$ value $\le$ the full divergence). The
    indices are chosen without gradient. Nothing is clamped.

    Half-precision inputs are computed in float32; float64 stays float64. Gradients flow into
    every input that requires them (pass a detached teacher for the usual stop-gradient).
    Temperature is not compensated by a $\tau^2$ factor.

    Args:
      student_logits: student logits (..., V).
      teacher_logits: teacher logits with the same shape.
      divergence: one of `"forward_kl"`, `"reverse_kl"`, `"jsd"`, `"skew_kl"`, `"tvd"`.
      beta: JSD mixing weight in $[0, 1]$ (teacher weight in $m$); read by `"jsd"` only.
      normalized: divide the JSD by $\beta(1-\beta)$ and continue it at the ends; `"jsd"` only.
      alpha: skew-KL weight in $[0, 1]$ (teacher weight in the mixture); `"skew_kl"` only.
      temperature: $\tau > 0$ dividing both logits before `log_softmax`.
      support: `"full"`, `"teacher_topk"` or `"student_topk_tail"`.
      k: support size for the top-k supports ($1 \le k \le V$, and $k < V$ with a tail).

    Returns:
      Per-token values with shape `student_logits.shape[:-1]` (float32 or float64).

    Example:
      >>> import torch, numpy as np
      >>> from sdtheory import core
      >>> zs, zt = torch.randn(4, 9, dtype=torch.float64), torch.randn(4, 9, dtype=torch.float64)
      >>> ours = token_divergence(zs, zt, divergence="jsd", beta=0.3)
      >>> lt, ls = core.log_softmax(zt.numpy()), core.log_softmax(zs.numpy())
      >>> ref = core.generalized_jsd(lt, ls, 0.3)
      >>> bool(np.allclose(ours.numpy(), ref, rtol=1e-12, atol=1e-15))
      True
    """
    spec = DivergenceSpec(divergence, beta, normalized, alpha, temperature, support, k)
    _check_float_tensor(student_logits, "student_logits")
    _check_float_tensor(teacher_logits, "teacher_logits")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits with shape {tuple(student_logits.shape)} and teacher_logits with "
            f"shape {tuple(teacher_logits.shape)} must have the same shape"
        )
    spec.check_vocab(student_logits.shape[-1])
    return _per_token(spec, student_logits, teacher_logits)


def sampled_token_loss(
    student_logprobs: torch.Tensor, teacher_logprobs: torch.Tensor, *, estimator: str = "advantage"
) -> torch.Tensor:
    r"""Per-token loss from the log-probabilities of sampled tokens $y \sim s$ (the student).

    With $r = \log t(y) - \log s(y)$ (Schulman 2020; `sdtheory.core.k1/k2/k3`):

    | `estimator` | value | as a $\mathrm{KL}(s\|t)$ estimate | sign | $\mathbb E_{y\sim s}\nabla$ |
    |---|---|---|---|---|
    | `"k1"` | $-r$ | unbiased | any | $0$ (useless as a loss) |
    | `"k2"` | $\tfrac12 r^2$ | biased | $\ge 0$ | $\nabla\mathrm{KL}(s\|t)$ |
    | `"k3"` | $e^r - 1 - r$ | unbiased | $\ge 0$ | $\nabla\mathrm{KL}(t\|s)$ (forward!) |
    | `"advantage"` | $-\mathrm{sg}(r)\log s(y)$ | no: surrogate | any | $\nabla\mathrm{KL}(s\|t)$ |

    The gradient column is our derivation (`derived`): $\nabla_\theta$ of each value is
    $c(y)\nabla\log s(y)$ with $c = 1$, $-r$, $1 - e^r$, $-r$ respectively, and
    $\mathbb E_s[c\,\nabla\log s] $ gives the stated gradients ($\mathbb E_s[\nabla\log s] = 0$,
    $\mathbb E_s[e^r\nabla\log s] = \sum_y t\nabla\log s$). It ignores the dependence of the
    sampling distribution on $\theta$ (tokens are data), as every on-policy trainer does.
    `"advantage"` is the tinker/OpenRLHF/SDPO reverse-KL-as-advantage surrogate (see
    `docs/lm/losses.md`); use `"k1"` or `"k3"` to *log* a KL estimate.

    Args:
      student_logprobs: $\log s(y)$ of the sampled tokens, shape (...), carrying the gradient.
      teacher_logprobs: $\log t(y)$ of the same tokens, same shape.
      estimator: `"k1"`, `"k2"`, `"k3"` or `"advantage"`.

    Returns:
      Per-token values (float32 or float64). Nothing is clamped: `"k3"` overflows to `inf` when
      the teacher assigns $e^{88}$ (float32) times more mass than the student.

    Example:
      >>> import torch
      >>> ls = torch.tensor([-1.0, -2.0], dtype=torch.float64, requires_grad=True)
      >>> v = sampled_token_loss(ls, ls.detach(), estimator="advantage")
      >>> v.sum().backward(); bool((v == 0).all()) and bool((ls.grad == 0).all())
      True
    """
    _check_choice(estimator, ESTIMATORS, "estimator")
    _check_float_tensor(student_logprobs, "student_logprobs", min_dim=0)
    _check_float_tensor(teacher_logprobs, "teacher_logprobs", min_dim=0)
    if student_logprobs.shape != teacher_logprobs.shape:
        raise ValueError(
            f"student_logprobs with shape {tuple(student_logprobs.shape)} and teacher_logprobs "
            f"with shape {tuple(teacher_logprobs.shape)} must have the same shape"
        )
    cd = _compute_dtype(student_logprobs.dtype)
    ls = student_logprobs.to(cd)
    lt = teacher_logprobs.to(cd)
    r = lt - ls
    if estimator == "k1":
        return -r
    if estimator == "k2":
        return 0.5 * r * r
    if estimator == "k3":
        return torch.expm1(r) - r
    return -r.detach() * ls
