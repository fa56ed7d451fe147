r"""TAID loss in PyTorch: KL from the detached logit-space interpolation to the student.

Shing et al., ICLR 2025 (arXiv:2501.16937), official code `SakanaAI/TAID` (`a062892`,
`src/distil_losses/taid.py` and `fkl.py`). The target is
$p_t=\mathrm{softmax}\big((1-t)\,\mathrm{sg}(z_s)+t\,z_p\big)$ (`sg` = stop-gradient) and the
loss is the token mean over the mask of $\mathrm{KL}(p_t\,\|\,q_\theta)$. Its gradient in the
student logits is $(q_\theta-p_t)/|\mathrm{mask}|$ per position: the gradient of the
cross-entropy the official code minimises. Softmaxes run in float32, or float64 for float64
inputs.

Pair it with `TAIDSchedule` (re-exported here from `sdtheory.theory.taid`), updated once per
optimizer step:

    sched = TAIDSchedule()
    for step in range(total_steps):
        loss = taid_loss(student(x), teacher_logits, sched.t, mask)
        loss.backward(); opt.step(); opt.zero_grad()
        sched.update(loss.detach(), step, total_steps)
"""

from __future__ import annotations

import torch

from ..theory.taid import TAIDSchedule as TAIDSchedule

__all__ = ["TAIDSchedule", "interpolated_log_probs", "taid_loss"]

_VALUES = ("kl", "cross_entropy")


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


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
def interpolated_log_probs(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, t: float
) -> torch.Tensor:
    r"""$\log p_t$ with $p_t=\mathrm{softmax}((1-t)z_s+t z_p)$, detached, in float32 or higher.

    At $t=0$ and $t=1$ the unused side is dropped, so `-inf` logits stay exact.
    """
    tv = _check_t(t)
    dt = _compute_dtype(student_logits.dtype)
    if tv == 0.0:
        z = student_logits.to(dt)
    elif tv == 1.0:
        z = teacher_logits.to(dt)
    else:
        z = (1.0 - tv) * student_logits.to(dt) + tv * teacher_logits.to(dt)
    return torch.log_softmax(z, dim=-1)


def taid_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    t: float,
    mask: torch.Tensor | None = None,
    *,
    value: str = "kl",
) -> torch.Tensor:
    r"""TAID loss: mean over masked positions of $\mathrm{KL}(p_t\,\|\,q_\theta)$.

    Args:
      student_logits: (..., V) logits of the student (gradients flow here only); `-inf`
        entries (masked vocabulary) contribute 0 where $p_t=0$.
      teacher_logits: (..., V) teacher logits, same shape (treated as constant).
      t: interpolation weight in $[0, 1]$ (a float, e.g. `TAIDSchedule.t`).
      mask: (...) which positions count (bool or 0/1); `None` counts every position. The loss is
        $\sum_s \mathrm{mask}_s\,\ell_s / \sum_s \mathrm{mask}_s$, as in the official code.
      value: `"kl"` (default) returns $\mathrm{KL}(p_t\|q_\theta)$, which is 0 at $t=0$ and the
        forward KL at $t=1$; `"cross_entropy"` returns $-\sum_y p_t\log q_\theta$, the number the
        official code logs and feeds to its schedule. Both have the same gradient.

    Returns:
      A scalar tensor in float32 (float64 for float64 inputs).

    Raises:
      ValueError: naming the argument, for mismatched shapes, $t\notin[0,1]$, a mask of the
        wrong shape or selecting no position, or an unknown `value`.
    """
    if value not in _VALUES:
        raise ValueError(f"value must be one of {_VALUES}, got {value!r}")
    if not torch.is_floating_point(student_logits):
        raise ValueError(f"student_logits must be floating point, got {student_logits.dtype}")
    if student_logits.ndim < 1:
        raise ValueError("student_logits must have a vocabulary axis, got a scalar")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher_logits must have the shape of student_logits {tuple(student_logits.shape)}, "
            f"got {tuple(teacher_logits.shape)}"
        )
    tv = _check_t(t)
    dt = _compute_dtype(student_logits.dtype)
    log_q = torch.log_softmax(student_logits.to(dt), dim=-1)
    log_pt = interpolated_log_probs(student_logits.detach(), teacher_logits.detach(), tv)
    p_t = log_pt.exp()
    keep = p_t > 0
    if value == "kl":
        terms = torch.where(keep, p_t * (log_pt - log_q), 0.0)
    else:
        terms = torch.where(keep, -p_t * log_q, 0.0)
    per_pos = terms.sum(dim=-1)
    if mask is None:
        return per_pos.mean()
    if tuple(mask.shape) != tuple(per_pos.shape):
        raise ValueError(
            f"mask must have shape {tuple(per_pos.shape)} (the logits without the vocabulary "
            f"axis), got {tuple(mask.shape)}"
        )
    m = mask.to(dt)
    denom = m.sum()
    if not denom.item() > 0:
        raise ValueError("mask must select at least one position, got an empty mask")
    return (per_pos * m).sum() / denom
