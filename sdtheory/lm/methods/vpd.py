r"""VPD: variational policy distillation, a feedback-conditioned teacher refined by EM.

Li et al. 2026 (arXiv:2605.15113; no code found). The teacher $\pi_\theta(\cdot|x,f)$ is the
student's own network after the feedback $f$ on the rollout (here the verifier's outcome and,
if any, a successful sibling: SDPO's reprompt, `teachers.reprompt_messages`), sharing its
parameters [paper abstract + methods spec 1.13]. Each step is one EM round on the rollouts:

* **E-step** (every `--vpd-e-every` steps) [abstract: "the teacher is actively refined on
  trajectory outcomes via an adaptive trust-region update"; the loss is a third-party
  account (secondary): unpaired preference optimisation, BCO, with a dynamic reference]: the
  implicit reward $\tilde r=\beta\,[\log\pi_\theta(y|x,f)-\mathrm{sg}\log\pi_\theta(y|x)]$
  (the reference is the *current* student, so it moves every step), and
  $L_E=-\log\sigma(\tilde r-\delta)$ for verified rollouts, $-\log\sigma(\delta-\tilde r)$ for the
  others (`bco_loss`), $\delta$ the running midpoint of the two classes' mean rewards
  (`RewardShift`). Its gradient raises the teacher's log-likelihood of verified rollouts
  relative to the student's and lowers it for failed ones [derived: the sign of $\partial
  L_E/\partial\tilde r$].
* **M-step** (every step) [abstract: "the student internalizes this dense distributional
  guidance on its own on-policy rollouts"]: $\mathrm{KL}(\pi_\theta(\cdot|x)\,\|\,
  \mathrm{sg}\,\pi_\theta(\cdot|x,f))$ per token (the run's divergence, reverse KL by default).

Both steps of a round share one optimiser update (ours: the weights are shared); the M-step's
target is the teacher before the update.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import check_fields
from ..tasks import chat_prompt_ids
from ..teachers import reprompt_messages
from .pidistill import _SharedTeacher
from .sdpo import FEEDBACK, successful_siblings

__all__ = ["VPD", "VPDConfig", "RewardShift", "bco_loss"]

CORRECT = "The previous attempt reached the correct final answer."  # ours


def bco_loss(implicit, rewards, delta: float) -> torch.Tensor:
    r"""Per-rollout BCO loss: $-\log\sigma(\tilde r-\delta)$ where the reward is $\ge 0.5$, else
    $-\log\sigma(\delta-\tilde r)$ (`softplus` form, finite for any $\tilde r$).

    Examples:
        >>> import math, torch
        >>> out = bco_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0]), delta=0.0)
        >>> [round(x, 4) for x in out.tolist()], round(math.log(2), 4)
        ([0.6931, 2.1269], 0.6931)
    """
    sign = torch.where(rewards.to(implicit.device) >= 0.5, 1.0, -1.0).to(implicit.dtype)
    return torch.nn.functional.softplus(-sign * (implicit - float(delta)))


class RewardShift:
    r"""BCO's reward shift $\delta=\tfrac12(\mu_+ + \mu_-)$, $\mu_\pm$ exponential moving
    averages (`momentum`) of the mean implicit reward of the verified / failed rollouts of each
    E-step, each started at its first batch [secondary: BCO with a running shift; the EMA form
    ours]. `update` returns the new $\delta$; `reduce` sums a number over processes (the
    batch's `global_sum`), so every process moves $\delta$ by the global class means.

    Examples:
        >>> s = RewardShift(momentum=0.5)
        >>> s.update([1.0, 3.0, -1.0], [1, 1, 0])     # mu+ = 2, mu- = -1
        0.5
        >>> s.update([4.0], [1])                      # mu+ = 0.5 * 2 + 0.5 * 4 = 3
        1.0
    """

    def __init__(self, momentum: float = 0.9):
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.mu: list[float | None] = [None, None]  # failed, verified

    @property
    def delta(self) -> float:
        seen = [m for m in self.mu if m is not None]
        return sum(seen) / len(seen) if seen else 0.0

    def update(self, implicit, rewards, reduce=float) -> float:
        x = torch.as_tensor(implicit, dtype=torch.float64).flatten()
        r = torch.as_tensor(rewards, dtype=torch.float64).flatten() >= 0.5
        for cls in (0, 1):
            sel = x[r] if cls else x[~r]
            n = reduce(float(sel.numel()))
            if n > 0:
                now, old = reduce(float(sel.sum())) / n, self.mu[cls]
                self.mu[cls] = (
                    now if old is None else self.momentum * old + (1 - self.momentum) * now
                )
        return self.delta

    def state_dict(self) -> dict:
        return {"momentum": self.momentum, "mu": list(self.mu)}

    def load_state_dict(self, state: dict) -> None:
        self.momentum, self.mu = float(state["momentum"]), list(state["mu"])


def _h(text: str, default):
    return field(default=default, metadata={"help": "VPD: " + text})


@dataclass(frozen=True)
class VPDConfig:
    _argument_group_name = "vpd (feedback teacher refined by an E-step, reverse-KL M-step)"

    vpd_e_every: int = _h("E-step every N steps (secondary: F = 5)", 5)
    vpd_e_weight: float = _h("(ours) weight of the E-step loss in its step's update", 1.0)
    vpd_beta: float = _h("trust-region temperature beta of the implicit reward (secondary)", 0.1)
    vpd_shift_momentum: float = _h("(ours) EMA momentum of the BCO reward shift", 0.9)
    vpd_sibling: bool = _h("feedback includes a successful sibling when there is one", True)

    def __post_init__(self):
        check_fields(
            self,
            ints={"vpd_e_every": 1},
            nonneg=("vpd_e_weight",),
            positive=("vpd_beta",),
        )
        if not 0.0 <= self.vpd_shift_momentum < 1.0:
            raise ValueError(
                f"vpd_shift_momentum must lie in [0, 1), got {self.vpd_shift_momentum!r}"
            )


class VPD(_SharedTeacher):
    """VPD (see the module). `batch.student` is the student; the teacher is `under` feedback."""

    name = "vpd"
    Config = VPDConfig

    def __init__(self, ctx):
        super().__init__(ctx)
        self.shift = RewardShift(self.options.vpd_shift_momentum)

    def feedback_prompts(self, batch) -> list[list[int]]:
        sib = successful_siblings(batch.rewards, batch.groups) if self.options.vpd_sibling else None
        texts = batch.rollouts.texts(self.ctx.tokenizer) if sib is not None else None
        msgs = []
        for i, p in enumerate(batch.rows):
            demo = texts[sib[i]] if sib is not None and sib[i] is not None else None
            msgs.append(
                reprompt_messages(p, demo, CORRECT if batch.rewards[i] >= 0.5 else FEEDBACK)
            )
        return [chat_prompt_ids(self.ctx.tokenizer, m, system=self.system) for m in msgs]

    def loss(self, batch):
        o, m, s = self.options, batch.mask, batch.student
        e_step = batch.step % o.vpd_e_every == 0 and o.vpd_e_weight > 0
        t = s.under(self.feedback_prompts(batch))
        metrics: dict = {"vpd_estep": e_step}
        loss = torch.zeros((), device=m.device)
        if e_step:
            lp_t = t.token_logprobs(1.0)
            lp_ref = s.token_logprobs(1.0, grad=False)  # the dynamic reference: today's student
            mf = m.to(lp_t.dtype)
            implicit = o.vpd_beta * ((lp_t - lp_ref.to(lp_t.dtype)) * mf).sum(-1)
            delta = self.shift.update(implicit.detach().cpu(), batch.rewards, batch.global_sum)
            per = bco_loss(implicit, batch.rewards, delta)
            l_e = per.sum() / max(batch.global_sum(float(len(per))), 1.0)
            loss = loss + o.vpd_e_weight * l_e
            r, imp = batch.rewards.to(implicit.device) >= 0.5, implicit.detach()
            metrics.update(
                vpd_estep_loss=float(l_e.detach()),
                vpd_shift=delta,
                vpd_reward_verified=float(imp[r].mean()) if r.any() else float("nan"),
                vpd_reward_failed=float(imp[~r].mean()) if (~r).any() else float("nan"),
            )
        l_m = self.div(batch, self.fixed_side(t), teacher_weight=s.weight.detach())
        loss = loss + self.weights(self.cfg)[0] * l_m
        metrics.update(distill_loss=float(l_m.detach()), divergence=self.div.divergence(batch.step))
        return loss, metrics

    def state_dict(self) -> dict:
        return {"shift": self.shift.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.shift.load_state_dict(state["shift"])
