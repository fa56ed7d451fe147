r"""Pieces several methods share: token log-probabilities, the GRPO advantage and surrogate, the
run's divergence loss (fused or plain), the two-stage KL switch, masked means and entropies."""

from __future__ import annotations

import math

import torch

from ..losses import distillation_loss, fused_linear_distillation_loss
from ..losses._token import _compute_dtype

__all__ = [
    "DivergenceLoss",
    "entropy",
    "grpo_advantages",
    "grpo_loss",
    "kl_direction",
    "masked_mean",
    "policy_temperature",
    "teacher_rows",
    "token_logprobs",
]


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0):
    r"""$\log\mathrm{softmax}(z/\tau)_y$ at the tokens $y$: `(...)` from `(..., V)` logits, in
    float32 (float64 for float64 logits); gradients flow into the logits."""
    z = logits.to(_compute_dtype(logits.dtype))
    if temperature != 1.0:
        z = z / temperature
    return torch.log_softmax(z, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def entropy(log_p: torch.Tensor) -> torch.Tensor:
    r"""$H(p)=-\sum_v p_v\log p_v$ over the last axis, with $0\log 0=0$ (`-inf` entries allowed)."""
    terms = (log_p.exp() * log_p).where(log_p > -math.inf, torch.zeros((), dtype=log_p.dtype))
    return -terms.sum(-1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean of `x` where `mask` is set (NaN for an empty mask)."""
    m = mask.bool()
    return float(x[m].float().mean()) if m.any() else float("nan")


def kl_direction(step: int, switch_step: int, default: str) -> str:
    """Two-stage schedule [paper: PACED abstract; switch point ours]: `forward_kl` before
    `switch_step`, `reverse_kl` from it on; `switch_step < 0` keeps `default`.

    Examples:
        >>> [kl_direction(s, 2, "jsd") for s in range(4)]
        ['forward_kl', 'forward_kl', 'reverse_kl', 'reverse_kl']
        >>> kl_direction(5, -1, "jsd")
        'jsd'
    """
    if switch_step < 0:
        return default
    return "forward_kl" if step < switch_step else "reverse_kl"


def grpo_advantages(
    rewards: torch.Tensor, group: torch.Tensor, *, scale: bool = True, eps: float = 1e-4
) -> torch.Tensor:
    """Group-relative advantages $(r_i - \\bar r_g) / (s_g + \\epsilon)$, $s_g$ the sample std.

    Examples:
        >>> import torch
        >>> a = grpo_advantages(torch.tensor([1., 0., 0., 0.]), torch.tensor([0, 0, 1, 1]))
        >>> bool(torch.allclose(a, torch.tensor([0.7070, -0.7070, 0., 0.]), atol=1e-3))
        True
    """
    if rewards.shape != group.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and group {tuple(group.shape)} differ")
    n = int(group.max()) + 1
    r = rewards.double()
    cnt = torch.zeros(n, dtype=torch.float64).index_add_(0, group, torch.ones_like(r))
    mean = torch.zeros(n, dtype=torch.float64).index_add_(0, group, r) / cnt
    dev = r - mean[group]
    if not scale:
        return dev.float()
    var = torch.zeros(n, dtype=torch.float64).index_add_(0, group, dev**2) / (cnt - 1).clamp(min=1)
    return (dev / (var.sqrt()[group] + eps)).float()


def policy_temperature(cfg) -> float:
    """The temperature of the policy-gradient log-probabilities: the sampling temperature (1 for
    greedy sampling), as TRL's GRPO divides the logits by it (top-p is not applied)."""
    return cfg.run.temperature if cfg.run.temperature > 0 else 1.0


def grpo_loss(batch, cfg, *, mask=None, num_items="batch") -> torch.Tensor:
    r"""GRPO surrogate $-A_i\,\pi_\theta(y_t)/\mathrm{sg}(\pi_\theta(y_t))$ per token, reduced
    over `mask` (one update per batch, so the PPO ratio is 1 and clipping never binds)."""
    adv = grpo_advantages(batch.rewards, batch.groups, scale=cfg.loss.scale_rewards)
    lp = batch.student.token_logprobs(policy_temperature(cfg))
    per_tok = -adv.to(lp.device, lp.dtype)[:, None] * torch.exp(lp - lp.detach())
    return batch.reduce(per_tok, mask=mask, num_items=num_items)


class DivergenceLoss:
    r"""The run's divergence from the teacher ($p$) to the student on completion tokens.

    Fused by default (`fused_linear_distillation_loss` from final hidden states, in token
    chunks); plain (`distillation_loss` on logits) with `--fused-loss false` and always with a
    sampled-token estimator. Both reduce with the batch's global normaliser and agree to
    rounding. The JSD is normalised: $\mathrm{JSD}_\beta/(\beta(1-\beta))$, continued at the
    ends, so it is continuous in $\beta$ and equals forward KL at $\beta=0$ and reverse KL at
    $\beta=1$ (at $\beta=\tfrac12$ it is 4 times the raw JSD; same minimiser).

    `teacher` may be `None` when the teacher's outputs come from elsewhere (a teacher sharing
    the student's parameters, `StudentOutputs.under`): pass its output layer as
    `teacher_weight`. `override=` replaces some of the run's divergence settings for one call
    (`divergence`, `beta`, `support`, `k`: a method with a loss of its own, e.g. SD-Zero's
    forward + reverse KL on the teacher's top-k)
    """

    def __init__(self, cfg, teacher, default_beta: float):
        self.loss, self.teacher = cfg.loss, teacher
        self.beta = default_beta if cfg.loss.beta is None else cfg.loss.beta
        self.fused = cfg.loss.fused_loss and not cfg.loss.estimator

    def divergence(self, step: int) -> str:
        """The divergence of `step` (after the two-stage switch); the JSD at $\beta=0$ / $1$ is
        named `forward_kl` / `reverse_kl`, which it equals (the same code path)."""
        name = kl_direction(step, self.loss.kl_switch_step, self.loss.divergence)
        if name == "jsd" and self.beta in (0.0, 1.0):
            return "forward_kl" if self.beta == 0.0 else "reverse_kl"
        return name

    def kwargs(self, step: int) -> dict:
        lc = self.loss
        if lc.estimator:
            return dict(estimator=lc.estimator, temperature=lc.loss_temperature)
        return dict(
            divergence=self.divergence(step),
            beta=self.beta,
            normalized=True,
            temperature=lc.loss_temperature,
            support=lc.support,
            k=lc.topk or None,
        )

    def teacher_out(self, batch, messages=None, prompt_ids=None) -> torch.Tensor:
        """The teacher's hidden states (fused) or logits (plain) on the batch's completions."""
        score = self.teacher.hidden if self.fused else self.teacher.logits
        ro = batch.rollouts  # the completion mask: what the teacher attends to
        return score(
            batch.rows, ro.completions, ro.completion_mask, messages=messages, prompt_ids=prompt_ids
        )

    @torch.no_grad()
    def teacher_logits(self, out: torch.Tensor, teacher_weight=None) -> torch.Tensor:
        """Teacher logits from `teacher_out`'s result."""
        w = self.teacher.lm_head_weight if teacher_weight is None else teacher_weight
        return out @ w.T if self.fused else out

    def __call__(
        self,
        batch,
        teacher_out,
        *,
        mask=None,
        weights=None,
        num_items="batch",
        teacher_weight=None,
        override=None,
    ):
        m = batch.mask if mask is None else mask
        n = batch.num_items() if num_items == "batch" else num_items
        kw = dict(
            weights=weights, reduction=batch.reduction, num_items=n, **self.kwargs(batch.step)
        )
        if override:
            if self.loss.estimator:
                raise ValueError("override= needs a full-distribution loss (no --estimator)")
            kw.update(override)
        s = batch.student
        if self.fused:
            w_t = self.teacher.lm_head_weight if teacher_weight is None else teacher_weight
            return fused_linear_distillation_loss(s.hidden(), s.weight, teacher_out, w_t, m, **kw)
        tokens = batch.rollouts.completions if self.loss.estimator else None
        return distillation_loss(s.logits(), teacher_out, m, sampled_tokens=tokens, **kw)


@torch.no_grad()
def teacher_rows(teacher, batch, fn, messages=None) -> torch.Tensor:
    """`fn(logits, tokens)` of each completion row under the teacher, stacked: the teacher's
    hidden states are projected one row `(T, V)` at a time, so no `(N, T, V)` tensor is formed.
    E.g. `fn = token_logprobs` gives the teacher's log-probabilities of the sampled tokens."""
    ro = batch.rollouts
    h = teacher.hidden(batch.rows, ro.completions, ro.completion_mask, messages=messages)
    head = teacher.model.get_output_embeddings()
    return torch.stack([fn(head(h[i]), ro.completions[i]) for i in range(h.shape[0])])
