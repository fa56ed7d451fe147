r"""Divergences between categorical distributions given as log-probabilities (numpy, float64).

This file is the one home of the package's sign and argument-order conventions:

* `kl(log_p, log_q)` is $\mathrm{KL}(p\,\|\,q) = \sum_i p_i(\log p_i - \log q_i)$.
* `generalized_jsd(log_p, log_q, beta)` mixes $m = \beta p + (1-\beta) q$ and returns
  $\beta\,\mathrm{KL}(p\|m) + (1-\beta)\,\mathrm{KL}(q\|m)$. With `normalized=True` it is divided
  by $\beta(1-\beta)$ and continued at the ends: $\mathrm{KL}(p\|q)$ at $\beta=0$ and
  $\mathrm{KL}(q\|p)$ at $\beta=1$. With $p$ the teacher and $q$ the student, $\beta=0$ is forward
  KL and $\beta=1$ reverse KL, as in GKD/TRL, but without TRL's jump at the endpoints.

All sums are evaluated term by term in the *generalised* form
$p_i\,(e^{u_i} - 1 - u_i)$ with $u_i = \log q_i - \log p_i$: every term is non-negative, the
sum equals the KL for normalised inputs, and the small-$u$ regime is computed with `expm1`, so
the result is accurate to absolute $O(\varepsilon)$ even when the divergence is tiny. That is
what makes the normalised JSD continuous at $\beta \to 0, 1$.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_log_probs, broadcast_pair, check_unit_interval
from ._simplex import log_mix


def _gkl_terms(lp: np.ndarray, lq: np.ndarray) -> np.ndarray:
    r"""Elementwise $p\,(e^u - 1 - u)$, $u = \log q - \log p$, i.e. $p \log(p/q) + q - p$.

    Exact conventions: $p = 0$ gives $q$ (so $0 \log 0 = 0$); $q = 0 < p$ gives $+\infty$.
    """
    with np.errstate(all="ignore"):
        p = np.exp(lp)
        q = np.exp(lq)
        u = lq - lp
        small = p * (np.expm1(np.minimum(u, 1.0)) - u)  # u <= 1: no cancellation issue in expm1
        large = q - p - p * u  # u > 1: q dominates, no overflow (q <= 1)
        out = np.where(u <= 1.0, small, large)
        out = np.where(np.isneginf(lq) & (p > 0), np.inf, out)
        return np.where(np.isneginf(lp) | (p == 0), q, out)


def _pair(log_p, log_q, validate: bool):
    lp = as_log_probs(log_p, "log_p", validate)
    lq = as_log_probs(log_q, "log_q", validate)
    return broadcast_pair(lp, lq, "log_p", "log_q")


def kl(log_p, log_q, validate: bool = False) -> np.ndarray:
    r"""Kullback–Leibler divergence $\mathrm{KL}(p\,\|\,q)=\sum_i p_i(\log p_i-\log q_i)$ in nats.

    Entries with $p_i = 0$ contribute 0 even where $q_i = 0$; $p_i > 0 = q_i$ gives $+\infty$.

    Args:
      log_p: log-probabilities of the reference distribution $p$ (..., k).
      log_q: log-probabilities of the approximating distribution $q$ (..., k).
      validate: raise `ValueError` if a row of either input does not normalise.

    Returns:
      KL values with the last axis reduced.

    References:
      Cover & Thomas, *Elements of Information Theory* (2006), ch. 2.

    Example:
      >>> import numpy as np
      >>> p, q = np.log([0.5, 0.5]), np.log([0.9, 0.1])
      >>> bool(np.isclose(kl(p, q), 0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1)))
      True
    """
    lp, lq = _pair(log_p, log_q, validate)
    return np.sum(_gkl_terms(lp, lq), axis=-1)


def total_variation(log_p, log_q, validate: bool = False) -> np.ndarray:
    r"""Total variation $\mathrm{TV}(p, q) = \tfrac12 \sum_i |p_i - q_i| \in [0, 1]$."""
    lp, lq = _pair(log_p, log_q, validate)
    return 0.5 * np.sum(np.abs(np.exp(lp) - np.exp(lq)), axis=-1)


def skew_kl(log_p, log_q, alpha: float, validate: bool = False) -> np.ndarray:
    r"""Skew KL $\mathrm{KL}(p \,\|\, \alpha p + (1-\alpha) q)$, finite for $\alpha > 0$.

    $\alpha = 0$ is $\mathrm{KL}(p\|q)$, $\alpha = 1$ is 0 (Lee 2001; DistiLLM, Ko et al. 2024).
    """
    a = check_unit_interval(alpha, "alpha")
    lp, lq = _pair(log_p, log_q, validate)
    return np.sum(_gkl_terms(lp, log_mix(lp, lq, a)), axis=-1)


def generalized_jsd(
    log_p, log_q, beta: float, normalized: bool = False, validate: bool = False
) -> np.ndarray:
    r"""Generalised Jensen–Shannon divergence with mixing weight $\beta$.

    $$m = \beta p + (1-\beta) q,\qquad
      \mathrm{JSD}_\beta(p, q) = \beta\,\mathrm{KL}(p\|m) + (1-\beta)\,\mathrm{KL}(q\|m).$$

    Raw values satisfy $0 \le \mathrm{JSD}_\beta \le h(\beta)$, the binary entropy of $\beta$,
    and vanish at $\beta \in \{0, 1\}$. With `normalized=True` the value is divided by
    $\beta(1-\beta)$ and continued at the ends, giving $\mathrm{KL}(p\|q)$ at $\beta = 0$ and
    $\mathrm{KL}(q\|p)$ at $\beta = 1$; the result is continuous in $\beta$.

    With $p$ = teacher and $q$ = student this is the GKD convention (Agarwal et al. 2024, Eq. 3;
    TRL `generalized_jsd_loss`): $\beta = 0$ forward KL, $\beta = 1$ reverse KL. TRL returns the
    raw JSD for $0<\beta<1$ but the *un-scaled* KLs at the endpoints, so it jumps there; the
    normalised form here does not.

    Args:
      log_p: log-probabilities of $p$ (teacher in the GKD convention).
      log_q: log-probabilities of $q$ (student in the GKD convention).
      beta: mixing weight in $[0, 1]$.
      normalized: divide by $\beta(1-\beta)$ and continue at the ends.
      validate: check that both inputs normalise.

    Example:
      >>> import numpy as np
      >>> p, q = np.log([0.7, 0.2, 0.1]), np.log([0.2, 0.3, 0.5])
      >>> bool(np.isclose(generalized_jsd(p, q, 0.0, normalized=True), kl(p, q)))
      True
      >>> bool(np.isclose(generalized_jsd(p, q, 1e-9, normalized=True), kl(p, q), rtol=1e-6))
      True
    """
    b = check_unit_interval(beta, "beta")
    lp, lq = _pair(log_p, log_q, validate)
    lm = log_mix(lp, lq, b)
    to_p = np.sum(_gkl_terms(lp, lm), axis=-1)  # KL(p || m)
    to_q = np.sum(_gkl_terms(lq, lm), axis=-1)  # KL(q || m)
    if not normalized:
        return b * to_p + (1.0 - b) * to_q
    # Divide by beta(1-beta): beta KL(p||m) / (beta(1-beta)) = KL(p||m)/(1-beta), and likewise.
    # At beta = 0, m = q: the first term is KL(p||q) and KL(q||m)/beta -> 0 (it is O(beta)).
    first = to_p / (1.0 - b) if b < 1.0 else np.zeros_like(to_p)
    second = to_q / b if b > 0.0 else np.zeros_like(to_q)
    return first + second
