r"""Chunked, fused linear + divergence loss: never holds the (tokens x vocab) logits for autograd.

`fused_linear_distillation_loss` takes the last hidden states and output-embedding (lm_head)
weights of student and teacher. Its forward pass walks over the selected tokens in chunks; for each
chunk it forms the student and teacher logits, then (in blocks of rows) the per-token divergence
and its gradient with respect to the student logits, written over the logits, and immediately
contracts that gradient into the gradients of the hidden states and of the weight. Backward only
scales the stored gradients by the incoming gradient. Peak memory is two (chunk x vocab) buffers
plus the weight gradient, instead of the (tokens x vocab) student logits, teacher logits and
logit gradient that the plain version holds (the "fused linear" design of Liger-Kernel's `LigerFusedLinearDistillationBase`,
`linkedin/Liger-Kernel@449f5cb:src/liger_kernel/chunked_loss/fused_linear_distillation.py`,
written in plain torch).

The full support uses closed-form logit gradients (`DivergenceSpec.value_and_logit_grad`); the
top-k supports run autograd on one block of rows at a time. Prompt and padding positions are dropped
before any logit is formed.
"""

from __future__ import annotations

import torch

from ...core._checks import check_positive_int
from ._reduce import REDUCTIONS, _as_bool_mask, _check_choice, token_coefficients
from ._token import DivergenceSpec, _check_float_tensor, _compute_dtype

# Elements per block of elementwise work inside a chunk (2**22 float32 = 16 MiB per temporary).
_BLOCK_ELEMENTS = 2**22


def _chunk_value_and_grad(spec: DivergenceSpec, zs: torch.Tensor, zt: torch.Tensor, force_autograd):
    """Values and logit gradients of a block of rows; the closed form writes them over `zs`."""
    if spec.support == "full" and not force_autograd:
        in_place = zs.dtype == _compute_dtype(zs.dtype)
        return spec.value_and_logit_grad(zs, zt, out=zs if in_place else None)
    with torch.enable_grad():
        zs = zs.detach().requires_grad_(True)
        ls, lt = spec.log_probs(zs, zt)
        value = spec.from_log_probs(ls, lt)
        (grad,) = torch.autograd.grad(value.sum(), zs)
    return value.detach(), grad


