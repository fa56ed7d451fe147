r"""Anchored meta-teacher operators on the simplex, their closed form, softening, aggregation.

Arithmetic anchoring $\Phi_\lambda(p, q) = \lambda p + (1-\lambda) q$ and geometric anchoring
$\Phi_\lambda(p, q) \propto p^{\lambda} q^{1-\lambda}$, in log space on the last axis (derived;
`docs/theory/meta.md`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ...core import log_mix, log_softmax
from ...core._checks import check_positive, check_positive_int, check_unit_interval
from ._common import AnchorFn, Kind, check_kind, log_probs, normalised_pair


def arithmetic_anchor(log_p, log_q, lam: float) -> np.ndarray:
    r"""Arithmetic (probability-space) anchoring: $\log(\lambda p + (1-\lambda) q)$.

    Args:
      log_p: log-probabilities of the anchor $p$ (..., k); must normalise.
      log_q: log-probabilities of the current student $q$ (..., k); must normalise.
      lam: anchoring weight $\lambda \in [0, 1]$ ($0$: no anchoring, $1$: reset to $p$).

    Returns:
      Log-probabilities of the meta-teacher, broadcast shape.

    Example:
      >>> import numpy as np
      >>> p, q = np.log([0.5, 0.5]), np.log([0.9, 0.1])
      >>> bool(np.allclose(np.exp(arithmetic_anchor(p, q, 0.25)), [0.8, 0.2]))
      True
    """
    lam = check_unit_interval(lam, "lam")
    lp, lq = normalised_pair(log_p, log_q)
    return log_mix(lp, lq, lam)


def geometric_anchor(log_p, log_q, lam: float) -> np.ndarray:
    r"""Geometric (logit-space) anchoring: $\log \big(p^{\lambda} q^{1-\lambda} / Z\big)$.

    Equivalently $\log\mathrm{softmax}(\lambda \log p + (1-\lambda)\log q)$. Outcomes with
    $p_i = 0$ or $q_i = 0$ get probability 0 for $0 < \lambda < 1$ (the geometric mean keeps only
    the common support); $\lambda = 0$ returns $q$ and $\lambda = 1$ returns $p$ exactly.

    Args:
      log_p: log-probabilities of the anchor $p$ (..., k); must normalise.
      log_q: log-probabilities of the student $q$ (..., k); must normalise.
      lam: anchoring weight $\lambda \in [0, 1]$.

    Raises:
      ValueError: if $0 < \lambda < 1$ and $p$, $q$ have disjoint supports in some row.

    Example:
      >>> import numpy as np
      >>> p, q = np.log([0.8, 0.2]), np.log([0.2, 0.8])
      >>> bool(np.allclose(np.exp(geometric_anchor(p, q, 0.5)), [0.5, 0.5]))
      True
    """
    lam = check_unit_interval(lam, "lam")
    lp, lq = normalised_pair(log_p, log_q)
    if lam == 0.0:
        return lq.copy()
    if lam == 1.0:
        return lp.copy()
    z = lam * lp + (1.0 - lam) * lq  # -inf wherever either is -inf; never NaN for 0<lam<1
    if np.isneginf(z).all(axis=-1).any():
        raise ValueError(
            "log_p and log_q have disjoint supports in some row: the geometric mean "
            f"p^lam q^(1-lam) vanishes everywhere (lam={lam})"
        )
    return log_softmax(z)


ANCHORS: dict[str, AnchorFn] = {"arithmetic": arithmetic_anchor, "geometric": geometric_anchor}


def effective_weight(lam: float, n: int) -> float:
    r"""$1 - (1-\lambda)^n$: the single-step weight equivalent to $n$ anchored steps.

    Computed as `-expm1(n * log1p(-lam))`, accurate for tiny $\lambda$.
    """
    lam = check_unit_interval(lam, "lam")
    n = check_positive_int(n, "n", minimum=0)
    if n == 0:
        return 0.0
    if lam == 1.0:
        return 1.0
    return float(-np.expm1(n * np.log1p(-lam)))


class AnchoredOperator:
    r"""The anchored meta-teacher map $q \mapsto \Phi_\lambda(p_0, q)$ on log-probabilities.

    Our formalisation consistent with Flouro & Chadwick's abstract (arXiv:2601.13100); the
    exact operator of the paper is not known to us. `kind="arithmetic"` returns
    $\log(\lambda p_0 + (1-\lambda) q)$, `kind="geometric"` the log of the normalised
    $p_0^{\lambda} q^{1-\lambda}$.

    Under realizability (the student reproduces the meta-teacher exactly) the generations are
    $q_{n+1} = \Phi_\lambda(p_0, q_n)$, and (derived, `docs/theory/meta.md`):

    * arithmetic: $q_n - p_0 = (1-\lambda)^n (q_0 - p_0)$ and
      $\mathrm{KL}(p_0\|q_n) \le (1-\lambda)^n\,\mathrm{KL}(p_0\|q_0)$;
    * geometric: $\log(q_n/p_0) = (1-\lambda)^n \log(q_0/p_0) + c_n$, so the oscillation
      seminorm of $\log(q/p_0)$ contracts by exactly $1-\lambda$;
    * for $\lambda > 0$ the anchor is the unique fixed point, globally attractive.

    Args:
      anchor_log_probs: log-probabilities of $p_0$ (..., k); must normalise.
      lam: $\lambda \in [0, 1]$.
      kind: `"arithmetic"` or `"geometric"`.

    Example:
      >>> import numpy as np
      >>> from sdtheory.core import kl
      >>> p0, q0 = np.log([0.7, 0.2, 0.1]), np.log([0.1, 0.1, 0.8])
      >>> op = AnchoredOperator(p0, 0.3)
      >>> qs = op.iterate(q0, 5)
      >>> bool(np.all(kl(p0, qs[1:]) <= 0.7 ** np.arange(1, 6) * kl(p0, q0)))
      True
      >>> bool(np.allclose(qs[5], op.closed_form(q0, 5)))
      True
    """

    def __init__(self, anchor_log_probs, lam: float, kind: Kind = "arithmetic"):
        self.kind = check_kind(kind)
        self.lam = check_unit_interval(lam, "lam")
        self.anchor = log_probs(anchor_log_probs, "anchor_log_probs")
        self._phi = ANCHORS[self.kind]

    def __repr__(self) -> str:
        return f"AnchoredOperator(kind={self.kind!r}, lam={self.lam}, shape={self.anchor.shape})"

    @property
    def contraction_factor(self) -> float:
        r"""$1-\lambda$: the per-generation factor of the bounds above."""
        return 1.0 - self.lam

    @property
    def fixed_point(self) -> np.ndarray:
        r"""The anchor $p_0$: the unique fixed point for $\lambda > 0$ (derived).

        For $\lambda = 0$ every distribution is a fixed point; asking for "the" fixed point then
        raises `ValueError`.
        """
        if self.lam == 0.0:
            raise ValueError("lam must be > 0 for a unique fixed point; at lam=0 every q is fixed")
        return self.anchor.copy()

    def __call__(self, log_q) -> np.ndarray:
        """One generation: the meta-teacher's log-probabilities for student `log_q`."""
        return self._phi(self.anchor, log_q, self.lam)

    def iterate(self, log_q0, n: int) -> np.ndarray:
        r"""The realizable recursion $q_{k+1} = \Phi_\lambda(p_0, q_k)$, $k < n$.

        Returns:
          Array of shape `(n + 1,) + broadcast shape`: $q_0, \dots, q_n$ in log space.
        """
        n = check_positive_int(n, "n", minimum=0)
        q = np.broadcast_arrays(log_probs(log_q0, "log_q0"), self.anchor)[0]
        out = [q.copy()]
        for _ in range(n):
            q = self(q)
            out.append(q)
        return np.stack(out)

    def closed_form(self, log_q0, n: int) -> np.ndarray:
        r"""$q_n$ directly: $\Phi_{w_n}(p_0, q_0)$ with $w_n = 1-(1-\lambda)^n$ (derived).

        For arithmetic anchoring this is $p_0 + (1-\lambda)^n (q_0 - p_0)$; for geometric
        anchoring $\mathrm{softmax}(w_n \log p_0 + (1-w_n)\log q_0)$.
        """
        return self._phi(self.anchor, log_q0, effective_weight(self.lam, n))


