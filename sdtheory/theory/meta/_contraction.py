r"""Contraction of the anchored recursion: the KL bound, the oscillation seminorm, a profile."""

from __future__ import annotations

import numpy as np

from ...core import kl, total_variation
from ...core._checks import as_log_probs, broadcast_pair, check_unit_interval
from ._operators import AnchoredOperator


def kl_contraction_bound(kl0, lam: float, n) -> np.ndarray:
    r"""$(1-\lambda)^n\,\mathrm{KL}(p_0\|q_0)$: the arithmetic bound on $\mathrm{KL}(p_0\|q_n)$.

    Derived from joint convexity of KL (`docs/theory/meta.md`, §2); also an upper bound on the
    oscillation of $\log(q_n/p_0)$ under geometric anchoring when `kl0` is replaced by the
    initial oscillation.

    Example:
      >>> bool(np.isclose(kl_contraction_bound(2.0, 0.5, 3), 0.25))
      True
    """
    lam = check_unit_interval(lam, "lam")
    n = np.asarray(n)
    if (n < 0).any():
        raise ValueError(f"n must be >= 0, got {n.tolist()}")
    return np.asarray(kl0, dtype=np.float64) * (1.0 - lam) ** n


def oscillation(log_q, log_p) -> np.ndarray:
    r"""Oscillation seminorm $\|\log(q/p)\|_{\mathrm{osc}} = \max_i r_i - \min_i r_i$.

    Here $r = \log q - \log p$.

    Taken over the common support; $+\infty$ if the supports differ. It ignores additive
    constants, so normalisation does not change it, and it bounds both KLs:
    $\mathrm{KL}(p\|q) \le \|\log(q/p)\|_{\mathrm{osc}}$ (derived).

    Example:
      >>> import numpy as np
      >>> bool(np.isclose(oscillation(np.log([0.5, 0.5]), np.log([0.8, 0.2])), np.log(4)))
      True
    """
    lq = as_log_probs(log_q, "log_q")
    lp = as_log_probs(log_p, "log_p")
    lq, lp = broadcast_pair(lq, lp, "log_q", "log_p")
    fq, fp = np.isfinite(lq), np.isfinite(lp)
    both = fq & fp
    with np.errstate(invalid="ignore"):
        r = np.where(both, lq - lp, np.nan)
    hi = np.nanmax(np.where(both, r, -np.inf), axis=-1)
    lo = np.nanmin(np.where(both, r, np.inf), axis=-1)
    osc = np.where(both.any(axis=-1), hi - lo, np.inf)
    return np.where((fq != fp).any(axis=-1), np.inf, osc)


def contraction_profile(op: AnchoredOperator, log_q0, n: int) -> dict[str, np.ndarray]:
    r"""Per-generation distances to the anchor and the derived bounds, for one start $q_0$.

    Returns columns (length $n+1$): `generation`, `kl` $=\mathrm{KL}(p_0\|q_n)$, `kl_bound`
    $=(1-\lambda)^n\mathrm{KL}(p_0\|q_0)$ (a theorem only for arithmetic anchoring), `tv`,
    `tv_exact` $=(1-\lambda)^n\mathrm{TV}(p_0, q_0)$ (exact for arithmetic), `osc`, `osc_exact`
    $=(1-\lambda)^n \|\log(q_0/p_0)\|_{\mathrm{osc}}$ (exact for geometric).
    """
    qs = op.iterate(log_q0, n)
    if qs.ndim != 2:
        raise ValueError(f"log_q0 and the anchor must be single distributions, got {qs.shape[1:]}")
    gens = np.arange(n + 1)
    f = (1.0 - op.lam) ** gens
    k = kl(op.anchor, qs)
    t = total_variation(op.anchor, qs)
    o = oscillation(qs, op.anchor)
    return {
        "generation": gens,
        "kl": k,
        "kl_bound": f * k[0],
        "tv": t,
        "tv_exact": f * t[0],
        "osc": o,
        "osc_exact": f * o[0],
    }