class _FusedLinearDivergence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hs, ws, ht, wt, coef, chunk_size, spec, force_autograd):
        need_h, need_w, _, _, need_c = ctx.needs_input_grad[:5]
        n = hs.shape[0]
        cd = _compute_dtype(hs.dtype)
        values = torch.empty(n, dtype=cd, device=hs.device)
        grad_h = torch.empty_like(hs) if need_h else None
        grad_w = torch.zeros(ws.shape, dtype=cd, device=ws.device) if need_w else None
        coef = coef.detach().to(cd)
        rows = max(1, _BLOCK_ELEMENTS // ws.shape[0])
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            h = hs[start:stop]
            zs = h @ ws.T
            zt = ht[start:stop] @ wt.T
            # Elementwise work in row blocks; each block's logit gradient overwrites its logits,
            # so a chunk costs two (chunk x V) buffers plus block-sized temporaries.
            for r in range(0, stop - start, rows):
                sl = slice(r, min(r + rows, stop - start))
                value, g = _chunk_value_and_grad(spec, zs[sl], zt[sl], force_autograd)
                values[start + sl.start : start + sl.stop] = value
                g.mul_(coef[start + sl.start : start + sl.stop, None])
                if g.data_ptr() != zs[sl].data_ptr():
                    zs[sl] = g
                del g
            del zt
            if need_h:
                grad_h[start:stop] = zs @ ws
            if need_w:
                if grad_w.dtype == zs.dtype:
                    grad_w.addmm_(zs.T, h)
                else:
                    grad_w += (zs.T @ h).to(cd)
            del zs
        ctx.save_for_backward(grad_h, grad_w, values if need_c else None)
        ctx.weight_dtype = ws.dtype
        return (values * coef).sum()

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w, values = ctx.saved_tensors
        gh = gw = gc = None
        if grad_h is not None:
            gh = grad_h * grad_out.to(grad_h.dtype)
        if grad_w is not None:
            gw = (grad_w * grad_out.to(grad_w.dtype)).to(ctx.weight_dtype)
        if values is not None:
            gc = values * grad_out.to(values.dtype)
        return gh, gw, None, None, gc, None, None, None


def fused_linear_distillation_loss(
    student_hidden: torch.Tensor,
    student_weight: torch.Tensor,
    teacher_hidden: torch.Tensor,
    teacher_weight: torch.Tensor,
    mask: torch.Tensor,
    *,
    chunk_size: int = 1024,
    weights: torch.Tensor | None = None,
    reduction: str = "token_mean",
    num_items: float | int | torch.Tensor | None = None,
    _force_autograd: bool = False,
    **divergence_kwargs,
) -> torch.Tensor:
    r"""The plain `distillation_loss` on `hidden @ weight.T` logits, computed in chunks of tokens.

    Same value and student gradients as
    `distillation_loss(student_hidden @ student_weight.T, teacher_hidden @ teacher_weight.T, ...)`.

    The teacher is a constant (stop-gradient): no gradient reaches `teacher_hidden` or
    `teacher_weight`, even when the teacher shares the student's lm_head (self-distillation).
    Gradients reach `student_hidden`, `student_weight` and `weights`. Logits are formed in the
    input dtype and the divergence is evaluated in float32 (float64 for float64 inputs), as in
    `token_divergence`. No bias, logit soft-capping or logit scale is applied: fold them into the
    inputs or use the plain version.

    Args:
      student_hidden: student hidden states (..., H_s), e.g. (B, T, H_s).
      student_weight: student output embedding (V, H_s).
      teacher_hidden: teacher hidden states (..., H_t) with the same leading shape.
      teacher_weight: teacher output embedding (V, H_t).
      mask: (...) positions in the loss (non-zero) vs prompt/padding (zero).
      chunk_size: tokens per chunk; peak memory grows linearly with it.
      weights, reduction, num_items: as in `reduce_loss`.
      **divergence_kwargs: as in `token_divergence` (`divergence`, `beta`, `normalized`,
        `alpha`, `temperature`, `support`, `k`).

    Returns:
      The scalar loss.

    Example:
      >>> import torch
      >>> from sdtheory.lm.losses import distillation_loss
      >>> g = torch.Generator().manual_seed(0)
      >>> hs, ht = torch.randn(2, 7, 5, generator=g), torch.randn(2, 7, 4, generator=g)
      >>> ws, wt = torch.randn(13, 5, generator=g), torch.randn(13, 4, generator=g)
      >>> m = torch.ones(2, 7)
      >>> a = fused_linear_distillation_loss(hs, ws, ht, wt, m, chunk_size=3, divergence="jsd")
      >>> b = distillation_loss(hs @ ws.T, ht @ wt.T, m, divergence="jsd")
      >>> bool(torch.isclose(a, b, rtol=1e-5))
      True
    """
    spec = DivergenceSpec(**divergence_kwargs)
    _check_choice(reduction, REDUCTIONS, "reduction")
    for x, name in ((student_hidden, "student_hidden"), (teacher_hidden, "teacher_hidden")):
        _check_float_tensor(x, name, min_dim=2)
    for x, name in ((student_weight, "student_weight"), (teacher_weight, "teacher_weight")):
        _check_float_tensor(x, name, min_dim=2)
        if x.dim() != 2:
            raise ValueError(f"{name} must be (V, H), got shape {tuple(x.shape)}")
    lead = tuple(student_hidden.shape[:-1])
    if tuple(teacher_hidden.shape[:-1]) != lead:
        raise ValueError(
            f"teacher_hidden leading shape {tuple(teacher_hidden.shape[:-1])} must equal "
            f"student_hidden leading shape {lead}"
        )
    if student_weight.shape[1] != student_hidden.shape[-1]:
        raise ValueError(
            f"student_weight must be (V, {student_hidden.shape[-1]}), "
            f"got {tuple(student_weight.shape)}"
        )
    if teacher_weight.shape[1] != teacher_hidden.shape[-1]:
        raise ValueError(
            f"teacher_weight must be (V, {teacher_hidden.shape[-1]}), "
            f"got {tuple(teacher_weight.shape)}"
        )
    if teacher_weight.shape[0] != student_weight.shape[0]:
        raise ValueError(
            f"teacher_weight has {teacher_weight.shape[0]} rows but student_weight has "
            f"{student_weight.shape[0]}: student and teacher must share the vocabulary"
        )
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    spec.check_vocab(student_weight.shape[0])
    m = _as_bool_mask(mask, lead)
    cd = _compute_dtype(student_hidden.dtype)
    coef = token_coefficients(
        m, weights=weights, reduction=reduction, num_items=num_items, dtype=cd
    )
    sel = m.reshape(-1).nonzero().squeeze(1)
    hs = student_hidden.reshape(-1, student_hidden.shape[-1]).index_select(0, sel)
    ht = teacher_hidden.detach().reshape(-1, teacher_hidden.shape[-1]).index_select(0, sel)
    c = coef.reshape(-1).index_select(0, sel)
    return _FusedLinearDivergence.apply(
        hs, student_weight, ht, teacher_weight.detach(), c, chunk_size, spec, _force_autograd
    )