def soften(log_p, temperature: float) -> np.ndarray:
    r"""Temperature softening $p \mapsto p^{1/T} / Z$, i.e. $\log\mathrm{softmax}(\log p / T)$.

    $T > 1$ flattens, $T < 1$ sharpens; zeros stay zeros.

    Example:
      >>> import numpy as np
      >>> p = np.log([0.7, 0.2, 0.1])
      >>> bool(np.allclose(soften(soften(p, 2.0), 3.0), soften(p, 6.0)))
      True
    """
    t = check_positive(temperature, "temperature")
    lp = log_probs(log_p, "log_p")
    return log_softmax(lp, temperature=t)


def _check_weights(weights, m: int) -> np.ndarray:
    if weights is None:
        return np.full(m, 1.0 / m)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (m,):
        raise ValueError(f"weights must have shape ({m},) (one per teacher), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"weights must be finite and >= 0, got {w.tolist()}")
    if not np.isclose(w.sum(), 1.0, rtol=0.0, atol=1e-9):
        raise ValueError(f"weights must sum to 1, got sum {w.sum()!r}")
    return w


def aggregate(
    teacher_log_probs, weights=None, kind: Kind = "arithmetic", temperature: float = 1.0
) -> np.ndarray:
    r"""Weighted aggregation of $M$ teachers into one anchor $\bar p_0$.

    * arithmetic: $\bar p_0 = \sum_j \pi_j p_j$ (log-sum-exp);
    * geometric: $\bar p_0 \propto \prod_j p_j^{\pi_j}$ (normalised weighted mean of log-probs);

    each teacher first softened to $p_j^{1/T}/Z_j$ when `temperature` $\ne 1$. Geometric
    aggregation is temperature-coherent: softening the teachers equals softening the aggregate.
    Arithmetic aggregation is not (derived; `sims/meta_multi_teacher.py` measures the gap).

    Args:
      teacher_log_probs: (M, ..., k) log-probabilities, teachers on the first axis.
      weights: $\pi$ of shape (M,), non-negative, summing to 1; uniform if None.
      kind: `"arithmetic"` or `"geometric"`.
      temperature: $T > 0$ applied to each teacher before aggregating.

    Example:
      >>> import numpy as np
      >>> ps = np.log([[0.8, 0.2], [0.2, 0.8]])
      >>> bool(np.allclose(np.exp(aggregate(ps, [0.5, 0.5])), [0.5, 0.5]))
      True
      >>> g = aggregate(ps, [0.75, 0.25], kind="geometric")
      >>> bool(np.isclose(g[0] - g[1], 0.75 * np.log(4) + 0.25 * np.log(0.25)))
      True
    """
    check_kind(kind)
    lps = log_probs(teacher_log_probs, "teacher_log_probs")
    if lps.ndim < 2:
        raise ValueError(
            f"teacher_log_probs must have shape (M, ..., k) with teachers first, got {lps.shape}"
        )
    w = _check_weights(weights, lps.shape[0])
    if temperature != 1.0:
        lps = soften(lps, temperature)
    keep = w > 0  # a teacher with weight 0 has no influence, even where its p_j = 0
    lps, w = lps[keep], w[keep]
    wb = w.reshape((-1,) + (1,) * (lps.ndim - 1))
    if kind == "arithmetic":
        return logsumexp(lps + np.log(wb), axis=0)
    z = np.sum(wb * lps, axis=0)
    if np.isneginf(z).all(axis=-1).any():
        raise ValueError("the teachers with positive weight have no common support in some row")
    return log_softmax(z)
