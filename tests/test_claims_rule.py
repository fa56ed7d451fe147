"""The one decision rule: synthetic inputs whose verdict is known."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from sdtheory import claims
from sdtheory.claims import Band, Claim, Source

C = Claim("test.rule", "treatment beats control", Source("derived", "test"), "m")


def _seeds(effect, sd, n, seed):
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 1.0, n)
    return base + effect + rng.normal(0.0, sd, n), base


def test_t_band_matches_scipy_interval():
    x = np.array([0.3, -0.1, 0.8, 0.4, 0.25])
    b = claims.t_band(x)
    lo, hi = stats.t.interval(0.95, x.size - 1, loc=x.mean(), scale=stats.sem(x))
    assert (
        b.n == 5 and b.lo == pytest.approx(lo, rel=1e-12) and b.hi == pytest.approx(hi, rel=1e-12)
    )


@pytest.mark.parametrize(
    "effect, expected",
    [(1.0, "held"), (-1.0, "failed"), (0.0, "inconclusive")],
    ids=["clear effect", "clear reverse effect", "noise"],
)
def test_paired_verdicts(effect, expected):
    t, c = _seeds(effect, 0.2, 8, seed=3)
    r = claims.check_paired(C, t, c, side=">")
    assert r.verdict == expected
    assert r.n == 8 and r.rule.startswith("paired t") and len(r.band) == 2
    assert claims.check_paired(C, c, t, side="<").verdict == expected  # same claim, mirrored


def test_paired_margin_and_band_fields():
    t, c = [1.0, 1.1, 0.9, 1.05], [0.0, 0.0, 0.0, 0.0]
    assert claims.check_paired(C, t, c, margin=0.5).verdict == "held"
    assert claims.check_paired(C, t, c, margin=1.5).verdict == "failed"
    assert claims.check_paired(C, t, c, margin=1.0).verdict == "inconclusive"


def test_too_few_pairs_needs_a_larger_scale_and_is_not_counted():
    r = claims.check_paired(C, [1.0], [0.0], needs="cpu-long")
    assert r.verdict == "needs-scale" and r.needs == "cpu-long" and not r.counted
    assert claims.check_paired(C, [], []).verdict == "needs-scale"
    assert "1 more need a larger scale" in claims.summary_line([r])
    assert claims.summary_line([r]).startswith("0 checks")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_measurement_is_failed(bad):
    r = claims.check_paired(C, [1.0, bad, 2.0], [0.0, 0.0, 0.0])
    assert r.verdict == "failed" and "non-finite" in r.details
    assert claims.check_mean(C, [bad, 1.0]).verdict == "failed"
    assert claims.check_bootstrap(C, [1.0] * 9 + [bad]).verdict == "failed"
    assert claims.check_close(C, 1.0, bad, atol=1.0).verdict == "failed"
    assert claims.check_bound(C, 1.0, bad).verdict == "failed"
    nan_band = Band(math.nan, math.nan, math.nan, 10, "x")
    assert claims.check_band(C, nan_band).verdict == "failed"


def test_mean_within_interval():
    x = np.random.default_rng(0).normal(2.0, 0.01, 20)
    assert claims.check_mean(C, x, side="within", interval=(1.9, 2.1)).verdict == "held"
    assert claims.check_mean(C, x, side="within", interval=(2.5, 3.0)).verdict == "failed"
    assert claims.check_mean(C, x, side="within", interval=(2.0, 3.0)).verdict == "inconclusive"
    with pytest.raises(ValueError, match="interval"):
        claims.check_mean(C, x, side="within")


def test_bootstrap_of_a_ratio_statistic():
    # SNR-like statistic: ||mean||^2 / trace(cov) over units, clear signal vs pure noise.
    rng = np.random.default_rng(1)
    snr = lambda u: float(np.sum(u.mean(0) ** 2) / np.trace(np.cov(u.T)))  # noqa: E731
    signal = rng.normal(1.0, 0.5, size=(200, 3))
    noise = rng.normal(0.0, 0.5, size=(200, 3))
    assert claims.check_bootstrap(C, signal, snr, null=1.0).verdict == "held"
    assert claims.check_bootstrap(C, noise, snr, null=1.0).verdict == "failed"
    assert claims.check_bootstrap(C, noise[:3], snr).verdict == "needs-scale"
    b1 = claims.bootstrap_band(signal, snr, seed=5)
    assert b1 == claims.bootstrap_band(signal, snr, seed=5)  # reproducible


def test_bootstrap_band_covers_the_mean_at_the_nominal_rate():
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(300):
        b = claims.bootstrap_band(rng.exponential(1.0, 60), n_boot=400, seed=int(rng.integers(1e9)))
        hits += b.lo <= 1.0 <= b.hi
    assert 0.89 <= hits / 300 <= 0.99  # 95 % nominal; percentile bootstrap runs a little short


@given(st.floats(-5, 5), st.floats(0.01, 3), st.integers(2, 40), st.integers(0, 2**31))
def test_verdict_is_consistent_with_the_band(effect, sd, n, seed):
    t, c = _seeds(effect, sd, n, seed)
    r = claims.check_paired(C, t, c)
    lo, hi = r.band
    assert r.verdict == ("held" if lo > 0 else "failed" if hi < 0 else "inconclusive")
    assert lo <= r.measured <= hi


def test_binned_minimum_count_and_bands():
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.uniform(0, 0.5, 50), [0.9, 0.95]])
    y = np.concatenate([rng.normal(1.0, 0.1, 50), [5.0, 6.0]])
    bins = claims.binned(x, y, [0.0, 0.5, 1.0])
    assert [b.n for b in bins] == [50, 2]
    assert bins[0].enough and bins[0].lo < 1.0 < bins[0].hi
    assert not bins[1].enough and math.isnan(bins[1].lo) and bins[1].estimate == 5.5
    assert bins[1].to_json()["lo"] is None
    with pytest.raises(ValueError, match="edges"):
        claims.binned(x, y, [1.0, 0.0])


def test_rule_and_decide_validate_their_arguments():
    with pytest.raises(ValueError, match="min_pairs"):
        claims.Rule(min_pairs=1)
    with pytest.raises(ValueError, match="level"):
        claims.Rule(level=1.0)
    with pytest.raises(ValueError, match="side"):
        claims.decide(Band(0.0, -1.0, 1.0, 3, "t"), side="!=")
    with pytest.raises(ValueError, match="pair up"):
        claims.check_paired(C, [1.0, 2.0], [1.0])
    assert claims.bonferroni(5) == pytest.approx(0.99)


def test_report_separates_needs_scale(tmp_path):
    held = claims.check_true(C, True)
    later = claims.needs_scale(C, "cpu-long", details="one seed")
    md, _ = claims.write_report([("s", [held, later], [])], tmp_path)
    text = md.read_text()
    assert (
        "1 checks: 1 held" in text and "Needs a larger scale" in text and "--scale cpu-long" in text
    )


def test_consistent_every_unit_separately_so_opposite_biases_do_not_cancel():
    rng = np.random.default_rng(6)
    m, se = 20, 0.01
    truth = rng.uniform(0.5, 1.5, m)
    unbiased = truth + rng.normal(0.0, se, m)
    r = claims.check_consistent(C, unbiased, truth, np.full(m, se))
    assert r.verdict == "held" and r.rule.startswith("max |z|") and r.n == m
    # +8 SE on one unit, -8 SE on another: their mean z is 0, the check still fails
    biased = unbiased.copy()
    biased[3] += 8 * se
    biased[7] -= 8 * se
    r = claims.check_consistent(
        C, biased, truth, np.full(m, se), labels=[f"u{i}" for i in range(m)]
    )
    assert r.verdict == "failed" and ("u3" in r.details or "u7" in r.details)


def test_consistent_bound_is_bonferroni_at_the_agreement_level():
    from scipy import stats

    m = 10
    z_star = stats.norm.ppf(1 - (1 - claims.RULE.agree_level) / (2 * m))  # 99.9 % family-wise
    just_in = np.r_[z_star * 0.999, np.zeros(m - 1)]
    just_out = np.r_[z_star * 1.001, np.zeros(m - 1)]
    assert claims.check_consistent(C, just_in, 0.0, np.ones(m)).verdict == "held"
    assert claims.check_consistent(C, just_out, 0.0, np.ones(m)).verdict == "failed"
    # a stated slack widens every unit's tolerance by that much
    assert claims.check_consistent(C, just_out, 0.0, np.ones(m), slack=0.01).verdict == "held"


def test_consistent_false_failure_rate_is_the_stated_level():
    rng = np.random.default_rng(8)
    fails = sum(
        claims.check_consistent(C, rng.normal(0, 1, 12), 0.0, np.ones(12)).verdict == "failed"
        for _ in range(4000)
    )
    assert fails / 4000 <= 0.004  # 0.1 % nominal (Bonferroni is conservative)


def test_consistent_needs_units_and_fails_on_nan():
    assert claims.check_consistent(C, [], [], [], minimum=1).verdict == "needs-scale"
    assert claims.check_consistent(C, [1.0, math.nan], [1.0, 1.0], [0.1, 0.1]).verdict == "failed"
    assert claims.check_consistent(C, [1.0, 1.0], [1.0, 1.0], [0.1, 0.0]).verdict == "failed"
    with pytest.raises(ValueError, match="one entry per unit"):
        claims.check_consistent(C, [1.0, 2.0], [1.0, 2.0, 3.0], [0.1, 0.1])
    with pytest.raises(ValueError, match="slack"):
        claims.check_consistent(C, [1.0], [1.0], [0.1], slack=-1.0)


def test_check_all_is_an_intersection_union_test():
    strong = _seeds(1.0, 0.2, 8, seed=3)
    noise = _seeds(0.0, 0.2, 8, seed=4)
    reverse = _seeds(-1.0, 0.2, 8, seed=5)

    def part(t_c):
        return lambda level: claims.check_paired(C, *t_c, level=level)

    assert claims.check_all(C, [("a", part(strong)), ("b", part(strong))]).verdict == "held"
    r = claims.check_all(C, [("a", part(strong)), ("b", part(noise))])
    assert r.verdict == "inconclusive" and "b: inconclusive" in r.details
    r = claims.check_all(C, [("a", part(strong)), ("b", part(reverse))])
    assert r.verdict == "failed" and r.details.startswith("deciding part: b")
    one = lambda level: claims.check_paired(C, [1.0], [0.0], level=level)  # noqa: E731
    assert claims.check_all(C, [("a", part(strong)), ("b", one)]).verdict == "needs-scale"
    # failed needs the Bonferroni band: a part just failing at 95 % is not enough with 20 parts
    seen = []

    def spy(level):
        seen.append(level)
        return claims.check_paired(C, *strong, level=level)

    claims.check_all(C, [(str(i), spy) for i in range(20)])
    assert set(seen) == {claims.RULE.level, claims.bonferroni(20)}
    with pytest.raises(ValueError, match="parts"):
        claims.check_all(C, [])


def test_replicate_band_percentile_and_basic():
    reps = np.linspace(1.0, 3.0, 2001)  # quantiles 1.05 and 2.95 at 95 %
    p = claims.replicate_band(2.0, reps)
    assert p.lo == pytest.approx(1.05) and p.hi == pytest.approx(2.95) and p.n == 2001
    # a statistic biased upward under resampling: the basic band reflects about the estimate
    b = claims.replicate_band(1.0, reps, method="basic")
    assert b.lo == pytest.approx(2 * 1.0 - 2.95) and b.hi == pytest.approx(2 * 1.0 - 1.05)
    assert b.hi < p.lo  # shifted down by twice the bias (mean of replicates 2, estimate 1)
    assert not claims.replicate_band(1.0, [np.nan] * 10).finite
    with pytest.raises(ValueError, match="method"):
        claims.replicate_band(1.0, reps, method="bca")
