r"""pi-Distill and PI-OPSD: a teacher with privileged information that *is* the student's network.

Penaloza et al. 2026 (arXiv:2602.04942; no code found). Both use one set of parameters
$\theta$: the teacher $\pi_\theta(\cdot|x,I)$ sees the privileged information $I$ (here the
task's `--view`, the worked solution by default), the student $\pi_\theta(\cdot|x)$ does not.
Its forward is the student's network after the teacher's prompt, with gradient
(`StudentOutputs.under`).

* **pi-Distill** [paper abstract: "a joint teacher-student objective that trains a
  PI-conditioned teacher and an unconditioned student simultaneously using the same model";
  the terms below are secondary/derived, methods spec 1.2]: the rollouts are sampled from the
  *teacher*; $J=\alpha J_T+(1-\alpha)J_S$ with the teacher's RL objective
  $J_T=\mathbb E_{y\sim\pi_T}[A(y)]-\beta\,\mathrm{KL}(\pi_T\,\|\,\mathrm{sg}\,\pi_S)$ per token
  and the student's on the same samples with the importance ratio
  $w_t=\min(\pi_S(y_t)/\pi_T(y_t),c)$ (detached): $J_S=\mathbb E[w\,A]$ (`pidistill_surrogate`).
  $A$ = GRPO advantages of the teacher samples' rewards.
* **PI-OPSD** (the paper's OPSD) [paper abstract: "trains using Reinforcement Learning (RL) with
  a reverse KL-penalty between the student and the PI-conditioned teacher"]: student rollouts,
  GRPO plus $\beta\,\mathrm{KL}(\pi_S\,\|\,\mathrm{sg}\,\pi_T)$ (`--distill-weight` = $\beta$).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import check_fields
from ..tasks import chat_prompt_ids
from ..teachers import view_messages
from .base import Method
from .shared import DivergenceLoss, grpo_advantages, grpo_loss, masked_mean, policy_temperature

__all__ = ["PIDistill", "PIDistillConfig", "PIOPSD", "pidistill_surrogate"]


def pidistill_surrogate(lp_teacher, lp_student, adv, alpha: float, clip: float = 2.0):
    r"""Per-token pi-Distill policy-gradient surrogate on teacher samples (KL term excluded):
    $-\alpha A\,e^{\ell_T-\mathrm{sg}\,\ell_T}-(1-\alpha)A\,w\,e^{\ell_S-\mathrm{sg}\,\ell_S}$
    with $w=\min(e^{\mathrm{sg}(\ell_S-\ell_T)},c)$ [structure secondary, exact form ours]. Its
    gradient is $-\alpha A$ in $\ell_T$ and $-(1-\alpha)A\,w$ in $\ell_S$; value $-A(\alpha+(1-
    \alpha)w)$. Returns `(per_token, w)`.

    Examples:
        >>> import torch
        >>> lt = torch.zeros(1, 2, requires_grad=True)
        >>> ls = torch.tensor([[0.0, -1.0]], requires_grad=True)
        >>> v, w = pidistill_surrogate(lt, ls, torch.tensor([2.0]), alpha=0.5)
        >>> v.sum().backward()
        >>> lt.grad.tolist(), [round(x, 4) for x in ls.grad[0].tolist()]
        ([[-1.0, -1.0]], [-1.0, -0.3679])
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
    if not clip > 0:
        raise ValueError(f"clip must be > 0, got {clip!r}")
    a = adv.to(lp_teacher.dtype)[:, None]
    d = (lp_student.detach() - lp_teacher.detach()).double().clamp(-20, 20)
    w = d.exp().clamp(max=float(clip)).to(lp_teacher.dtype)
    t_term = torch.exp(lp_teacher - lp_teacher.detach())
    s_term = torch.exp(lp_student - lp_student.detach())
    return -a * (alpha * t_term + (1.0 - alpha) * w * s_term), w


def _h(text: str, default):
    return field(default=default, metadata={"help": "pi-Distill: " + text})


@dataclass(frozen=True)
class PIDistillConfig:
    _argument_group_name = (
        "pidistill (a PI teacher and the student in one model, trained jointly on teacher "
        "samples; piopsd, its GRPO + reverse-KL sibling, has no options of its own)"
    )

    pid_alpha: float = _h(
        "alpha of J = alpha J_teacher + (1 - alpha) J_student (0.5: 'by far the most "
        "consistent' per a third-party account)",
        0.5,
    )
    pid_beta: float = _h("(ours) weight of KL(teacher || sg student) in the teacher term", 0.1)
    pid_is_clip: float = _h("(ours) clip c of the importance ratio pi_S/pi_T", 2.0)

    def __post_init__(self):
        check_fields(self, unit=("pid_alpha",), nonneg=("pid_beta",), positive=("pid_is_clip",))


