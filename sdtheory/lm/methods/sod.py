r"""SOD: step-wise on-policy distillation from a separate teacher, for multi-turn tool use.

Zhong et al., arXiv:2605.07725; official code `YoungZ365/SOD@110c4b8` (verl fork, Apache-2.0),
`verl/trainer/ppo/ray_trainer.py::compute_stepwise_opd_weights` and
`_apply_token_kl_regularizer` [code]. A separate teacher (`--teacher-model`; in the paper a
GRPO-trained checkpoint) scores the student's multi-turn rollouts (`--env calculator`). The
*steps* of a rollout are its assistant spans between tool outputs (maximal runs of the loss
mask, `sdtheory.lm.env.step_spans`). With $\pi_{\rm old}$ the sampling policy:

$$d_k=\tfrac{1}{|k|}\textstyle\sum_{t\in k}\big|\log\pi_{\rm old}(y_t)-\log\pi_T(y_t)\big|,\quad
w_1=1,\quad w_k=\min\Big(\prod_{u<k}\frac{d_u+\epsilon}{d_{u+1}+\epsilon},\ 1+\delta\Big)$$

[code], and the product telescopes to $w_k=\min\big((d_1+\epsilon)/(d_k+\epsilon),\,1+\delta\big)$
[derived; `telescoped_weights`, tested against `step_weights`]: a step the teacher disagrees with
more than with the first step is damped, a better-aligned step is boosted by at most $1+\delta$.
Per assistant token of rollout $i$ in step $k$,
$A_t = g\,A^{\rm GRPO}_i + c\,w_k\,(\log\pi_T(y_t)-\log\pi_{\rm old}(y_t))$ [code], with
$c$ = `--distill-weight` (the code's `stepwise_opd_coef`, 1) and $g$ = `--grpo-weight` (1), and
the loss is the clipped surrogate $-\min(\rho_tA_t,\ \mathrm{clip}(\rho_t,1-\epsilon_{lo},
1+\epsilon_{hi})A_t)$, $\rho_t=\pi_\theta(y_t)/\pi_{\rm old}(y_t)$, token mean over assistant
tokens (the code's script: clip 0.2 / 0.28, `token-mean`) [code]. Tool outputs have no loss.

Ours: $\pi_{\rm old}$ is the sampler's log-probability (`Rollouts.logprobs`, temperature 1) and
the trainer takes one optimiser step per batch, so $\rho_t=1$ up to rounding and the clip binds
only if the sampler and the learner disagree (the code runs 4 mini-batch updates per batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import check_fields
from ..env import step_spans
from .base import Method
from .shared import grpo_advantages, masked_mean, teacher_rows, token_logprobs

__all__ = [
    "SOD",
    "SODConfig",
    "clipped_surrogate",
    "sod_token_weights",
    "step_divergences",
    "step_weights",
    "telescoped_weights",
]


def step_divergences(logp_old, logp_teacher, mask) -> list[list[float]]:
    r"""$d_k$ per row: the mean $|\log\pi_{\rm old}-\log\pi_T|$ over each step's tokens [code].

    Examples:
        >>> import torch
        >>> m = torch.tensor([[1, 1, 0, 1]]).bool()
        >>> step_divergences(torch.tensor([[-1., -3., 0., -2.]]), torch.zeros(1, 4), m)
        [[2.0, 2.0]]
    """
    diff = (logp_old.double() - logp_teacher.double()).abs().cpu()
    return [
        [float(diff[i, a:b].mean()) for a, b in spans] for i, spans in enumerate(step_spans(mask))
    ]


def step_weights(d, epsilon: float = 1e-6, delta: float = 0.2) -> list[float]:
    r"""$w_1=1$, $w_k=\min(\prod_{u<k}(d_u+\epsilon)/(d_{u+1}+\epsilon),\,1+\delta)$: the code's
    running product of adjacent ratios [code: `compute_stepwise_opd_weights`].

    Examples:
        >>> step_weights([1.0, 2.0, 0.5], epsilon=0.0, delta=0.2)
        [1.0, 0.5, 1.2]
    """
    _check(epsilon, delta, d)
    out, prod = [1.0] if len(d) else [], 1.0
    for u in range(len(d) - 1):
        prod *= (d[u] + epsilon) / (d[u + 1] + epsilon)
        out.append(min(prod, 1.0 + delta))
    return out


def telescoped_weights(d, epsilon: float = 1e-6, delta: float = 0.2) -> list[float]:
    r"""The closed form $w_k=\min((d_1+\epsilon)/(d_k+\epsilon),\,1+\delta)$, $w_1 = 1$ [derived:
    the product of adjacent ratios telescopes]."""
    _check(epsilon, delta, d)
    return [1.0] + [min((d[0] + epsilon) / (x + epsilon), 1.0 + delta) for x in d[1:]] if d else []


def _check(epsilon, delta, d) -> None:
    if not 0 <= epsilon < float("inf") or (epsilon == 0 and not all(x > 0 for x in d)):
        raise ValueError(f"epsilon must be finite, >= 0, and > 0 if a d_k is 0, got {epsilon!r}")
    if not 0 <= delta < float("inf"):
        raise ValueError(f"delta must be a finite number >= 0, got {delta!r}")
    if any(not 0 <= x < float("inf") for x in d):
        raise ValueError(f"step divergences must be finite and >= 0, got {list(d)}")


def sod_token_weights(logp_old, logp_teacher, mask, epsilon=1e-6, delta=0.2):
    """`(N, T)` step weight of each token (0 off the mask) and the per-row `(d, w)` lists."""
    d = step_divergences(logp_old, logp_teacher, mask)
    w = [step_weights(x, epsilon, delta) for x in d]
    out = torch.zeros(mask.shape, dtype=torch.float64)
    for i, spans in enumerate(step_spans(mask)):
        for (a, b), wk in zip(spans, w[i], strict=True):
            out[i, a:b] = wk
    return out.to(mask.device), d, w


def clipped_surrogate(logp, logp_old, adv, low: float = 0.2, high: float = 0.28):
    r"""Per-token PPO surrogate $-\min(\rho A,\ \mathrm{clip}(\rho,1-\mathrm{low},1+\mathrm{high})A)$,
    $\rho=e^{\log p-\log p_{\rm old}}$ (log-ratio clamped at $\pm20$, as verl) [code].

    Examples:
        >>> import math, torch
        >>> lp = torch.log(torch.tensor([1.0, 2.0, 0.5]))
        >>> clipped_surrogate(lp, torch.zeros(3), torch.tensor([1.0, 1.0, -1.0])).tolist()
        [-1.0, -1.2799999713897705, 0.800000011920929]
    """
    if not (0 <= low < 1 and 0 <= high):
        raise ValueError(f"clip bounds must satisfy 0 <= low < 1 and high >= 0, got {low}, {high}")
    ratio = torch.exp((logp - logp_old.detach()).clamp(-20, 20))
    clipped = ratio.clamp(1.0 - low, 1.0 + high)
    return -torch.minimum(ratio * adv, clipped * adv)


def _h(text: str, default):
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class SODConfig:
    _argument_group_name = (
        "sod (separate teacher, step-weighted on-policy distillation + GRPO; use --env)"
    )

    sod_delta: float = _h("SOD: step weights are capped at 1 + delta (the code's script: 0.2)", 0.2)
    sod_epsilon: float = _h("SOD: epsilon in the step-weight ratios (d_1+eps)/(d_k+eps)", 1e-6)
    sod_clip_low: float = _h("SOD: PPO clip, ratio >= 1 - clip_low", 0.2)
    sod_clip_high: float = _h("SOD: PPO clip, ratio <= 1 + clip_high (DAPO-style 0.28)", 0.28)

    def __post_init__(self):
        check_fields(self, nonneg=("sod_delta", "sod_clip_high"), positive=("sod_epsilon",))
        if not 0 <= self.sod_clip_low < 1:
            raise ValueError(f"sod_clip_low must lie in [0, 1), got {self.sod_clip_low!r}")


class SOD(Method):
    """SOD (see the module); `--distill-weight 0` leaves GRPO with the clipped surrogate."""

    name = "sod"
    Config = SODConfig
    teacher_kind = "model"
    default_weights = (1.0, 1.0)  # (c, g): the code's stepwise_opd_coef and the GRPO advantage
    min_k = 2
    needs_distill = False
    mixes_grpo = True

    def loss(self, batch):
        o, (c, g) = self.options, self.weights(self.cfg)
        m = batch.mask
        lp = batch.student.token_logprobs(1.0)
        old = batch.rollouts.logprobs.to(lp.dtype)
        adv = g * grpo_advantages(batch.rewards, batch.groups, scale=self.cfg.loss.scale_rewards)
        adv = adv.to(lp.device, torch.float64)[:, None].expand(m.shape)
        metrics = {}
        if self.teacher is not None and c > 0:
            lt = teacher_rows(self.teacher, batch, token_logprobs).to(lp.dtype)
            w, d, _ = sod_token_weights(old, lt, m, o.sod_epsilon, o.sod_delta)
            opd = (lt - old).double() * m
            adv = adv + c * w * opd
            firsts = [x[0] for x in d if x]
            metrics.update(
                sod_weight_mean=masked_mean(w, m),
                sod_steps_mean=sum(map(len, d)) / max(len(d), 1),
                sod_d1_mean=sum(firsts) / len(firsts) if firsts else float("nan"),
                sod_opd_adv_mean=masked_mean(opd, m),
            )
        per_tok = clipped_surrogate(lp, old, adv.to(lp.dtype), o.sod_clip_low, o.sod_clip_high)
        loss = batch.reduce(per_tok)
        ratio = torch.exp((lp.detach() - old).clamp(-20, 20))
        bound = (ratio < 1 - o.sod_clip_low) | (ratio > 1 + o.sod_clip_high)
        metrics.update(grpo_loss=float(loss.detach()), sod_clip_frac=masked_mean(bound, m))
        return loss, metrics
