r"""Masks, weights and reductions of per-token losses; the one-call `distillation_loss`.

Every reduction is linear in the per-token values: the loss is $\sum_i c_i D_i$ with coefficients
$c_i$ that depend only on the mask, the weights, the reduction and `num_items`. The fused loss uses
the same coefficients, so both paths agree by construction.
"""

from __future__ import annotations

import torch

from ._token import (
    ESTIMATORS,
    DivergenceSpec,
    _check_choice,
    _check_float_tensor,
    _check_positive,
    _compute_dtype,
    _per_token,
    sampled_token_loss,
)

REDUCTIONS = ("token_mean", "sequence_mean", "sum")


def _as_bool_mask(mask, shape, name: str = "mask") -> torch.Tensor:
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(mask.shape)}")
    return mask if mask.dtype == torch.bool else mask != 0


def token_coefficients(
    mask: torch.Tensor,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "token_mean",
    num_items: float | int | torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""Coefficients $c$ such that `reduce_loss(D, mask, ...)` $= \sum_i c_i D_i$ (zero off-mask).

    See `reduce_loss` for the arguments.
    """
    _check_choice(reduction, REDUCTIONS, "reduction")
    if not isinstance(mask, torch.Tensor) or mask.dim() < 1:
        raise ValueError(f"mask must be a torch.Tensor with at least one axis, got {mask!r}")
    m = mask if mask.dtype == torch.bool else mask != 0
    c = m.to(dtype)
    if weights is not None:
        _check_float_tensor(weights, "weights", min_dim=0)
        if tuple(weights.shape) == tuple(m.shape):
            c = c * weights.to(dtype)
        elif tuple(weights.shape) == tuple(m.shape[:-1]):
            c = c * weights.to(dtype).unsqueeze(-1)
        else:
            raise ValueError(
                f"weights must have shape {tuple(m.shape)} (per token) or {tuple(m.shape[:-1])} "
                f"(per sequence), got {tuple(weights.shape)}"
            )
        c = torch.where(m, c, torch.zeros((), dtype=dtype, device=c.device))
    if num_items is not None:
        if reduction == "token_mean":
            raise ValueError(
                "num_items is used with reduction='sum' or 'sequence_mean' (token_mean divides "
                f"by this batch's own token count), got num_items={num_items!r}"
            )
        if isinstance(num_items, torch.Tensor):
            if num_items.numel() != 1:
                raise ValueError(f"num_items must be a scalar, got shape {tuple(num_items.shape)}")
            denom = num_items.to(device=c.device, dtype=dtype)
        else:
            denom = _check_positive(num_items, "num_items")
    if reduction == "token_mean":
        return c / m.sum().clamp(min=1).to(dtype)
    if reduction == "sum":
        return c if num_items is None else c / denom
    per_seq = m.sum(-1, keepdim=True).clamp(min=1).to(dtype)  # sequence_mean
    if num_items is None:
        denom = m.any(-1).sum().clamp(min=1).to(dtype)
    return c / per_seq / denom


def reduce_loss(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "token_mean",
    num_items: float | int | torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Reduce per-token losses over the positions where `mask` is set.

    With $m$ the mask (non-zero = in the loss: completion tokens; zero: prompt and padding),
    $w$ the weights (per token, or per sequence and broadcast over its tokens) and $D$ the values:

    * `"token_mean"`: $\sum_{b,t} m\,w\,D \,/\, \sum_{b,t} m$ (weights do not enter the count);
    * `"sequence_mean"`: $\frac1B\sum_b \big(\sum_t m\,w\,D / \sum_t m\big)$ over the sequences
      with at least one token, or divided by `num_items` (the global number of sequences);
    * `"sum"`: $\sum_{b,t} m\,w\,D$, divided by `num_items` if given. Passing the *global* token
      count of an accumulated batch makes the summed micro-batch gradients equal to those of one
      large batch, which `"token_mean"` over micro-batches does not.

    Masked positions are selected with `torch.where`, so even non-finite values there never enter
    the loss or its gradient. An empty mask gives 0.

    Args:
      per_token: values (B, T) (any leading shape; the last axis is the sequence).
      mask: bool or numeric tensor with the shape of `per_token`.
      weights: optional (B, T) per-token or (B,) per-sequence weights.
      reduction: `"token_mean"`, `"sequence_mean"` or `"sum"`.
      num_items: optional positive normaliser for `"sum"` and `"sequence_mean"`.

    Returns:
      A scalar tensor.

    Example:
      >>> import torch
      >>> d = torch.tensor([[1.0, 2.0, 9.0], [3.0, 9.0, 9.0]])
      >>> m = torch.tensor([[1, 1, 0], [1, 0, 0]])
      >>> float(reduce_loss(d, m)), float(reduce_loss(d, m, reduction="sequence_mean"))
      (2.0, 2.25)
    """
    _check_float_tensor(per_token, "per_token")
    m = _as_bool_mask(mask, per_token.shape)
    c = token_coefficients(
        m, weights=weights, reduction=reduction, num_items=num_items, dtype=per_token.dtype
    )
    zero = torch.zeros((), dtype=per_token.dtype, device=per_token.device)
    return torch.where(m, per_token * c, zero).sum()


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor,
    *,
    sampled_tokens: torch.Tensor | None = None,
    estimator: str | None = None,
    weights: torch.Tensor | None = None,
    reduction: str = "token_mean",
    num_items: float | int | torch.Tensor | None = None,
    **divergence_kwargs,
) -> torch.Tensor:
    r"""`token_divergence` (or a sampled-token estimator) followed by `reduce_loss`.

    Without `estimator`, the full or top-k divergence of `token_divergence(**divergence_kwargs)`.
    With `estimator` (`"k1"`, `"k2"`, `"k3"`, `"advantage"`), both logits are turned into
    log-probabilities (after `temperature`, the only divergence keyword accepted then), gathered at
    `sampled_tokens` (B, T) and passed to `sampled_token_loss`: the sampled-token support.

    Positions outside `mask` are dropped before anything is computed, so their logits (even NaN)
    never reach the loss or the gradient, and prompt tokens cost nothing.

    Example:
      >>> import torch
      >>> z = torch.randn(2, 5, 11, dtype=torch.float64, requires_grad=True)
      >>> loss = distillation_loss(z, z.detach(), torch.ones(2, 5), divergence="jsd", beta=0.5)
      >>> loss.backward(); loss.item() == 0.0 and bool((z.grad == 0).all())
      True
    """
    if estimator is None:
        if sampled_tokens is not None:
            raise ValueError("sampled_tokens is only used with an estimator, got estimator=None")
        spec = DivergenceSpec(**divergence_kwargs)
    else:
        _check_choice(estimator, ESTIMATORS, "estimator")
        extra = sorted(set(divergence_kwargs) - {"temperature"})
        if extra:
            raise ValueError(f"with an estimator only temperature applies, got keywords {extra}")
        spec = DivergenceSpec(temperature=divergence_kwargs.get("temperature", 1.0))
    _check_float_tensor(student_logits, "student_logits")
    _check_float_tensor(teacher_logits, "teacher_logits")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits with shape {tuple(student_logits.shape)} and teacher_logits "
            f"with shape {tuple(teacher_logits.shape)} must have the same shape"
        )
    spec.check_vocab(student_logits.shape[-1])
    lead = student_logits.shape[:-1]
    if len(lead) == 0:
        raise ValueError(
            f"student_logits must be (..., T, V), got shape {tuple(student_logits.shape)}"
        )
    m = _as_bool_mask(mask, lead)
    tokens = None if estimator is None else _check_tokens(sampled_tokens, student_logits.shape)
    coef = token_coefficients(
        m,
        weights=weights,
        reduction=reduction,
        num_items=num_items,
        dtype=_compute_dtype(student_logits.dtype),
    )
    zs, zt = student_logits, teacher_logits
    if not bool(m.all()):  # prompt and padding positions are never computed at all
        zs, zt, coef = zs[m], zt[m], coef[m]
        tokens = None if tokens is None else tokens[m]
    if estimator is None:
        per_token = _per_token(spec, zs, zt)
    else:
        ls, lt = spec.log_probs(zs, zt)
        idx = tokens.unsqueeze(-1)
        per_token = sampled_token_loss(
            ls.gather(-1, idx).squeeze(-1), lt.gather(-1, idx).squeeze(-1), estimator=estimator
        )
    return (per_token * coef).sum()


def _check_tokens(tokens, logits_shape) -> torch.Tensor:
    if tokens is None:
        raise ValueError("sampled_tokens is required with an estimator, got None")
    if (
        not isinstance(tokens, torch.Tensor)
        or tokens.is_floating_point()
        or tokens.is_complex()
        or tokens.dtype == torch.bool
    ):
        raise ValueError(f"sampled_tokens must be an integer tensor, got {tokens!r:.80}")
    if tuple(tokens.shape) != tuple(logits_shape[:-1]):
        raise ValueError(
            f"sampled_tokens must have shape {tuple(logits_shape[:-1])}, got {tuple(tokens.shape)}"
        )
    vocab = logits_shape[-1]
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
        raise ValueError(
            f"sampled_tokens must lie in [0, {vocab}), "
            f"got range [{int(tokens.min())}, {int(tokens.max())}]"
        )
    return tokens.long()
