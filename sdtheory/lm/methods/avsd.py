r"""AVSD: a sampled reverse-KL step toward a consensus of several privileged views.

[code: duykhuongnguyen/AVSD, `gate_mode="avsd"`] The self-teacher scores the sampled tokens under
each view of `--avsd-views`; the per-token target log-probability (`avsd_target`) is the
geometric mean of the views plus a gated part of their Jensen gap, and the loss is the
advantage surrogate $-\mathrm{sg}(\log q^\*-\log\pi_\theta)\,\log\pi_\theta$ on the sampled
tokens. Not a full-vocabulary divergence, so `--fused-loss` does not apply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..tasks import VIEWS
from ..teachers import view_messages
from .base import Method
from .shared import masked_mean, token_logprobs

__all__ = ["AVSD", "AVSDConfig", "avsd_target"]


def avsd_target(view_logprobs: torch.Tensor, student_logprobs: torch.Tensor, eps: float = 1e-8):
    r"""AVSD's per-token target log-probability of the sampled token [code: `gate_mode="avsd"`].

    With $\ell_v$ the view log-probs (`view_logprobs`, shape `(M, ...)`) and $\ell_S$ the
    student's: $\log q_G=\frac1M\sum_v\ell_v$, $\log q_A=\log\frac1M\sum_v e^{\ell_v}$, Jensen gap
    $J=\max(0,\log q_A-\log q_G)$, $\delta_v=\ell_v-\ell_S$, $c=\bar\delta$, alignment
    $a=|c|/(\overline{|\delta|}+\epsilon)$, proportionality $r=|c|/(|c|+J+\epsilon)$, gate $g=ar$,
    target $\log q^\*=\log q_G+gJ$. Returns a dict of these (all detached).

    Examples:
        >>> import torch
        >>> out = avsd_target(torch.tensor([[-1.0], [-1.0]]), torch.tensor([-2.0]))
        >>> float(out["target"][0])   # agreeing views: the consensus q_G
        -1.0
    """
    lv = view_logprobs.detach().double()
    ls = student_logprobs.detach().double()
    m = lv.shape[0]
    log_g = lv.mean(0)
    log_a = torch.logsumexp(lv, 0) - math.log(m)
    jensen = (log_a - log_g).clamp(min=0)
    delta = lv - ls
    c = delta.mean(0)
    align = c.abs() / (delta.abs().mean(0) + eps)
    prop = c.abs() / (c.abs() + jensen + eps)
    gate = align * prop
    return {
        "target": log_g + gate * jensen,
        "consensus": log_g,
        "jensen": jensen,
        "alignment": align,
        "proportionality": prop,
        "gate": gate,
    }


@dataclass(frozen=True)
class AVSDConfig:
    _argument_group_name = "avsd (multi-view consensus target)"

    avsd_views: str = field(
        default="solution,partial,answer",
        metadata={"help": "AVSD: comma-separated privileged views (answer, solution, partial)"},
    )

    @property
    def views(self) -> list[str]:
        return [v.strip() for v in self.avsd_views.split(",") if v.strip()]

    def __post_init__(self):
        if not self.views or any(v not in VIEWS for v in self.views):
            raise ValueError(f"avsd_views must be a comma list of {VIEWS}, got {self.avsd_views!r}")


class AVSD(Method):
    """AVSD (see the module)."""

    name = "avsd"
    Config = AVSDConfig

    def loss(self, batch):
        task, rho, ro, mask = self.ctx.task, self.cfg.teacher.rho, batch.rollouts, batch.mask
        comp = ro.completions
        s_lp = batch.student.token_logprobs(1.0)
        view_lp = []
        for v in self.options.views:
            messages = [view_messages(task, p, v, rho) for p in batch.rows]
            logits = self.teacher.logits(batch.rows, comp, ro.completion_mask, messages=messages)
            view_lp.append(token_logprobs(logits, comp))
        out = avsd_target(torch.stack(view_lp), s_lp)
        adv = out["target"].to(s_lp.dtype) - s_lp.detach()
        l_d = batch.reduce(-adv * s_lp)
        metrics = dict(
            distill_loss=float(l_d.detach()),
            avsd_gate=masked_mean(out["gate"], mask),
            avsd_alignment=masked_mean(out["alignment"], mask),
            avsd_proportionality=masked_mean(out["proportionality"], mask),
            avsd_jensen=masked_mean(out["jensen"], mask),
            avsd_views=len(self.options.views),
        )
        return self.weights(self.cfg)[0] * l_d, metrics
