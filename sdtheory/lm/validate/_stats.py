r"""Statistics the experiments share (numpy only): gradient Gram matrices, SNR, stratified bands.

Per-problem gradients are high-dimensional, but every quantity the PACED checks need is a function
of their inner products. `gram_factor` turns the Gram matrix $G=\Gamma\Gamma^\top$ into an exact
$n\times n$ factor $F$ with $FF^\top=G$, whose rows can stand in for the gradients in any
statistic of inner products (norms of means, traces of covariances), bootstraps included.

`stratified_band` is the bootstrap of `sdtheory.claims.bootstrap_band` with the resampling done
within strata (pass-rate bins): each bin keeps its count, so a difference between bins is not
confounded by how many problems landed in each. The statistics here are *debiased* (for
$\|\mathbb E g\|^2$ the bias $\operatorname{tr}\mathrm{Cov}/n$ is subtracted), and a bootstrap
resample puts that bias back: the empirical distribution's own mean norm is the biased
$\|\bar g\|^2$, so the replicates centre near the *plug-in* value, $O(1/n)$ away from the
estimate (measured on synthetic gradients: the replicates of an efficiency whose estimate is
unbiased sat 0.2 below it, all of them). The band therefore takes its *width* from the
bootstrap and its *location* from the estimate: replicates are shifted by
$\hat\theta-\operatorname{median}(\theta^*)$ before the percentile ends are read (the
median-bias correction of the percentile interval). Its `Band` is decided by
`sdtheory.claims.check_band` like any other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ... import claims


def gram_factor(gram) -> np.ndarray:
    """An n x n factor F with F F^T = G (eigenvalues below 0 from rounding set to 0)."""
    g = np.asarray(gram, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise ValueError(f"gram must be square, got shape {g.shape}")
    g = 0.5 * (g + g.T)
    d, v = np.linalg.eigh(g)
    scale = max(float(np.abs(d).max(initial=0.0)), 1e-300)
    if d.min(initial=0.0) < -1e-8 * scale:
        raise ValueError(
            f"gram is not PSD: smallest eigenvalue {d.min():.3g} (largest {scale:.3g})"
        )
    return v * np.sqrt(np.clip(d, 0.0, None))


def signal_noise(rows: np.ndarray) -> tuple[float, float]:
    r"""Debiased $\|\mathbb E g\|^2$ and $\operatorname{tr}\mathrm{Cov}\,g$ of the rows (n >= 2).

    $\|\bar g\|^2$ overestimates $\|\mathbb E g\|^2$ by $\operatorname{tr}\mathrm{Cov}/n$; that
    bias is subtracted (the result may be slightly negative when the mean is near 0).
    """
    r = np.asarray(rows, dtype=np.float64)
    n = r.shape[0]
    if n < 2:
        return math.nan, math.nan
    mean = r.mean(0)
    tr = float(np.sum((r - mean) ** 2) / (n - 1))
    return float(mean @ mean) - tr / n, tr


def snr(rows: np.ndarray) -> float:
    r"""Cross-problem SNR $\|\mathbb E g\|^2/\operatorname{tr}\mathrm{Cov}\,g$ (debiased); NaN if undefined."""
    s2, tr = signal_noise(rows)
    if not (math.isfinite(tr) and tr > 0):
        return math.nan
    return s2 / tr


def weighted_snr(strata: Sequence[np.ndarray], weights: Sequence[float]) -> float:
    r"""Debiased SNR of the weighted sum $G=\sum_g w_g\sum_{i\in g}g_i$ over strata of gradients.

    $\mathbb E\|G\|^2=\|\mathbb E G\|^2+\sum_g w_g^2 N_g v_g$ with $v_g$ the per-unit
    $\operatorname{tr}\mathrm{Cov}$ of stratum $g$ (estimated within it), so
    $\mathrm{SNR}(w)=(\|G\|^2-\sum_g w_g^2N_gv_g)/\sum_g w_g^2N_gv_g$ needs no common direction
    and no square root of a noisy signal. NaN when a weighted stratum has fewer than 2 units.
    """
    total, noise = None, 0.0
    for f, w in zip(strata, weights, strict=True):
        if w == 0:
            continue
        if f.shape[0] < 2:
            return math.nan
        _, v = signal_noise(f)
        part = w * f.sum(0)
        total = part if total is None else total + part
        noise += w * w * f.shape[0] * v
    if total is None or not noise > 0:
        return math.nan
    return (float(total @ total) - noise) / noise


def optimal_snr(strata: Sequence[np.ndarray]) -> float:
    r"""$\max_w\mathrm{SNR}(w)=\sum_g N_g s_g^2/v_g$ in the common-direction model (debiased $s_g^2$).

    An upper bound on the best weighted SNR when the strata's mean gradients are not parallel, so
    `weighted_snr(w) / optimal_snr` is a conservative efficiency.
    """
    out = 0.0
    for f in strata:
        s2, v = signal_noise(f)
        if not (math.isfinite(v) and v > 0):
            return math.nan
        out += f.shape[0] * s2 / v
    return out


def stratified_band(
    strata: Sequence[np.ndarray],
    statistic: Callable[[list[np.ndarray]], float],
    *,
    level: float = claims.RULE.level,
    n_boot: int = claims.RULE.n_boot,
    seed: int = 0,
    method: str = "stratified bootstrap",
) -> claims.Band:
    """Band of `statistic(strata)`: bootstrap within each stratum, recentred on the estimate.

    Args:
      strata: one array per stratum, units on axis 0.
      statistic: maps the list of (resampled) strata to a number.

    Returns:
      A `claims.Band`; n is the total number of units. NaN ends when a stratum has fewer than 2
      units or fewer than half the resamples give a finite statistic.
    """
    strata = [np.asarray(s, dtype=np.float64) for s in strata]
    n = int(sum(s.shape[0] for s in strata))
    est = float(statistic(strata))
    if any(s.shape[0] < 2 for s in strata) or not math.isfinite(est):
        return claims.Band(est, math.nan, math.nan, n, method, level)
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        res = [s[rng.integers(0, s.shape[0], s.shape[0])] for s in strata]
        reps.append(float(statistic(res)))
    reps = np.array(reps)
    reps = reps[np.isfinite(reps)]
    if reps.size < n_boot // 2:
        return claims.Band(est, math.nan, math.nan, n, method, level)
    reps = reps + (est - float(np.median(reps)))
    lo, hi = np.quantile(reps, [0.5 - level / 2, 0.5 + level / 2])
    return claims.Band(
        est, float(lo), float(hi), n, f"{method} (median-recentred), {n_boot} resamples", level
    )


def ols_slope(x, y) -> float:
    """Least-squares slope of y on x (NaN with fewer than 2 distinct x)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 2 or np.ptp(x) == 0:
        return math.nan
    xc = x - x.mean()
    return float(xc @ (y - y.mean()) / (xc @ xc))
