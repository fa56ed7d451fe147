r"""Skill-SD: GRPO plus importance-weighted sampled reverse KL to a skill-conditioned self-teacher.

Wang et al. (vivo), arXiv:2604.10674; no official code was found (methods spec 1.9).
[paper: abstract] the student "always acts under the plain task prompt"; the teacher is the
same model conditioned on skills summarised from completed trajectories, "dynamically
synchronize[d] ... with the improving student"; the loss adds "an importance-weighted reverse-KL
loss to provide gradient-correct token-level distillation" to GRPO. The exact weight was not
found. We implement the spec's derived form [derived: methods spec 1.9]

$$L = g\,L_{\rm GRPO} + \lambda\,\mathrm{mean}_t\big[-\rho_t\,\mathrm{sg}(\log q_t(y_t)-\log
p_\theta(y_t))\,\log p_\theta(y_t)\big],\qquad \rho_t=\min\big(p_\theta(y_t)/p_{\rm old}(y_t),\,
c\big)\ \text{(detached)},$$

over the assistant tokens of the student's (multi-turn, `--env calculator`) rollouts, with $q$ the
teacher under `teachers.skill_messages` (the student's prompt plus the retrieved skills), $g$ =
`--grpo-weight` and $\lambda$ = `--distill-weight` (both 1: ours), $c$ = `--skillsd-is-clip`
(ours, SDPO's 2). The skill memory, its UCB retrieval and the bandit reward are ours
(`sdtheory.lm.methods.skills`). The teacher is the `reference` self-teacher, synchronised with
the student after every `--skillsd-sync-every` steps by
$\theta_T\leftarrow(1-r)\theta_T+r\theta$, $r$ = `--skillsd-sync-rate` (ours: every step, SDPO's
EMA rate 0.05; the paper's schedule was not found); `--teacher-mode live` uses the student
itself, `ema` is refused (it would move the teacher twice).

Each step: skills for every problem are picked by UCB before the loss; after it, each picked arm
gets the reward of its rollouts, and the first successful and the first failed rollout of the
step are summarised into new skills.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import check_fields
from ..losses import sampled_token_loss
from ..teachers import skill_messages
from .base import Method
from .sdpo import importance_weights
from .shared import grpo_loss, masked_mean, teacher_rows, token_logprobs
from .skills import SkillMemory, summarize

__all__ = ["SkillSD", "SkillSDConfig", "skill_rewards"]


def skill_rewards(logq, logp, mask, rewards) -> list[float]:
    r"""Bandit reward per rollout: $(2R-1)\,\mathrm{mean}_t(\log q-\log p)$ over its masked
    tokens (0 for a rollout without tokens) [ours].

    Examples:
        >>> import torch
        >>> m = torch.tensor([[1, 1, 0], [1, 0, 0]]).bool()
        >>> skill_rewards(torch.tensor([[0., -1., 5.], [-1., 0., 0.]]), torch.full((2, 3), -2.),
        ...               m, torch.tensor([1., 0.]))
        [1.5, -1.0]
    """
    d = (logq.double() - logp.double()) * mask
    n = mask.sum(-1).clamp(min=1)
    sign = 2.0 * rewards.double().to(d.device) - 1.0
    return (sign * d.sum(-1) / n).cpu().tolist()


def _h(text: str, default):
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class SkillSDConfig:
    _argument_group_name = (
        "skillsd (GRPO + IW reverse KL to the self-teacher prompted with retrieved skills)"
    )

    skillsd_skills: int = _h("Skill-SD: skills retrieved into each teacher prompt", 2)
    skillsd_memory: int = _h("Skill-SD (ours): capacity of the skill memory", 32)
    skillsd_ucb_c: float = _h("Skill-SD: UCB exploration coefficient c (ours: 1)", 1.0)
    skillsd_is_clip: float = _h("Skill-SD (ours): clip of the importance weight p/p_old", 2.0)
    skillsd_max_chars: int = _h("Skill-SD (ours): length of a skill summary in characters", 160)
    skillsd_sync_every: int = _h("Skill-SD (ours): sync the teacher every N steps", 1)
    skillsd_sync_rate: float = _h(
        "Skill-SD (ours): teacher <- (1 - rate) teacher + rate student at a sync", 0.05
    )

    def __post_init__(self):
        check_fields(
            self,
            ints={
                "skillsd_skills": 0,
                "skillsd_memory": 1,
                "skillsd_max_chars": 16,
                "skillsd_sync_every": 1,
            },
            nonneg=("skillsd_ucb_c",),
            positive=("skillsd_is_clip",),
        )
        if not 0.0 < self.skillsd_sync_rate <= 1.0:
            raise ValueError(
                f"skillsd_sync_rate must lie in (0, 1], got {self.skillsd_sync_rate!r}"
            )


class SkillSD(Method):
    """Skill-SD (see the module); the skill memory is the method's state (exact resume)."""

    name = "skillsd"
    Config = SkillSDConfig
    teacher_kind = "reference"
    default_weights = (1.0, 1.0)  # (lambda, g), ours
    min_k = 2
    needs_distill = False
    mixes_grpo = True

    @classmethod
    def check(cls, cfg) -> None:
        super().check(cfg)
        if cls.weights(cfg)[0] > 0 and cfg.teacher.teacher_mode == "ema":
            raise ValueError(
                "teacher_mode must be fixed or live for skillsd (it syncs its teacher itself: "
                "--skillsd-sync-every, --skillsd-sync-rate), got 'ema'"
            )

    def __init__(self, ctx):
        super().__init__(ctx)
        if ctx.world > 1:
            raise ValueError(
                f"skillsd keeps its skill memory in one process, got {ctx.world} processes"
            )
        self.memory = SkillMemory(self.options.skillsd_memory, self.options.skillsd_ucb_c)
        self._picks: list[list[int]] = []
        self._rewards: list[float] = []

    def loss(self, batch):
        lam, g = self.weights(self.cfg)
        o, m = self.options, batch.mask
        loss = torch.zeros((), device=m.device)
        metrics: dict = {"skillsd_memory_size": len(self.memory)}
        self._picks = []
        if self.teacher is not None and lam > 0:
            self._picks = self.memory.select(len(batch.problem_ids), o.skillsd_skills)
            texts = [[self.memory.texts[a] for a in arms] for arms in self._picks]
            msgs = [
                skill_messages(self.ctx.task, p, texts[j])
                for p, j in zip(batch.rows, batch.groups.tolist(), strict=True)
            ]
            lq = teacher_rows(self.teacher, batch, token_logprobs, messages=msgs)
            lp = batch.student.token_logprobs(1.0)
            lq = lq.to(lp.dtype)
            rho = importance_weights(lp, batch.rollouts.logprobs.to(lp.dtype), o.skillsd_is_clip)
            l_sd = batch.reduce(sampled_token_loss(lp, lq, estimator="advantage"), weights=rho)
            loss = loss + lam * l_sd
            self._rewards = skill_rewards(lq, lp.detach(), m, batch.rewards)
            metrics.update(
                distill_loss=float(l_sd.detach()),
                skillsd_skills_used=sum(map(len, self._picks)) / max(len(self._picks), 1),
                skillsd_log_ratio=masked_mean(lq - lp.detach(), m),
                is_ratio_mean=masked_mean(rho, m),
            )
        if g > 0:
            l_g = grpo_loss(batch, self.cfg)
            loss = loss + g * l_g
            metrics["grpo_loss"] = float(l_g.detach())
        return loss, metrics

    def after_step(self, batch, metrics):
        """Bandit update for this step's picks, then new skills from this step's rollouts."""
        out = {}
        if self._picks:
            arms, rewards = [], []
            for i, g_ in enumerate(batch.groups.tolist()):
                arms += self._picks[g_]
                rewards += [self._rewards[i]] * len(self._picks[g_])
            self.memory.update(arms, rewards)
            if rewards:
                out["skillsd_bandit_reward"] = sum(rewards) / len(rewards)
        if self.teacher is not None:
            texts, r = batch.rollouts.texts(self.ctx.tokenizer), batch.rewards.tolist()
            tool = self.cfg.run.env != ""
            for want in (True, False):
                i = next((j for j, x in enumerate(r) if (x >= 0.5) == want), None)
                if i is not None:
                    chars = self.options.skillsd_max_chars
                    self.memory.add(summarize(texts[i], r[i], tool=tool, max_chars=chars))
        out["skillsd_memory_size_after"] = len(self.memory)
        self._picks = []
        t, o = self.teacher, self.options
        if t is not None and t.mode != "live" and (batch.step + 1) % o.skillsd_sync_every == 0:
            t.blend(self.ctx.student, o.skillsd_sync_rate)
        return out

    def state_dict(self) -> dict:
        return {"memory": self.memory.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.memory.load_state_dict(state["memory"])
