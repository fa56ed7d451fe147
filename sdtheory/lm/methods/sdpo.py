r"""SDPO: the self-teacher is reprompted with a *successful sibling* rollout of the same problem.

[code: lasgroup/SDPO] A rollout's teacher sees the question, a successful attempt of a sibling
(reward $\ge 0.5$, never the rollout itself) and/or feedback, then "Correctly solve the original
question." (`sdtheory.lm.teachers.reprompt_messages`). Rollouts without a sibling (and without
feedback) get no loss. The divergence of each token is multiplied by the clipped importance
ratio $\min(\pi/\pi_{\rm old}, c)$; the token mean runs over the rollouts with a teacher only
[code]. SDPO is meant with `--teacher-mode ema` (the code's default). SRPO (`srpo.py`) routes
between this and GRPO.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import check_fields
from ..teachers import reprompt_messages
from .base import Method
from .shared import DivergenceLoss, masked_mean

__all__ = ["SDPO", "SDPOConfig", "importance_weights", "successful_siblings"]

FEEDBACK = "The previous attempt reached a wrong or no final answer."  # ours (--sdpo-feedback)


def successful_siblings(
    rewards: torch.Tensor, group: torch.Tensor, *, threshold: float = 0.5, exclude_self=True
) -> list[int | None]:
    """For each rollout, the index of a successful rollout of the same problem, else `None`.

    SDPO [code: `success_reward_threshold=0.5`, `dont_reprompt_on_self_success=True`]: a sibling
    succeeds when its reward is $\\ge$ `threshold`; a rollout is never its own demonstration when
    `exclude_self`. We take the first such sibling in row order (the choice rule is ours).

    Examples:
        >>> import torch
        >>> successful_siblings(torch.tensor([1., 0., 0., 0., 1., 0.]), torch.tensor([0, 0, 0, 1, 1, 1]))
        [None, 0, 0, 4, None, 4]
    """
    if rewards.shape != group.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and group {tuple(group.shape)} differ")
    r, g = rewards.tolist(), group.tolist()
    out: list[int | None] = []
    for i in range(len(r)):
        pick = None
        for j in range(len(r)):
            if g[j] == g[i] and r[j] >= threshold and not (exclude_self and j == i):
                pick = j
                break
        out.append(pick)
    return out


def importance_weights(
    logp: torch.Tensor, logp_old: torch.Tensor, clip: float = 2.0
) -> torch.Tensor:
    r"""SDPO's clipped importance weight $\min(e^{\mathrm{clamp}(\log p-\log p_{\rm old},\pm20)},
    c)$, detached [code: `is_clip=2`; detaching is ours].

    Examples:
        >>> import math, torch
        >>> w = importance_weights(torch.tensor([0.0, 1.0, -1.0]), torch.zeros(3), clip=2.0)
        >>> bool(torch.allclose(w, torch.tensor([1.0, 2.0, math.exp(-1.0)])))
        True
    """
    if not clip > 0:
        raise ValueError(f"clip must be > 0, got {clip!r}")
    d = (logp.detach().double() - logp_old.detach().double()).clamp(-20, 20)
    return d.exp().clamp(max=float(clip)).to(logp.dtype)


def _h(text: str, default):
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class SDPOConfig:
    _argument_group_name = "sdpo, srpo (self-teacher reprompted with a successful sibling)"

    is_clip: float = _h("SDPO/SRPO: clip of the importance ratio pi/pi_old", 2.0)
    sdpo_feedback: bool = _h(
        "SDPO/SRPO (ours): failed rollouts also get a generic 'wrong answer' feedback line, so "
        "they have a teacher even without a successful sibling",
        False,
    )
    srpo_entropy_beta: float = _h(
        "SRPO: beta_H of the token weights exp(-beta_H H(teacher)) (normalised to mean 1)", 1.0
    )

    def __post_init__(self):
        check_fields(self, positive=("is_clip",), nonneg=("srpo_entropy_beta",))


class SDPO(Method):
    """SDPO (see the module); `distill` returns the pieces SRPO reuses."""

    name = "sdpo"
    Config = SDPOConfig
    min_k = 2

    def __init__(self, ctx):
        super().__init__(ctx)
        self.div = DivergenceLoss(ctx.cfg, self.teacher, self.default_beta)

    def reprompt(self, batch) -> tuple[list, torch.Tensor]:
        """Teacher messages per rollout and which rollouts have a teacher (`(N,)` bool)."""
        sib = successful_siblings(batch.rewards, batch.groups, threshold=0.5, exclude_self=True)
        texts = batch.rollouts.texts(self.ctx.tokenizer)
        messages, has = [], []
        for i, p in enumerate(batch.rows):
            demo = texts[sib[i]] if sib[i] is not None else None
            fb = FEEDBACK if self.options.sdpo_feedback and batch.rewards[i] < 0.5 else None
            has.append(demo is not None or fb is not None)
            messages.append(reprompt_messages(p, demo, fb))
        return messages, torch.tensor(has, dtype=torch.bool)

    def distill(self, batch):
        """(teacher output, teacher mask `(N,)`, importance weights `(N, T)`, metrics)."""
        messages, has = self.reprompt(batch)
        t_out = self.div.teacher_out(batch, messages)
        # the plain path needs the logits anyway: take the log-probs from them
        s_lp = batch.student.token_logprobs(1.0, grad=not self.div.fused).detach()
        isw = importance_weights(s_lp, batch.rollouts.logprobs.to(s_lp.dtype), self.options.is_clip)
        m = batch.mask
        metrics = dict(
            is_ratio_mean=masked_mean(isw, m),
            is_clipped_frac=masked_mean(isw >= self.options.is_clip, m),
        )
        return t_out, has.to(m.device), isw, metrics

    def loss(self, batch):
        t_out, has, isw, metrics = self.distill(batch)
        sd_mask = batch.mask & has[:, None]
        # token (or sequence) mean over the rollouts that have a teacher only [code]
        l_d = self.div(batch, t_out, mask=sd_mask, weights=isw, num_items=batch.num_items(sd_mask))
        metrics.update(
            distill_loss=float(l_d.detach()),
            divergence=self.div.divergence(batch.step),
            sdpo_frac_with_teacher=float(has.double().mean()),
        )
        return self.weights(self.cfg)[0] * l_d, metrics
