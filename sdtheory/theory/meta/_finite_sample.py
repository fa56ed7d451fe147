r"""Finite-sample generations: categorical students refitted to $N$ samples, exact moments.

At $\lambda = 0$ the chain is Wright–Fisher (support collapse); arithmetic anchoring keeps a
stationary spread of order $(k-1)/(2\lambda N)$ (derived, `docs/theory/meta.md` §5).
"""

from __future__ import annotations

import numpy as np

from ...core._checks import check_positive_int, check_unit_interval
from ._common import Kind, check_kind, log_probs
from ._operators import geometric_anchor


def finite_sample_generations(
    log_p0,
    lam: float,
    n_samples: int,
    generations: int,
    rng: np.random.Generator,
    kind: Kind = "arithmetic",
    replicates: int = 1,
) -> np.ndarray:
    r"""Generations of categorical students fitted by maximum likelihood to $N$ samples.

    $q_0 = p_0$; for $n \ge 0$, draw $N$ samples from the meta-teacher
    $m_n = \Phi_\lambda(p_0, q_n)$ and set $q_{n+1}$ to their empirical frequencies (the
    categorical MLE). At $\lambda = 0$ this is the Wright–Fisher chain: an outcome that reaches
    count 0 never returns (support collapse). Arithmetic anchoring with $\lambda>0$ puts mass
    $\ge \lambda p_0$ back on every outcome; geometric anchoring does not.

    Args:
      log_p0: anchor log-probabilities (k,).
      lam: $\lambda \in [0, 1]$.
      n_samples: $N \ge 1$ samples per generation.
      generations: number of refits $G \ge 0$.
      rng: numpy Generator.
      kind: `"arithmetic"` or `"geometric"`.
      replicates: independent chains run side by side.

    Returns:
      Integer counts, shape `(replicates, generations + 1, k)`; generation 0 holds
      $N p_0$ (real-valued, as the exact start), later rows are multinomial counts, so
      $q_n$ = `counts[:, n] / n_samples`.
    """
    lam = check_unit_interval(lam, "lam")
    check_kind(kind)
    lp0 = log_probs(log_p0, "log_p0")
    if lp0.ndim != 1:
        raise ValueError(f"log_p0 must be one distribution (k,), got shape {lp0.shape}")
    n_samples = check_positive_int(n_samples, "n_samples")
    generations = check_positive_int(generations, "generations", minimum=0)
    replicates = check_positive_int(replicates, "replicates")
    k = lp0.shape[0]
    p0 = np.exp(lp0)
    counts = np.zeros((replicates, generations + 1, k))
    counts[:, 0] = n_samples * p0
    q = np.broadcast_to(p0, (replicates, k)).copy()
    for g in range(1, generations + 1):
        if kind == "arithmetic":
            m = lam * p0 + (1.0 - lam) * q
        else:
            with np.errstate(divide="ignore"):
                m = np.exp(geometric_anchor(lp0, np.log(q), lam))
        m = m / m.sum(axis=-1, keepdims=True)
        c = rng.multinomial(n_samples, m)
        counts[:, g] = c
        q = c / n_samples
    return counts


def _decay(lam: float, n_samples: int) -> float:
    n_samples = check_positive_int(n_samples, "n_samples")
    return (1.0 - lam) ** 2 * (1.0 - 1.0 / n_samples)


def _generations(generations) -> np.ndarray:
    n = np.asarray(generations, dtype=np.float64)
    if (n < 0).any() or (n != np.round(n)).any():
        raise ValueError(f"generations must be integers >= 0, got {generations!r}")
    return n


def finite_sample_chi2(k: int, n_samples: int, lam: float, generations) -> np.ndarray:
    r"""Exact $\mathbb E\,\chi^2(q_n, p_0)$, $\chi^2=\sum_i (q_i-p_i)^2/p_i$, arithmetic anchoring.

    With $q_0 = p_0$ and $a = (1-\lambda)^2(1-1/N)$ (derived, `docs/theory/meta.md` §5):
    $$\mathbb E\,\chi^2(q_n, p_0) = \frac{(k-1)(1-a^n)}{N(1-a)}
      \xrightarrow{n\to\infty} \frac{k-1}{N\lambda(2-\lambda) + (1-\lambda)^2}\quad(\lambda>0),$$
    a stationary level of order $(k-1)/(2\lambda N)$; at $\lambda = 0$ it grows to $k-1$ (the
    value of a point mass drawn from $p_0$). Independent of $p_0$ beyond $k$.

    Example:
      >>> bool(np.isclose(finite_sample_chi2(10, 100, 0.0, 1), 9 / 100))
      True
    """
    lam = check_unit_interval(lam, "lam")
    k = check_positive_int(k, "k", minimum=2)
    a = _decay(lam, n_samples)
    n = _generations(generations)
    return (k - 1) * (-np.expm1(n * np.log(a)) if a > 0 else (n > 0) * 1.0) / (n_samples * (1 - a))


def finite_sample_heterozygosity(log_p0, n_samples: int, lam: float, generations) -> np.ndarray:
    r"""Exact $\mathbb E[1 - \sum_i q_{n,i}^2]$ for arithmetic anchoring with $q_0 = p_0$ (derived).

    $$\mathbb E[1-\textstyle\sum_i q_{n,i}^2] = H_0 - H_0\,\frac{1-a^n}{N(1-a)},\qquad
      H_0 = 1 - \textstyle\sum_i p_{0,i}^2,$$
    which at $\lambda = 0$ is the Wright–Fisher law $H_0 (1-1/N)^n$.
    """
    lam = check_unit_interval(lam, "lam")
    lp0 = log_probs(log_p0, "log_p0")
    h0 = 1.0 - float(np.sum(np.exp(2 * lp0)))
    a = _decay(lam, n_samples)
    n = _generations(generations)
    frac = (-np.expm1(n * np.log(a)) if a > 0 else (n > 0) * 1.0) / (n_samples * (1 - a))
    return h0 - h0 * frac


def finite_sample_sq_error(log_p0, n_samples: int, lam: float, generations) -> np.ndarray:
    r"""Exact $\mathbb E\,\|q_n - p_0\|_2^2$ for arithmetic anchoring with $q_0 = p_0$ (derived).

    $$\mathbb E\,\|q_n - p_0\|_2^2 = H_0\,\frac{1-a^n}{N(1-a)}
      \xrightarrow{n\to\infty} \frac{H_0}{N\lambda(2-\lambda)+(1-\lambda)^2},$$
    with $H_0 = 1-\sum_i p_{0,i}^2$ and $a = (1-\lambda)^2(1-1/N)$. Unlike $\chi^2$, whose
    weights $1/p_{0,i}$ give heavy tails when $p_0$ has rare outcomes, this error is bounded
    by 2, so Monte Carlo means of it have reliable standard errors.

    Example:
      >>> p0 = np.log([0.5, 0.5])
      >>> bool(np.isclose(finite_sample_sq_error(p0, 10, 0.0, 1), 0.5 / 10))
      True
    """
    lp0 = log_probs(log_p0, "log_p0")
    h0 = 1.0 - float(np.sum(np.exp(2 * lp0)))
    return h0 - finite_sample_heterozygosity(lp0, n_samples, lam, generations)
