r"""SRPO: correct rollouts (and failed ones without a teacher) get GRPO; failed rollouts with a
teacher get SDPO's distillation, each token weighted by the teacher's confidence.

[third-party re-implementations] Route $z_i=(1-c_i)\,m_i$ (`srpo_routes`): distill when the
rollout failed and has an SDPO teacher. Token weights $w_t=e^{-\beta_H H(q_t)}$ of the teacher
entropy, normalised to mean 1 over the distilled tokens (`entropy_weights`). Both losses share
one token-mean denominator (the whole batch). Default weights: distillation 1, GRPO 1.
"""

from __future__ import annotations

import torch

from .sdpo import SDPO
from .shared import entropy, grpo_loss, masked_mean

__all__ = ["SRPO", "entropy_weights", "srpo_routes"]


def srpo_routes(rewards: torch.Tensor, has_teacher: torch.Tensor) -> torch.Tensor:
    """SRPO route mask $z_i=(1-c_i)\\,m_i$ [third-party re-implementations]: True = distill
    (failed and a teacher exists), False = GRPO (correct, or failed without a teacher).

    Examples:
        >>> import torch
        >>> srpo_routes(torch.tensor([1., 0., 0., 1.]), torch.tensor([True, True, False, False]))
        tensor([False,  True, False, False])
    """
    return (rewards < 0.5) & has_teacher.bool()


def entropy_weights(
    teacher_logits: torch.Tensor, mask: torch.Tensor, beta_h: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""SRPO token weights $w_t=e^{-\beta_H H(q_t)}$ normalised to mean 1 over the masked tokens
    [third-party re-implementations, `dw_normalizer_scope=global`]; returns `(w, H)`, `w` = 0
    off the mask. Full-vocabulary entropy here (the re-implementations use the top-k support).

    Examples:
        >>> import torch
        >>> z = torch.tensor([[[0., 0.], [100., 0.]]])    # entropies log 2 and ~0
        >>> w, h = entropy_weights(z, torch.ones(1, 2, dtype=torch.bool), beta_h=1.0)
        >>> bool(torch.allclose(w, torch.tensor([[2 * 0.5 / 1.5, 2 * 1 / 1.5]]), atol=1e-6))
        True
    """
    if not beta_h >= 0:
        raise ValueError(f"beta_h must be >= 0, got {beta_h!r}")
    h = entropy(torch.log_softmax(teacher_logits.double(), -1))
    m = mask.bool()
    raw = torch.exp(-beta_h * h) * m
    n = m.sum()
    if n == 0:
        return raw.float(), h.float()
    return (raw * n / raw.sum()).float(), h.float()


class SRPO(SDPO):
    """SRPO (see the module): SDPO on the failed rollouts with a teacher, GRPO on the rest."""

    name = "srpo"
    default_weights = (1.0, 1.0)
    mixes_grpo = True

    def loss(self, batch):
        t_out, has, isw, metrics = self.distill(batch)
        d_w, g_w = self.weights(self.cfg)
        route = srpo_routes(batch.rewards, has.cpu()).to(batch.mask.device)
        sd_mask = batch.mask & route[:, None]
        gr_mask = batch.mask & ~route[:, None]
        t_logits = self.div.teacher_logits(t_out)
        w_ent, h = entropy_weights(t_logits, sd_mask, self.options.srpo_entropy_beta)
        l_d = self.div(batch, t_out, mask=sd_mask, weights=isw * w_ent.to(isw.device))
        l_g = grpo_loss(batch, self.cfg, mask=gr_mask)
        frac = float(route.double().mean())
        sel = w_ent[sd_mask.cpu()]
        metrics.update(
            distill_loss=float(l_d.detach()),
            grpo_loss=float(l_g.detach()),
            divergence=self.div.divergence(batch.step),
            srpo_frac_distill=frac,
            srpo_frac_grpo=1 - frac,
            teacher_entropy=masked_mean(h.to(sd_mask.device), sd_mask),
            entropy_weight_min=float(sel.min()) if sel.numel() else float("nan"),
            entropy_weight_max=float(sel.max()) if sel.numel() else float("nan"),
        )
        return d_w * l_d + g_w * l_g, metrics
