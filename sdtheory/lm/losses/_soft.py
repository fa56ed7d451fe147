r"""Cross-entropy to a stored sparse target distribution, plain and fused (chunked).

A target over the vocabulary is given by `index` `(..., K)` and `prob` `(..., K)` (entries may
repeat an index; their mass adds). Per token, with $z$ the student logits,

$$\ell = -\sum_j \mathrm{prob}_j \log\mathrm{softmax}(z)_{\mathrm{index}_j}
        = s\,\mathrm{logsumexp}(z) - \sum_j \mathrm{prob}_j z_{\mathrm{index}_j},\qquad
  \partial\ell/\partial z = s\,\mathrm{softmax}(z) - \textstyle\sum_j \mathrm{prob}_j e_{\mathrm{index}_j},$$

$s=\sum_j\mathrm{prob}_j$ (1 for a distribution). A one-hot target is the NLL; PS-KD's
$(1-\alpha)\,y+\alpha\,p^{(t-1)}$ is the label plus the stored previous prediction. The fused
version forms the logits one chunk of tokens at a time from hidden states and the output
embedding and writes the gradient in the forward pass (as `fused_linear_distillation_loss`), so
the `(tokens x vocab)` logits are never kept for autograd. Both reduce with `reduce_loss`.
"""

from __future__ import annotations

import torch

from ...core._checks import check_positive_int
from ._reduce import REDUCTIONS, _as_bool_mask, _check_choice, reduce_loss, token_coefficients
from ._token import _compute_dtype

__all__ = ["fused_linear_soft_target_cross_entropy", "soft_target_cross_entropy"]


def _check_target(index, prob, lead):
    if index.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"index must hold integers, got {index.dtype}")
    if tuple(index.shape) != tuple(prob.shape) or tuple(index.shape[:-1]) != tuple(lead):
        raise ValueError(
            f"index and prob must both have shape {tuple(lead)} + (K,), got "
            f"{tuple(index.shape)} and {tuple(prob.shape)}"
        )
    if not torch.is_floating_point(prob) or not bool(torch.isfinite(prob).all()):
        raise ValueError("prob must be a finite floating-point tensor")
    if bool((prob < 0).any()):
        raise ValueError(f"prob must be >= 0, got a minimum of {float(prob.min())}")


def _value_and_grad(z, index, prob):
    """Per-row value and logit gradient of the soft-target CE, `z` `(n, V)` in compute dtype."""
    lse = torch.logsumexp(z, -1)
    s = prob.sum(-1)
    value = s * lse - (prob * z.gather(-1, index)).sum(-1)
    grad = torch.softmax(z, -1).mul_(s[:, None]).scatter_add_(-1, index, -prob)
    return value, grad


def soft_target_cross_entropy(
    logits, index, prob, mask, *, weights=None, reduction="token_mean", num_items=None
) -> torch.Tensor:
    """The soft-target cross-entropy of `logits` `(..., V)` (see the module), reduced over `mask`
    like `reduce_loss`; in float32 (float64 for float64 logits)."""
    _check_choice(reduction, REDUCTIONS, "reduction")
    _check_target(index, prob, logits.shape[:-1])
    cd = _compute_dtype(logits.dtype)
    logp = torch.log_softmax(logits.to(cd), -1)
    per_tok = -(prob.to(cd) * logp.gather(-1, index.long())).sum(-1)
    return reduce_loss(per_tok, mask, weights=weights, reduction=reduction, num_items=num_items)


class _FusedSoftCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, w, index, prob, coef, chunk_size):
        need_h, need_w = ctx.needs_input_grad[:2]
        cd = _compute_dtype(h.dtype)
        grad_h = torch.empty_like(h) if need_h else None
        grad_w = torch.zeros(w.shape, dtype=cd, device=w.device) if need_w else None
        total = torch.zeros((), dtype=cd, device=h.device)
        for a in range(0, h.shape[0], chunk_size):
            b = min(a + chunk_size, h.shape[0])
            value, g = _value_and_grad((h[a:b] @ w.T).to(cd), index[a:b], prob[a:b])
            total += (value * coef[a:b]).sum()
            g.mul_(coef[a:b, None])
            if need_h:
                grad_h[a:b] = (g.to(w.dtype) @ w).to(h.dtype)
            if need_w:
                grad_w += g.T @ h[a:b].to(cd)
            del g
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = w.dtype
        return total

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w = ctx.saved_tensors
        gh = None if grad_h is None else grad_h * grad_out.to(grad_h.dtype)
        gw = None if grad_w is None else (grad_w * grad_out.to(grad_w.dtype)).to(ctx.weight_dtype)
        return gh, gw, None, None, None, None


def fused_linear_soft_target_cross_entropy(
    hidden,
    weight,
    index,
    prob,
    mask,
    *,
    chunk_size: int = 1024,
    weights=None,
    reduction: str = "token_mean",
    num_items=None,
) -> torch.Tensor:
    """`soft_target_cross_entropy(hidden @ weight.T, ...)` computed in chunks of tokens.

    Args:
      hidden: `(..., H)` final hidden states; weight: `(V, H)` output embedding (no bias).
      index, prob: `(..., K)` the sparse target; mask, weights, reduction, num_items: as in
        `reduce_loss`. Gradients reach `hidden`, `weight` (not `weights`).

    Example:
      >>> import torch
      >>> g = torch.Generator().manual_seed(0)
      >>> h, w = torch.randn(2, 3, 4, generator=g), torch.randn(7, 4, generator=g)
      >>> idx, p = torch.randint(0, 7, (2, 3, 2), generator=g), torch.full((2, 3, 2), 0.5)
      >>> a = fused_linear_soft_target_cross_entropy(h, w, idx, p, torch.ones(2, 3), chunk_size=2)
      >>> bool(torch.isclose(a, soft_target_cross_entropy(h @ w.T, idx, p, torch.ones(2, 3))))
      True
    """
    _check_choice(reduction, REDUCTIONS, "reduction")
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(f"weight must be (V, {hidden.shape[-1]}), got shape {tuple(weight.shape)}")
    lead = tuple(hidden.shape[:-1])
    _check_target(index, prob, lead)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    if weights is not None and weights.requires_grad:
        raise ValueError("weights must not require grad in the fused soft-target loss")
    m = _as_bool_mask(mask, lead)
    cd = _compute_dtype(hidden.dtype)
    coef = token_coefficients(
        m, weights=weights, reduction=reduction, num_items=num_items, dtype=cd
    )
    sel = m.reshape(-1).nonzero().squeeze(1)
    h = hidden.reshape(-1, hidden.shape[-1]).index_select(0, sel)
    k = index.shape[-1]
    idx = index.reshape(-1, k).index_select(0, sel).long()
    p = prob.reshape(-1, k).index_select(0, sel).to(cd)
    c = coef.reshape(-1).index_select(0, sel).detach()
    return _FusedSoftCE.apply(h, weight, idx, p, c, chunk_size)
