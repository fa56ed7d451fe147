r"""The one decision rule for every comparison and every binned estimate.

Every claim measured with noise (over seeds, rollouts, problems or bins) is decided here, the
same way everywhere:

1. **A band.** Paired differences over seeds (or one value per seed) get a two-sided band from
   the t distribution, $\bar d \pm t_{(1+\ell)/2,\,n-1}\, s/\sqrt n$ with level $\ell$ = 95 %;
   anything else (a ratio, a fit, a per-bin SNR) gets a percentile bootstrap band over its
   independent units (problems, draws). `Band` records the estimate, the ends, `n` and the method.
2. **A verdict.** For a directional prediction (`side=">"`: the quantity exceeds `null`) the check
   is *held* when the whole band lies on the predicted side, *failed* when the whole band lies on
   the opposite side, *inconclusive* otherwise. For a value predicted within an interval
   (`side="within"`), held when the band lies inside it, failed when the band misses it.
3. **Agreement with an exact prediction.** Where theory predicts a value exactly and the
   measurement is noisy (a Monte Carlo mean against a closed form), each unit's z-score
   $(\hat x_i - x_i)/\mathrm{SE}_i$ is tested separately: the check fails when
   $\max_i |z_i|$ exceeds the two-sided normal bound at level `agree_level` Bonferroni-corrected
   for the number of units, so opposite biases cannot cancel (`check_consistent`). Failing is
   the rejection here, so the level is stricter (99.9 %): a true claim fails once in a thousand
   runs, not once in twenty, and verdicts do not hinge on the seed.
4. **Minimum counts.** With fewer units than the rule's minimum (`min_pairs` paired seeds,
   `min_units` bootstrap units, `min_bin` per bin) the check is not run: its verdict is
   `needs-scale`, naming the scale that can decide, and it is not counted.
5. **NaN is failed.** A non-finite measurement fails the check, with the reason in `details`.

Source: derived (a standard paired t / percentile-bootstrap interval; the choice of rule is ours).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from ..core._checks import check_positive_int
from ._registry import Claim
from ._results import CheckResult, Verdict, make_result, needs_scale

Side = Literal[">", "<", "within"]


@dataclasses.dataclass(frozen=True)
class Rule:
    """Parameters of the decision rule (one instance, `RULE`, is used everywhere).

    Attributes:
      level: two-sided coverage of the band.
      min_pairs: fewest paired seeds (or per-seed values) for a t band.
      min_units: fewest independent units for a bootstrap band.
      min_bin: fewest units in a bin for its estimate to count.
      n_boot: bootstrap resamples.
      agree_level: family-wise level of `check_consistent` (agreement with an exact value).
    """

    level: float = 0.95
    min_pairs: int = 2
    min_units: int = 5
    min_bin: int = 5
    n_boot: int = 2000
    agree_level: float = 0.999

    def __post_init__(self):
        for name in ("level", "agree_level"):
            v = getattr(self, name)
            if not 0.0 < v < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {v!r}")
        for name in ("min_pairs", "min_units", "min_bin", "n_boot"):
            object.__setattr__(self, name, check_positive_int(getattr(self, name), name))
        if self.min_pairs < 2:
            raise ValueError(
                f"min_pairs must be >= 2 (a t band needs n >= 2), got {self.min_pairs}"
            )


RULE = Rule()


@dataclasses.dataclass(frozen=True)
class Band:
    """An estimate with its two-sided band."""

    estimate: float
    lo: float
    hi: float
    n: int
    method: str
    level: float = 0.95

    @property
    def finite(self) -> bool:
        return all(math.isfinite(v) for v in (self.estimate, self.lo, self.hi))

    def describe(self) -> str:
        return f"{self.level:.0%} band [{self.lo:.4g}, {self.hi:.4g}] ({self.method}, n={self.n})"


def bonferroni(m: int, level: float = RULE.level) -> float:
    """Per-test level so that `m` tests together keep family-wise coverage `level`."""
    m = check_positive_int(m, "m")
    return 1.0 - (1.0 - level) / m


def _as_1d(name: str, values) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a


def t_band(values: Sequence[float] | np.ndarray, level: float = RULE.level) -> Band:
    r"""Mean with the two-sided t band $\bar x \pm t_{(1+\ell)/2,\,n-1}\,s/\sqrt n$.

    With fewer than two values, or any non-finite value, the ends are NaN.

    Example:
      >>> b = t_band([1.0, 2.0, 3.0])
      >>> round(b.estimate, 12), round(b.hi - b.estimate, 6)  # t_{.975,2} * 1/sqrt(3)
      (2.0, 2.484138)
    """
    from scipy import stats

    x = _as_1d("values", values)
    n = x.size
    est = float(x.mean()) if n else math.nan
    if n < 2 or not np.all(np.isfinite(x)):
        return Band(est, math.nan, math.nan, n, "t", level)
    se = float(x.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se
    return Band(est, est - half, est + half, n, f"t, df={n - 1}", level)


def bootstrap_band(
    units,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    level: float = RULE.level,
    n_boot: int = RULE.n_boot,
    seed: int = 0,
) -> Band:
    """Percentile bootstrap band of `statistic` over the independent units on axis 0 of `units`.

    `statistic` maps an array of units (same trailing shape as `units`) to a number. The
    resampling generator is seeded (`seed`), so the band is reproducible.
    """
    u = np.asarray(units, dtype=float)
    if u.ndim == 0:
        raise ValueError("units must have at least one axis (the units), got a scalar")
    n = u.shape[0]
    est = float(statistic(u)) if n else math.nan
    if n < 2 or not np.all(np.isfinite(u)) or not math.isfinite(est):
        return Band(est, math.nan, math.nan, n, "bootstrap", level)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    reps = np.array([float(statistic(u[i])) for i in idx])
    reps = reps[np.isfinite(reps)]
    if reps.size < n_boot // 2:
        return Band(est, math.nan, math.nan, n, "bootstrap", level)
    lo, hi = np.quantile(reps, [0.5 - level / 2, 0.5 + level / 2])
    return Band(est, float(lo), float(hi), n, f"percentile bootstrap, {n_boot} resamples", level)


def replicate_band(
    estimate: float,
    replicates,
    *,
    method: Literal["percentile", "basic"] = "percentile",
    level: float = RULE.level,
) -> Band:
    r"""A band from bootstrap replicates computed elsewhere (e.g. vectorised over resamples).

    `percentile`: the replicates' quantiles. `basic` (reverse percentile): the quantiles reflected
    about the estimate, $[2\hat\theta - q_{hi},\,2\hat\theta - q_{lo}]$, the first-order
    correction for a statistic that is biased under resampling (a clipped square root, a maximum
    over bins), where the percentile band can miss its own estimate.
    """
    reps = _as_1d("replicates", replicates)
    reps = reps[np.isfinite(reps)]
    n = int(np.asarray(replicates).size)
    if reps.size < max(n // 2, 2) or not math.isfinite(estimate):
        return Band(float(estimate), math.nan, math.nan, n, f"{method} bootstrap", level)
    q_lo, q_hi = (float(q) for q in np.quantile(reps, [0.5 - level / 2, 0.5 + level / 2]))
    if method == "basic":
        lo, hi = 2 * estimate - q_hi, 2 * estimate - q_lo
    elif method == "percentile":
        lo, hi = q_lo, q_hi
    else:
        raise ValueError(f"method must be 'percentile' or 'basic', got {method!r}")
    return Band(float(estimate), lo, hi, n, f"{method} bootstrap, {n} resamples", level)


def decide(
    band: Band, *, side: Side = ">", null: float = 0.0, interval: tuple[float, float] | None = None
) -> Verdict:
    """Held / failed / inconclusive from a band (a non-finite band is failed).

    `side=">"` predicts the quantity above `null`, `"<"` below it; `"within"` predicts it inside
    `interval` (an equivalence test).
    """
    if not band.finite:
        return "failed"
    if side == ">":
        return "held" if band.lo > null else ("failed" if band.hi < null else "inconclusive")
    if side == "<":
        return "held" if band.hi < null else ("failed" if band.lo > null else "inconclusive")
    if side == "within":
        if interval is None or not interval[0] <= interval[1]:
            raise ValueError(f"interval must be (lo, hi) with lo <= hi, got {interval!r}")
        a, b = interval
        if a <= band.lo and band.hi <= b:
            return "held"
        return "failed" if band.hi < a or band.lo > b else "inconclusive"
    raise ValueError(f"side must be '>', '<' or 'within', got {side!r}")


def _predicted(side: Side, null: float, interval) -> str:
    if side == "within":
        if interval is None or not interval[0] <= interval[1]:
            raise ValueError(f"interval must be (lo, hi) with lo <= hi, got {interval!r}")
        return f"in [{interval[0]:.4g}, {interval[1]:.4g}]"
    return f"{side} {null:.4g}"


def check_band(
    c: Claim,
    band: Band,
    *,
    side: Side = ">",
    null: float = 0.0,
    interval: tuple[float, float] | None = None,
    minimum: int | None = None,
    needs: str = "cpu-long",
    details: str = "",
    figure: str | None = None,
    scale: str = "sim",
) -> CheckResult:
    """Decide claim `c` from a precomputed band (any method), with the rule's conventions.

    `minimum` is the fewest units for the band to count (below it: `needs-scale`).
    """
    pred = _predicted(side, null, interval)
    common = dict(figure=figure, scale=scale, n=band.n, rule=band.method)
    if minimum is not None and band.n < minimum:
        return needs_scale(
            c,
            needs,
            predicted=pred,
            measured=band.estimate,
            scale=scale,
            n=band.n,
            details=f"only {band.n} units (the rule needs {minimum}). {details}".strip(),
        )
    if not band.finite:
        return make_result(
            c,
            pred,
            band.estimate,
            band.describe(),
            "failed",
            band=[band.lo, band.hi],
            details=f"non-finite measurement (estimate {band.estimate}, band "
            f"[{band.lo}, {band.hi}]). {details}".strip(),
            **common,
        )
    verdict = decide(band, side=side, null=null, interval=interval)
    return make_result(
        c,
        pred,
        band.estimate,
        band.describe(),
        verdict,
        band=[band.lo, band.hi],
        details=details,
        **common,
    )


def _nonfinite_values(c: Claim, pred, values: np.ndarray, name: str, scale, details, figure):
    bad = int(np.sum(~np.isfinite(values)))
    return make_result(
        c,
        pred,
        float(np.nanmean(values)) if np.any(np.isfinite(values)) else math.nan,
        None,
        "failed",
        scale=scale,
        figure=figure,
        n=int(values.size),
        details=f"non-finite measurement: {bad} of {values.size} {name} are NaN/inf. "
        f"{details}".strip(),
    )


def check_paired(
    c: Claim,
    treatment,
    control,
    *,
    side: Side = ">",
    margin: float = 0.0,
    interval: tuple[float, float] | None = None,
    rule: Rule = RULE,
    level: float | None = None,
    needs: str = "cpu-long",
    details: str = "",
    figure: str | None = None,
    scale: str = "sim",
) -> CheckResult:
    """Paired comparison over seeds: the t band of `treatment[i] - control[i]` against `margin`.

    `side=">"` predicts treatment > control + margin. Fewer than `rule.min_pairs` pairs: not run
    at this scale (`needs-scale`). Any non-finite value: failed.

    Example:
      >>> from sdtheory.claims import Claim, Source
      >>> c = Claim("doc.ex", "a beats b", Source("derived", "doctest"), "m")
      >>> check_paired(c, [1.0, 1.2, 1.1], [0.5, 0.6, 0.4]).verdict
      'held'
      >>> check_paired(c, [1.0], [0.5]).verdict
      'needs-scale'
    """
    t, b = _as_1d("treatment", treatment), _as_1d("control", control)
    if t.shape != b.shape:
        raise ValueError(f"treatment and control must pair up, got {t.shape} and {b.shape}")
    d = t - b
    pred = _predicted(side, margin, interval)
    if not np.all(np.isfinite(d)):
        return _nonfinite_values(c, pred, d, "paired differences", scale, details, figure)
    band = t_band(d, level=rule.level if level is None else level)
    band = dataclasses.replace(band, method=f"paired {band.method}")
    return check_band(
        c,
        band,
        side=side,
        null=margin,
        interval=interval,
        minimum=rule.min_pairs,
        needs=needs,
        details=details,
        figure=figure,
        scale=scale,
    )


def check_mean(
    c: Claim,
    values,
    *,
    side: Side = ">",
    null: float = 0.0,
    interval: tuple[float, float] | None = None,
    rule: Rule = RULE,
    level: float | None = None,
    needs: str = "cpu-long",
    details: str = "",
    figure: str | None = None,
    scale: str = "sim",
) -> CheckResult:
    """One value per seed: the t band of their mean against `null` (or inside `interval`)."""
    x = _as_1d("values", values)
    pred = _predicted(side, null, interval)
    if not np.all(np.isfinite(x)):
        return _nonfinite_values(c, pred, x, "values", scale, details, figure)
    band = t_band(x, level=rule.level if level is None else level)
    return check_band(
        c,
        band,
        side=side,
        null=null,
        interval=interval,
        minimum=rule.min_pairs,
        needs=needs,
        details=details,
        figure=figure,
        scale=scale,
    )


def check_bootstrap(
    c: Claim,
    units,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    side: Side = ">",
    null: float = 0.0,
    interval: tuple[float, float] | None = None,
    rule: Rule = RULE,
    level: float | None = None,
    seed: int = 0,
    needs: str = "cpu-long",
    details: str = "",
    figure: str | None = None,
    scale: str = "sim",
) -> CheckResult:
    """A statistic of independent units (problems, draws), decided on its bootstrap band."""
    u = np.asarray(units, dtype=float)
    pred = _predicted(side, null, interval)
    if u.size and not np.all(np.isfinite(u)):
        return _nonfinite_values(c, pred, u.reshape(-1), "unit values", scale, details, figure)
    if u.ndim == 0 or u.shape[0] < rule.min_units:
        n = 0 if u.ndim == 0 else int(u.shape[0])
        return needs_scale(
            c,
            needs,
            predicted=pred,
            scale=scale,
            n=n,
            details=f"only {n} units (the rule needs {rule.min_units}). {details}".strip(),
        )
    band = bootstrap_band(
        u, statistic, level=rule.level if level is None else level, n_boot=rule.n_boot, seed=seed
    )
    return check_band(
        c,
        band,
        side=side,
        null=null,
        interval=interval,
        minimum=rule.min_units,
        needs=needs,
        details=details,
        figure=figure,
        scale=scale,
    )


@dataclasses.dataclass(frozen=True)
class BinEstimate:
    """One bin of a binned estimate: its edges, count, estimate and band (NaN when too few)."""

    left: float
    right: float
    n: int
    estimate: float
    lo: float
    hi: float
    enough: bool

    def to_json(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in dataclasses.asdict(self).items()
        }


def binned(
    x,
    units,
    edges: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    rule: Rule = RULE,
    seed: int = 0,
) -> list[BinEstimate]:
    """Bin `units` by `x` (left-closed bins, the last one closed) and bootstrap each bin.

    Bins with fewer than `rule.min_bin` units are returned with `enough=False` and no band; a
    check built on the curve must use only the bins that have enough.
    """
    xs = _as_1d("x", x)
    u = np.asarray(units, dtype=float)
    if u.shape[0] != xs.size:
        raise ValueError(f"x and units must have the same length, got {xs.size} and {u.shape[0]}")
    e = _as_1d("edges", edges)
    if e.size < 2 or np.any(np.diff(e) <= 0):
        raise ValueError(f"edges must be increasing with at least two entries, got {list(e)}")
    which = np.clip(np.searchsorted(e, xs, side="right") - 1, 0, e.size - 2)
    inside = (xs >= e[0]) & (xs <= e[-1])
    out = []
    for k in range(e.size - 1):
        sel = u[inside & (which == k)]
        n = int(sel.shape[0])
        if n < rule.min_bin:
            est = float(statistic(sel)) if n else math.nan
            out.append(BinEstimate(float(e[k]), float(e[k + 1]), n, est, math.nan, math.nan, False))
            continue
        b = bootstrap_band(sel, statistic, level=rule.level, n_boot=rule.n_boot, seed=seed + k)
        out.append(BinEstimate(float(e[k]), float(e[k + 1]), n, b.estimate, b.lo, b.hi, True))
    return out


def check_consistent(
    c: Claim,
    estimates,
    predicted,
    se,
    *,
    rule: Rule = RULE,
    level: float | None = None,
    labels: Sequence[str] | None = None,
    slack: float = 0.0,
    minimum: int = 1,
    needs: str = "cpu-long",
    details: str = "",
    figure: str | None = None,
    scale: str = "sim",
) -> CheckResult:
    r"""Noisy estimates agree with exact predictions, every unit tested separately.

    With $z_i = (\hat x_i - x_i)/\mathrm{SE}_i$ over $m$ independent units (pairs, bins, K
    values), held when $\max_i |z_i| \le z^\star$, the two-sided normal quantile at the
    Bonferroni level `bonferroni(m, agree_level)`; failed otherwise (the prediction is rejected
    for the unit with the largest $|z|$). There is no inconclusive outcome: the prediction is
    the null. `slack` is a known deterministic error of the prediction itself (a large-N
    approximation, say), stated in the claim: a unit agrees when
    $|\hat x_i - x_i| \le \mathrm{slack} + z^\star \mathrm{SE}_i$. Fewer than `minimum` units:
    `needs-scale`. A non-finite estimate, prediction or standard error, or a standard error
    <= 0, is failed.

    Example:
      >>> from sdtheory.claims import Claim, Source
      >>> c = Claim("doc.ex", "unbiased", Source("derived", "doctest"), "m")
      >>> check_consistent(c, [1.01, 0.98], [1.0, 1.0], [0.01, 0.01]).verdict
      'held'
      >>> check_consistent(c, [1.2, 0.98], [1.0, 1.0], [0.01, 0.01]).verdict
      'failed'
    """
    from scipy import stats

    x, s = _as_1d("estimates", estimates), _as_1d("se", se)
    p = _as_1d("predicted", np.atleast_1d(np.asarray(predicted, dtype=float)))
    p = np.broadcast_to(p, x.shape) if p.size == 1 else p
    if not (x.shape == p.shape == s.shape):
        raise ValueError(
            f"estimates, predicted and se must have one entry per unit, got shapes {x.shape}, "
            f"{p.shape} and {s.shape}"
        )
    m = int(x.size)
    lvl = rule.agree_level if level is None else level
    z_crit = float(stats.norm.ppf(0.5 + bonferroni(max(m, 1), lvl) / 2))
    pred = f"max |z| <= {z_crit:.3g} (Bonferroni over {m} units, {lvl:.1%} family-wise)"
    if m < minimum:
        return needs_scale(
            c,
            needs,
            predicted=pred,
            scale=scale,
            n=m,
            details=f"only {m} units (the check needs {minimum}). {details}".strip(),
        )
    bad = ~(np.isfinite(x) & np.isfinite(p) & np.isfinite(s) & (s > 0))
    if np.any(bad):
        return make_result(
            c,
            pred,
            math.nan,
            None,
            "failed",
            scale=scale,
            figure=figure,
            n=m,
            rule="max |z|, Bonferroni",
            details=f"non-finite measurement: {int(bad.sum())} of {m} units have a NaN/inf "
            f"estimate, prediction or SE (or SE <= 0). {details}".strip(),
        )
    if not (math.isfinite(slack) and slack >= 0):
        raise ValueError(f"slack must be finite and >= 0, got {slack!r}")
    z = np.sign(x - p) * np.maximum(np.abs(x - p) - slack, 0.0) / s
    worst = int(np.argmax(np.abs(z)))
    name = labels[worst] if labels is not None else f"unit {worst}"
    verdict: Verdict = "held" if abs(z[worst]) <= z_crit else "failed"
    return make_result(
        c,
        pred,
        float(abs(z[worst])),
        f"|z| <= {z_crit:.3g}",
        verdict,
        scale=scale,
        figure=figure,
        n=m,
        rule="max |z|, Bonferroni" + (f", slack {slack:.3g}" if slack else ""),
        details=f"largest |z| = {abs(z[worst]):.2f} at {name} (estimate {x[worst]:.4g}, "
        f"predicted {p[worst]:.4g}, SE {s[worst]:.2g}). {details}".strip(),
    )


def check_all(
    c: Claim,
    parts: Sequence[tuple[str, Callable[[float], CheckResult]]],
    *,
    rule: Rule = RULE,
    details: str = "",
    figure: str | None = None,
) -> CheckResult:
    """One verdict for a claim that holds only if every part holds (both student families, say).

    `parts` are `(label, check)` pairs; `check(level)` returns the part's `CheckResult` decided
    at that two-sided level. An intersection-union test: the claim is **held** when every part
    holds at the rule's level (no correction is needed, since all must hold), **failed** when some
    part fails at the Bonferroni level for the number of parts (a false failure of any one part
    is what must be controlled), `needs-scale` when a part cannot be decided at this scale, and
    inconclusive otherwise. The returned result is the deciding part's, with every part listed in
    `details`.
    """
    if not parts:
        raise ValueError("parts must name at least one (label, check) pair")
    plain = [(lab, f(rule.level)) for lab, f in parts]
    strict = [(lab, f(bonferroni(len(parts), rule.level))) for lab, f in parts]
    failed = [(lab, r) for lab, r in strict if r.verdict == "failed"]
    later = [(lab, r) for lab, r in plain if r.verdict == "needs-scale"]
    if failed:
        lab, pick = failed[0]
    elif all(r.verdict == "held" for _, r in plain):
        lab, pick = plain[0]
    elif later:
        lab, pick = later[0]
    else:
        lab, pick = next((lab, r) for lab, r in plain if r.verdict != "held")
    verdict: Verdict = (
        "failed"
        if failed
        else "held"
        if all(r.verdict == "held" for _, r in plain)
        else ("needs-scale" if later else "inconclusive")
    )

    def _m(v) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    listing = "; ".join(
        f"{lab}: {r.verdict} ({_m(r.measured)}; {bonferroni(len(parts), rule.level):.3%} "
        f"band {'failed' if s.verdict == 'failed' else 'not failed'})"
        for (lab, r), (_, s) in zip(plain, strict, strict=True)
    )
    return dataclasses.replace(
        pick,
        verdict=verdict,
        figure=figure if figure is not None else pick.figure,
        rule=f"all of {len(parts)} parts (intersection-union; failed at Bonferroni level)",
        details=f"deciding part: {lab}. All parts: {listing}. {details}".strip(),
    )