class _SharedTeacher(Method):
    """The teacher's prompt (`--view`) and the shared-parameter teacher's outputs."""

    teacher_kind = None
    default_beta = 1.0  # reverse KL (the paper's penalty)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.div = DivergenceLoss(ctx.cfg, None, self.default_beta)
        self.system = None if ctx.cfg.run.system_prompt == "template" else ctx.cfg.run.system_prompt

    def prompt_ids(self, problems, privileged: bool) -> list[list[int]]:
        task, tc = self.ctx.task, self.cfg.teacher
        return [
            chat_prompt_ids(
                self.ctx.tokenizer,
                view_messages(task, p, tc.view, tc.rho) if privileged else task.student_messages(p),
                system=self.system,
            )
            for p in problems
        ]

    def fixed_side(self, outputs):
        """Detached hidden states (fused) or logits (plain) of `outputs`, as the KL's target."""
        with torch.no_grad():
            return (outputs.hidden() if self.div.fused else outputs.logits()).detach()


class PIDistill(_SharedTeacher):
    """pi-Distill (see the module). `batch.student` is the teacher-context forward."""

    name = "pidistill"
    Config = PIDistillConfig

    @classmethod
    def check(cls, cfg) -> None:
        super().check(cfg)
        if cfg.run.k < 2:
            raise ValueError(
                f"k must be >= 2 for pidistill (group-relative advantages), got {cfg.run.k}"
            )

    def collect(self, sources, problems, step):
        k = self.cfg.run.k
        prompts = self.prompt_ids(problems, privileged=True)
        ro = sources.generate(
            [p for p in prompts for _ in range(k)], sources.row_ids(problems), stream=1
        )
        ro.group = torch.arange(len(problems), device=ro.group.device).repeat_interleave(k)
        return ro

    def loss(self, batch):
        o, tau = self.options, policy_temperature(self.cfg)
        t_out = batch.student  # the teacher: the same network after x + I
        s_out = t_out.under(self.prompt_ids(batch.rows, privileged=False))
        lp_t, lp_s = t_out.token_logprobs(tau), s_out.token_logprobs(tau)
        adv = grpo_advantages(batch.rewards, batch.groups, scale=self.cfg.loss.scale_rewards)
        per_tok, w = pidistill_surrogate(
            lp_t, lp_s, adv.to(lp_t.device), o.pid_alpha, o.pid_is_clip
        )
        l_pg = batch.reduce(per_tok)
        l_kl = torch.zeros((), device=l_pg.device)
        if o.pid_alpha > 0 and o.pid_beta > 0:  # KL(pi_T || sg pi_S) on the teacher's tokens
            l_kl = self.div(batch, self.fixed_side(s_out), teacher_weight=t_out.weight.detach())
        loss = l_pg + o.pid_alpha * o.pid_beta * l_kl
        m = batch.mask
        metrics = dict(
            distill_loss=float(loss.detach()),
            pid_pg_loss=float(l_pg.detach()),
            pid_kl=float(l_kl.detach()),
            pid_is_ratio_mean=masked_mean(w, m),
            pid_student_logp=masked_mean(lp_s.detach(), m),
            pid_teacher_logp=masked_mean(lp_t.detach(), m),
        )
        return self.weights(self.cfg)[0] * loss, metrics


class PIOPSD(_SharedTeacher):
    """PI-OPSD (see the module): GRPO on student rollouts plus beta KL(pi_S || sg pi_T)."""

    name = "piopsd"
    default_weights = (0.1, 1.0)  # (beta: ours, the paper's value was not found; GRPO)
    mixes_grpo = True

    def loss(self, batch):
        d_w, g_w = self.weights(self.cfg)
        t_out = batch.student.under(self.prompt_ids(batch.rows, privileged=True))
        target = self.fixed_side(t_out)
        l_d = self.div(batch, target, teacher_weight=batch.student.weight.detach())
        l_g = grpo_loss(batch, self.cfg)
        metrics = dict(
            distill_loss=float(l_d.detach()),
            grpo_loss=float(l_g.detach()),
            divergence=self.div.divergence(batch.step),
        )
        return d_w * l_d + g_w * l_g, metrics
