r"""Sampled-token estimators of $\mathrm{KL}(q\,\|\,p)$ from samples $x \sim q$ (Schulman 2020).

Each takes the log-probabilities that $q$ (the sampling distribution) and $p$ assign to the drawn
samples and returns one value per sample. With $r = \log p(x) - \log q(x)$:

| estimator | value | bias | sign |
|---|---|---|---|
| `k1` | $-r$ | unbiased | can be negative |
| `k2` | $\tfrac12 r^2$ | biased (exact to 2nd order in $r$) | $\ge 0$ |
| `k3` | $(e^{r} - 1) - r$ | unbiased ($\mathbb E_q e^r = 1$ when $p \ll q$) | $\ge 0$ |

In on-policy distillation $q$ is the student and $p$ the teacher, so these estimate the reverse
KL $\mathrm{KL}(\text{student}\,\|\,\text{teacher})$ from student samples.

References:
  J. Schulman, *Approximating KL Divergence* (2020), http://joschu.net/blog/kl-approx.html.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_float_array, broadcast_pair


def _log_ratio(log_q_samples, log_p_samples) -> np.ndarray:
    lq = as_float_array(np.atleast_1d(log_q_samples), "log_q_samples")
    lp = as_float_array(np.atleast_1d(log_p_samples), "log_p_samples")
    lq, lp = broadcast_pair(lq, lp, "log_q_samples", "log_p_samples")
    if np.isneginf(lq).any():
        raise ValueError("log_q_samples contains -inf: a sample from q cannot have q(x) = 0")
    return lp - lq


def k1(log_q_samples, log_p_samples) -> np.ndarray:
    r"""Per-sample $k_1 = \log q(x) - \log p(x)$; its mean is unbiased for $\mathrm{KL}(q\|p)$."""
    return -_log_ratio(log_q_samples, log_p_samples)


def k2(log_q_samples, log_p_samples) -> np.ndarray:
    r"""Per-sample $k_2 = \tfrac12(\log p(x) - \log q(x))^2 \ge 0$; biased, low variance."""
    return 0.5 * _log_ratio(log_q_samples, log_p_samples) ** 2


def k3(log_q_samples, log_p_samples) -> np.ndarray:
    r"""Per-sample $k_3 = (e^r - 1) - r$, $r = \log p(x) - \log q(x)$: unbiased and $\ge 0$.

    Evaluated as `expm1(r) - r`, which is accurate for small $|r|$.
    """
    r = _log_ratio(log_q_samples, log_p_samples)
    with np.errstate(over="ignore"):
        return np.expm1(r) - r
