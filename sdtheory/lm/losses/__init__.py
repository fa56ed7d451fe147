r"""Vocabulary-scale distillation losses in torch: every divergence and support, chunked and fused.

The torch mirror of `sdtheory.core`: teacher first in every formula, log-space numerics, nothing
clamped. See `docs/lm/losses.md` for the formulas, the conventions table and the benchmark.

* `token_divergence`: per-token forward/reverse KL, generalised JSD (raw or normalised), skew KL,
  TVD on the full vocabulary, the teacher's top-k or the student's top-k plus a tail bucket.
* `sampled_token_loss`: k1, k2, k3 and the reverse-KL-as-advantage surrogate on sampled tokens.
* `reduce_loss`: masks, per-token or per-sequence weights, token/sequence mean, sum / num_items.
* `distillation_loss`: the two steps above in one call.
* `fused_linear_distillation_loss`: the same from hidden states and lm_head weights, chunked.
* `soft_target_cross_entropy`, `fused_linear_soft_target_cross_entropy`: cross-entropy to a
  stored sparse target distribution (label smoothing, PS-KD's refined targets), plain and fused.
"""

from ._fused import fused_linear_distillation_loss as fused_linear_distillation_loss
from ._reduce import REDUCTIONS as REDUCTIONS
from ._reduce import distillation_loss as distillation_loss
from ._reduce import reduce_loss as reduce_loss
from ._reduce import token_coefficients as token_coefficients
from ._soft import (
    fused_linear_soft_target_cross_entropy as fused_linear_soft_target_cross_entropy,
)
from ._soft import soft_target_cross_entropy as soft_target_cross_entropy
from ._token import DIVERGENCES as DIVERGENCES
from ._token import ESTIMATORS as ESTIMATORS
from ._token import SUPPORTS as SUPPORTS
from ._token import DivergenceSpec as DivergenceSpec
from ._token import sampled_token_loss as sampled_token_loss
from ._token import token_divergence as token_divergence

__all__ = [
    "DIVERGENCES",
    "ESTIMATORS",
    "REDUCTIONS",
    "SUPPORTS",
    "DivergenceSpec",
    "distillation_loss",
    "fused_linear_distillation_loss",
    "fused_linear_soft_target_cross_entropy",
    "reduce_loss",
    "sampled_token_loss",
    "soft_target_cross_entropy",
    "token_coefficients",
    "token_divergence",
]
