"""Shared numpy float64 maths: log-space simplex utilities, divergences and sampled estimators.

The one home of the package's divergence conventions; see `sdtheory.core._divergences`.
"""

from ._divergences import generalized_jsd as generalized_jsd
from ._divergences import kl as kl
from ._divergences import skew_kl as skew_kl
from ._divergences import total_variation as total_variation
from ._estimators import k1 as k1
from ._estimators import k2 as k2
from ._estimators import k3 as k3
from ._simplex import cross_entropy as cross_entropy
from ._simplex import entropy as entropy
from ._simplex import gather as gather
from ._simplex import log1mexp as log1mexp
from ._simplex import log_mix as log_mix
from ._simplex import log_softmax as log_softmax
from ._simplex import renormalize as renormalize
from ._simplex import top_k as top_k
from ._simplex import with_tail_bucket as with_tail_bucket

__all__ = [
    "cross_entropy",
    "entropy",
    "gather",
    "generalized_jsd",
    "k1",
    "k2",
    "k3",
    "kl",
    "log1mexp",
    "log_mix",
    "log_softmax",
    "renormalize",
    "skew_kl",
    "top_k",
    "total_variation",
    "with_tail_bucket",
]
