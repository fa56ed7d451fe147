r"""Log-space simplex utilities (numpy, float64).

Distributions travel as log-probabilities on the last axis. Every function broadcasts over the
leading axes and never leaves log space where precision would be lost.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ._checks import (
    as_float_array,
    as_log_probs,
    broadcast_pair,
    check_positive,
    check_positive_int,
    check_unit_interval,
)


def log_softmax(logits, temperature: float = 1.0) -> np.ndarray:
    r"""$\log\mathrm{softmax}(z/\tau)$ on the last axis.

    Temperature is applied to the logits *before* normalising (the convention of GKD/TRL and of
    classic KD). Stable for logits spanning $\pm 10^4$: the max is subtracted first.

    Args:
      logits: real array (..., k); `-inf` entries are allowed (outcomes with probability 0).
      temperature: $\tau > 0$.

    Returns:
      Log-probabilities with the shape of `logits`.

    Example:
      >>> import numpy as np
      >>> lp = log_softmax(np.array([1e4, 0.0, -1e4]))
      >>> bool(np.isclose(np.exp(lp).sum(), 1.0)) and bool(np.isfinite(lp).all())
      True
    """
    tau = check_positive(temperature, "temperature")
    z = as_float_array(logits, "logits") / tau
    if np.isposinf(z).any():
        raise ValueError("logits contains +inf")
    m = np.max(z, axis=-1, keepdims=True)
    if np.isneginf(m).any():
        raise ValueError("logits has a row that is entirely -inf")
    shifted = z - m
    # log(sum exp) = log1p(sum over all but one maximal entry): exact for near-one-hot rows.
    e = np.exp(shifted)
    np.put_along_axis(e, np.argmax(shifted, axis=-1)[..., None], 0.0, axis=-1)
    return shifted - np.log1p(np.sum(e, axis=-1, keepdims=True))


def log1mexp(x) -> np.ndarray:
    r"""$\log(1 - e^{x})$ for $x \le 0$, accurate near both ends (Mächler 2012)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(x > -np.log(2.0), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def log_mix(log_p, log_q, weight) -> np.ndarray:
    r"""$\log(w\,p + (1-w)\,q)$ computed by `logaddexp`; exact at $w \in \{0, 1\}$."""
    w = check_unit_interval(weight, "weight")
    lp = as_float_array(log_p, "log_p")
    lq = as_float_array(log_q, "log_q")
    if w == 0.0:
        return np.broadcast_arrays(lq, lp)[0].copy()
    if w == 1.0:
        return np.broadcast_arrays(lp, lq)[0].copy()
    return np.logaddexp(np.log(w) + lp, np.log1p(-w) + lq)


def renormalize(log_w) -> np.ndarray:
    """Normalise non-negative weights given in log space on the last axis."""
    lw = as_float_array(log_w, "log_w")
    return lw - logsumexp(lw, axis=-1, keepdims=True)


def top_k(log_p, k: int, validate: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""The `k` most likely outcomes, renormalised on that support.

    Args:
      log_p: log-probabilities (..., V).
      k: support size, $1 \le k \le V$.
      validate: check that `log_p` normalises.

    Returns:
      `(log_probs, indices)`, both (..., k), sorted by decreasing probability. `log_probs`
      normalises over the k outcomes. Use `gather` to put another distribution on the same support.

    Example:
      >>> import numpy as np
      >>> lp, idx = top_k(np.log([0.1, 0.6, 0.3]), 2)
      >>> idx.tolist(), bool(np.allclose(np.exp(lp), [2 / 3, 1 / 3]))
      ([1, 2], True)
    """
    lp = as_log_probs(log_p, "log_p", validate)
    k = check_positive_int(k, "k")
    if k > lp.shape[-1]:
        raise ValueError(f"k must be at most the vocabulary size {lp.shape[-1]}, got {k}")
    idx = np.argsort(-lp, axis=-1, kind="stable")[..., :k]
    vals = np.take_along_axis(lp, idx, axis=-1)
    return renormalize(vals), idx


def gather(log_p, indices) -> np.ndarray:
    """Entries of `log_p` at `indices` on the last axis (no renormalisation)."""
    lp = as_float_array(log_p, "log_p")
    idx = np.asarray(indices)
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= lp.shape[-1]):
        raise ValueError(
            f"indices must lie in [0, {lp.shape[-1]}), got range [{idx.min()}, {idx.max()}]"
        )
    return np.take_along_axis(lp, idx, axis=-1)


def with_tail_bucket(log_p, indices, validate: bool = False) -> np.ndarray:
    r"""Restrict to `indices` and add one bucket holding the remaining mass.

    Returns (..., k + 1) log-probabilities: the gathered entries followed by the log of the mass
    outside `indices`. The tail is the `logsumexp` of the excluded entries, not
    $\log(1 - \sum_{i \in S} p_i)$, so it keeps full relative precision even when it is
    $10^{-300}$ or when the kept entries hold all but $10^{-11}$ of the mass. Merging outcomes into
    one bucket is a coarsening, so any f-divergence between two distributions put on the same
    buckets is at most the full one (data processing). Indices must be distinct.

    Example:
      >>> import numpy as np
      >>> out = with_tail_bucket(np.log([0.5, 0.3, 0.2]), np.array([1]))
      >>> bool(np.allclose(np.exp(out), [0.3, 0.7]))
      True
    """
    lp = as_log_probs(log_p, "log_p", validate)
    idx = np.asarray(indices)
    srt = np.sort(idx, axis=-1)
    if idx.shape[-1] > 1 and (np.diff(srt, axis=-1) == 0).any():
        raise ValueError("indices must be distinct along the last axis")
    head = gather(lp, idx)
    rest = np.array(
        np.broadcast_to(lp, np.broadcast_shapes(lp.shape[:-1], idx.shape[:-1]) + lp.shape[-1:])
    )
    np.put_along_axis(
        rest, np.broadcast_to(idx, rest.shape[:-1] + idx.shape[-1:]), -np.inf, axis=-1
    )
    with np.errstate(divide="ignore"):
        tail = logsumexp(rest, axis=-1, keepdims=True)
    return np.concatenate([head, tail], axis=-1)


def entropy(log_p, validate: bool = False) -> np.ndarray:
    r"""Shannon entropy $H(p) = -\sum_i p_i \log p_i$ in nats, with $0 \log 0 = 0$.

    Example:
      >>> import numpy as np
      >>> bool(np.isclose(entropy(np.log(np.full(4, 0.25))), np.log(4)))
      True
    """
    lp = as_log_probs(log_p, "log_p", validate)
    p = np.exp(lp)
    return -np.sum(np.where(p > 0, p * lp, 0.0), axis=-1)


def cross_entropy(log_p, log_q, validate: bool = False) -> np.ndarray:
    r"""Cross-entropy $H(p, q) = -\sum_i p_i \log q_i$, with $0 \cdot \log 0 = 0$.

    Equals `entropy(log_p) + kl(log_p, log_q)`.
    """
    lp = as_log_probs(log_p, "log_p", validate)
    lq = as_log_probs(log_q, "log_q", validate)
    lp, lq = broadcast_pair(lp, lq, "log_p", "log_q")
    p = np.exp(lp)
    with np.errstate(invalid="ignore"):
        return -np.sum(np.where(p > 0, p * lq, 0.0), axis=-1)
