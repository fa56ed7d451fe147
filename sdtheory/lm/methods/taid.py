r"""TAID: KL from a detached logit-space interpolation of student and teacher to the student.

Shing et al., ICLR 2025 (arXiv:2501.16937), official code `SakanaAI/TAID` (`a062892`,
`src/distil_losses/taid.py` and `fkl.py`). The target is
$p_t=\mathrm{softmax}\big((1-t)\,\mathrm{sg}(z_s)+t\,z_T\big)$ and the loss is the forward KL
$\mathrm{KL}(p_t\,\|\,q_\theta)$ of `sdtheory.lm.losses` with $p_t$ as the teacher, so it is
exactly 0 at $t=0$ and the forward KL to the teacher at $t=1$. Its gradient in the student
logits is $q_\theta-p_t$ per position: the gradient of the cross-entropy the official code
minimises. `TAIDSchedule` (from `sdtheory.theory.taid`) moves $t$ once per optimiser step:

    sched = TAIDSchedule()
    for step in range(total_steps):
        loss = taid_loss(student(x), teacher_logits, sched.t, mask)
        loss.backward(); opt.step(); opt.zero_grad()
        sched.update(loss.detach(), step, total_steps)

In the trainer the fused path writes the interpolated logits as one product,
$[(1-t)\,\mathrm{sg}(h_s),\ t\,h_T]\,[W_s,\ W_T]^\top$, so the chunked loss applies unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from ...theory.taid import TAIDSchedule
from ..losses import distillation_loss, fused_linear_distillation_loss, token_divergence
from ..losses._token import _compute_dtype
from .base import Method
from .shared import entropy

__all__ = ["TAID", "TAIDConfig", "TAIDSchedule", "interpolated_log_probs", "taid_loss"]

_VALUES = ("kl", "cross_entropy")


def _check_t(t) -> float:
    if isinstance(t, torch.Tensor):
        if t.numel() != 1:
            raise ValueError(f"t must be a scalar, got a tensor of shape {tuple(t.shape)}")
        t = t.item()
    v = float(t)
    if not (0.0 <= v <= 1.0):
        raise ValueError(f"t must lie in [0, 1], got {t!r}")
    return v


@torch.no_grad()
def interpolated_logits(student_logits, teacher_logits, t: float) -> torch.Tensor:
    r"""$(1-t)\,z_s+t\,z_T$, detached, in float32 or higher; at $t\in\{0,1\}$ the unused side is
    dropped, so `-inf` logits stay exact and $t=0$ returns the student's logits themselves."""
    tv = _check_t(t)
    dt = _compute_dtype(student_logits.dtype)
    zs, zt = student_logits.detach().to(dt), teacher_logits.detach().to(dt)
    return zs if tv == 0.0 else zt if tv == 1.0 else (1.0 - tv) * zs + tv * zt


def interpolated_log_probs(student_logits, teacher_logits, t: float) -> torch.Tensor:
    r"""$\log p_t$ with $p_t=\mathrm{softmax}((1-t)z_s+t z_T)$, detached, in float32 or higher."""
    return torch.log_softmax(interpolated_logits(student_logits, teacher_logits, t), dim=-1)


