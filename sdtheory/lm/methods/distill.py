r"""OPSD and GKD: a teacher scores the student's completions; the loss is the run's divergence
(optionally plus the GRPO surrogate), with the two-stage KL switch of `--kl-switch-step`.

* **OPSD** [code: siyan-zhao/OPSD; methods spec 1.1]: the self-teacher is the student's network
  after a prompt that adds a privileged view (default: the worked solution), fixed at the
  initial weights by default (`--teacher-mode`). Default divergence: forward KL ($\beta=0$), the
  paper's v3 choice per its authors [secondary: siyan-zhao/OPSD issue 14, "We used forward KL
  after ablation"]; `--beta 0.5` is the earlier JSD.
* **GKD** [paper: Agarwal et al. 2024]: a separate teacher (`--teacher-model`); with probability
  $\lambda$ (`--gkd-lambda`) a step trains on student samples, otherwise on the dataset's worked
  solutions (the demonstration source); generalized JSD($\beta=0.5$).

`OPSD` is also the base of the methods that change only the teacher's prompt
(`teacher_messages`) or weigh the rollouts (`sequence_weights`): PACED, ATESD, and GRPO (with
weights $(0, 1)$ by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import check_fields
from .base import Method, StepBatch
from .shared import DivergenceLoss, grpo_loss

__all__ = ["GKD", "GKDConfig", "OPSD"]


class OPSD(Method):
    """OPSD: the privileged-context self-teacher and the run's divergence (see the module)."""

    name = "opsd"
    default_beta = 0.0
    needs_distill = False  # distill_weight 0 leaves the GRPO term (the grpo method)
    mixes_grpo = True

    def __init__(self, ctx):
        super().__init__(ctx)
        self.div = (
            None
            if self.teacher is None
            else DivergenceLoss(ctx.cfg, self.teacher, self.default_beta)
        )

    def teacher_messages(self, batch: StepBatch) -> list | None:
        """Chat messages of the teacher's prompt per rollout (`None`: the teacher's own)."""
        return None

    def sequence_weights(self, batch: StepBatch) -> tuple[torch.Tensor | None, dict]:
        """Per-rollout weights `(N,)` of the divergence (`None`: all 1) and metrics."""
        return None, {}

    def loss(self, batch: StepBatch) -> tuple[torch.Tensor, dict]:
        d_w, g_w = self.weights(self.cfg)
        loss = torch.zeros((), device=batch.mask.device)
        metrics: dict = {}
        if self.div is not None:
            w, metrics = self.sequence_weights(batch)
            t_out = self.div.teacher_out(batch, self.teacher_messages(batch))
            l_d = self.div(batch, t_out, weights=None if w is None else w.to(batch.mask.device))
            loss = loss + d_w * l_d
            metrics.update(
                distill_loss=float(l_d.detach()), divergence=self.div.divergence(batch.step)
            )
        if g_w > 0:
            l_g = grpo_loss(batch, self.cfg)
            loss = loss + g_w * l_g
            metrics["grpo_loss"] = float(l_g.detach())
        return loss, metrics


@dataclass(frozen=True)
class GKDConfig:
    _argument_group_name = "gkd (separate teacher, on/off-policy mixture)"

    gkd_lambda: float = field(
        default=1.0, metadata={"help": "GKD: probability that a step trains on student samples"}
    )

    def __post_init__(self):
        check_fields(self, unit=("gkd_lambda",))


class GKD(OPSD):
    """GKD: a separate teacher; a step's tokens are on-policy with probability lambda."""

    name = "gkd"
    Config = GKDConfig
    teacher_kind = "model"
    default_beta = 0.5

    def collect(self, sources, problems, step):
        coin = np.random.default_rng([self.cfg.run.seed, step, 1]).random()
        if coin < self.options.gkd_lambda:
            return sources.policy(problems)
        return sources.demonstrations(problems)