def taid_loss(student_logits, teacher_logits, t: float, mask=None, *, value: str = "kl"):
    r"""TAID loss: mean over masked positions of $\mathrm{KL}(p_t\,\|\,q_\theta)$.

    Args:
      student_logits: (..., V) student logits (gradients flow here only). A vocabulary entry
        where student and target are `-inf` at every position (a masked vocabulary) is dropped
        before the loss: both distributions give it zero mass.
      teacher_logits: (..., V) teacher logits, same shape (treated as constant).
      t: interpolation weight in $[0, 1]$ (a float, e.g. `TAIDSchedule.t`).
      mask: (...) positions that count (bool or 0/1); `None` counts every position. The loss is
        $\sum_s \mathrm{mask}_s\,\ell_s / \sum_s \mathrm{mask}_s$, as in the official code.
      value: `"kl"` (default) or `"cross_entropy"` $-\sum_y p_t\log q_\theta$ (KL plus the
        entropy of $p_t$: the number the official code logs and feeds to its schedule). Both
        have the same gradient.

    Returns:
      A scalar tensor in float32 (float64 for float64 inputs).

    Raises:
      ValueError: naming the argument, for mismatched shapes, $t\notin[0,1]$, a mask of the
        wrong shape or selecting no position, or an unknown `value`.
    """
    if value not in _VALUES:
        raise ValueError(f"value must be one of {_VALUES}, got {value!r}")
    if not torch.is_floating_point(student_logits) or student_logits.ndim < 1:
        raise ValueError(
            f"student_logits must be floating point with a vocabulary axis, got "
            f"{student_logits.dtype} of shape {tuple(student_logits.shape)}"
        )
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher_logits must have the shape of student_logits {tuple(student_logits.shape)}, "
            f"got {tuple(teacher_logits.shape)}"
        )
    target = interpolated_logits(student_logits.detach(), teacher_logits.detach(), t)
    zs = student_logits
    dead = (torch.isneginf(zs.detach()) & torch.isneginf(target)).reshape(-1, zs.shape[-1]).all(0)
    if bool(dead.any()):  # a masked vocabulary: p_t = q = 0 there
        keep = (~dead).nonzero().squeeze(1)
        zs, target = zs.index_select(-1, keep), target.index_select(-1, keep)
    per_pos = token_divergence(zs, target, divergence="forward_kl")
    if value == "cross_entropy":
        per_pos = per_pos + entropy(torch.log_softmax(target, -1))
    if mask is None:
        return per_pos.mean()
    if tuple(mask.shape) != tuple(per_pos.shape):
        raise ValueError(
            f"mask must have shape {tuple(per_pos.shape)} (the logits without the vocabulary "
            f"axis), got {tuple(mask.shape)}"
        )
    m = mask != 0
    if not bool(m.any()):
        raise ValueError("mask must select at least one position, got an empty mask")
    return per_pos.where(m, torch.zeros((), dtype=per_pos.dtype)).sum() / m.sum()


@dataclass(frozen=True)
class TAIDConfig:
    _argument_group_name = "taid (separate teacher, interpolated target)"

    taid_t_start: float = field(default=0.4, metadata={"help": "TAID: initial interpolation t"})
    taid_t_end: float = field(default=1.0, metadata={"help": "TAID: final interpolation t"})
    taid_alpha: float = field(default=5e-4, metadata={"help": "TAID: t learning rate"})
    taid_beta: float = field(default=0.99, metadata={"help": "TAID: momentum coefficient"})
    taid_adaptive: bool = field(
        default=True, metadata={"help": "TAID: adaptive t (false = linear schedule)"}
    )

    def __post_init__(self):
        self.schedule()  # validates, naming the argument

    def schedule(self) -> TAIDSchedule:
        t = {f.name[5:]: getattr(self, f.name) for f in dataclasses.fields(self)}
        return TAIDSchedule(**t)


class TAID(Method):
    """TAID in the trainer: a separate teacher, $t$ stepped once per optimiser step."""

    name = "taid"
    Config = TAIDConfig
    teacher_kind = "model"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.schedule = self.options.schedule()
        self.fused = self.cfg.loss.fused_loss

    def loss(self, batch):
        t, s, teacher = self.schedule.t, batch.student, self.teacher
        kw = dict(divergence="forward_kl", reduction=batch.reduction, num_items=batch.num_items())
        comp = batch.rollouts.completions
        if self.fused:  # target logits = [(1-t) sg(h_s), t h_T] @ [W_s, W_T]^T
            h_t = teacher.hidden(batch.rows, comp, batch.rollouts.completion_mask)
            h_s, w_s, w_t = s.hidden().detach(), s.weight.detach(), teacher.lm_head_weight
            h, w = (
                (h_s, w_s)
                if t == 0.0
                else (h_t, w_t)
                if t == 1.0
                else (torch.cat([(1 - t) * h_s, t * h_t], -1), torch.cat([w_s, w_t], -1))
            )
            l_d = fused_linear_distillation_loss(s.hidden(), s.weight, h, w, batch.mask, **kw)
        else:
            target = interpolated_logits(
                s.logits(), teacher.logits(batch.rows, comp, batch.rollouts.completion_mask), t
            )
            l_d = distillation_loss(s.logits(), target, batch.mask, **kw)
        return self.weights(self.cfg)[0] * l_d, {"distill_loss": float(l_d.detach()), "taid_t": t}

    def after_step(self, batch, metrics):
        done = batch.step + 1
        return {
            "taid_t_next": self.schedule.update(
                metrics["distill_loss"], done - 1, self.cfg.run.steps
            )
        }

    def state_dict(self) -> dict:
        return {"schedule": self.schedule.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.schedule.load_state_dict(state["schedule"])
