"""Finite-sample generations: exact moments by Markov-chain enumeration, Monte Carlo, collapse.

Claims: meta.finite-sample-stationary (derived closed form), meta.finite-sample-collapse.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import multinomial

from sdtheory.theory import meta


def _states(k: int, n: int) -> np.ndarray:
    return np.array([c for c in itertools.product(range(n + 1), repeat=k) if sum(c) == n])


def _exact_moments(p0, n_samples, lam, generations):
    """E chi2(q_n, p0) and E[1 - sum q_n^2] by enumerating the count chain (arithmetic)."""
    states = _states(len(p0), n_samples)
    q = states / n_samples
    trans = np.array([multinomial.pmf(states, n_samples, lam * p0 + (1 - lam) * qs) for qs in q])
    dist = multinomial.pmf(states, n_samples, p0)  # generation 1 (q_0 = p0 exactly)
    chi2 = ((q - p0) ** 2 / p0).sum(axis=1)
    het = 1 - (q**2).sum(axis=1)
    out_c, out_h = [0.0], [1 - (p0**2).sum()]
    for _ in range(generations):
        out_c.append(dist @ chi2)
        out_h.append(dist @ het)
        dist = dist @ trans
    return np.array(out_c), np.array(out_h)


@pytest.mark.claim("meta.finite-sample-stationary")
@pytest.mark.paper("flouro2026", "meta.finite-sample-stationary")
@pytest.mark.parametrize("k, n_samples", [(2, 5), (3, 4)])
@pytest.mark.parametrize("lam", [0.0, 0.2, 0.7, 1.0])
def test_chi2_and_heterozygosity_closed_forms_match_exact_enumeration(k, n_samples, lam):
    p0 = np.array([0.5, 0.3, 0.2])[:k] if k == 3 else np.array([0.7, 0.3])
    c, h = _exact_moments(p0, n_samples, lam, 12)
    gens = np.arange(13)
    np.testing.assert_allclose(
        meta.finite_sample_chi2(k, n_samples, lam, gens), c, rtol=1e-11, atol=1e-14
    )
    np.testing.assert_allclose(
        meta.finite_sample_heterozygosity(np.log(p0), n_samples, lam, gens),
        h,
        rtol=1e-11,
        atol=1e-14,
    )
    sq = 1 - (p0**2).sum() - h  # E||q - p0||^2 = H0 - E[1 - sum q^2] since E q = p0
    np.testing.assert_allclose(
        meta.finite_sample_sq_error(np.log(p0), n_samples, lam, gens), sq, rtol=1e-10, atol=1e-14
    )


def test_stationary_level_formula():
    # provenance: limit n -> inf of (k-1)(1-a^n)/(N(1-a)), a = (1-lam)^2 (1-1/N)
    k, n, lam = 50, 200, 0.1
    want = (k - 1) / (n * lam * (2 - lam) + (1 - lam) ** 2)
    assert meta.finite_sample_chi2(k, n, lam, 10_000) == pytest.approx(want, rel=1e-12)
    # unanchored: grows to k - 1, the chi2 of a point mass drawn from p0
    assert meta.finite_sample_chi2(k, n, 0.0, 100_000) == pytest.approx(k - 1, rel=1e-12)


@pytest.mark.claim("meta.finite-sample-stationary")
def test_monte_carlo_matches_closed_form():
    rng = np.random.default_rng(11)
    k, n_samples, lam, gens, reps = 20, 50, 0.2, 12, 400
    lp0 = np.log(rng.dirichlet(np.ones(k)))
    counts = meta.finite_sample_generations(lp0, lam, n_samples, gens, rng, replicates=reps)
    q = counts / n_samples
    p0 = np.exp(lp0)
    sq = ((q - p0) ** 2).sum(axis=-1)  # (reps, gens + 1); bounded, so its SE is reliable
    mean, se = sq.mean(0), sq.std(0, ddof=1) / np.sqrt(reps)
    theory = meta.finite_sample_sq_error(lp0, n_samples, lam, np.arange(gens + 1))
    # n = 400 independent chains per generation; 5 SE per point (13 correlated points)
    assert np.all(np.abs(mean[1:] - theory[1:]) <= 5 * se[1:])
    # chi2 weights rare outcomes by 1/p0 (heavy tails): only a loose 25% check here; its exact
    # value is pinned by the enumeration test above
    chi2 = ((q - p0) ** 2 / p0).sum(axis=-1)
    theory_c = meta.finite_sample_chi2(k, n_samples, lam, np.arange(gens + 1))
    assert np.all(np.abs(chi2.mean(0)[1:] / theory_c[1:] - 1) < 0.25)
    assert chi2[:, 0].max() < 1e-25  # generation 0 is p0 itself


@pytest.mark.claim("meta.finite-sample-collapse")
@pytest.mark.paper("flouro2026", "meta.finite-sample-collapse")
@pytest.mark.paper("flouro2026", "meta.geometric-no-support-recovery")
@pytest.mark.claim("meta.geometric-no-support-recovery")
def test_support_is_absorbing_without_arithmetic_anchoring():
    rng = np.random.default_rng(12)
    k, n_samples, gens, reps = 30, 40, 60, 20
    lp0 = np.log(rng.dirichlet(np.ones(k)))
    p0 = np.exp(lp0)
    # arithmetic anchoring puts >= lam p0_i on outcome i, so each generation keeps outcome i with
    # probability >= 1 - (1 - lam p0_i)^N: a lower bound on the expected support (derived)
    floor = float(np.sum(1 - (1 - 0.3 * p0) ** n_samples))
    for kind, lam in (("arithmetic", 0.0), ("geometric", 0.3)):
        c = meta.finite_sample_generations(
            lp0, lam, n_samples, gens, rng, kind=kind, replicates=reps
        )
        alive = c > 0
        # once an outcome hits count 0 it never returns
        assert not (~alive[:, :-1] & alive[:, 1:]).any()
        support = alive.sum(-1)
        assert np.all(np.diff(support, axis=1) <= 0)
        assert support[:, -1].mean() < floor
    # with arithmetic anchoring outcomes come back and the support stays above the floor
    c = meta.finite_sample_generations(lp0, 0.3, n_samples, gens, rng, replicates=reps)
    alive = c > 0
    assert (~alive[:, :-1] & alive[:, 1:]).any()
    late = alive[:, gens // 2 :].sum(-1).mean(axis=1)  # per-chain time average, n = 20 chains
    assert late.mean() >= floor - 4 * late.std(ddof=1) / np.sqrt(reps)


def test_generations_validation_and_shapes():
    lp0 = np.log(np.full(4, 0.25))
    rng = np.random.default_rng(0)
    c = meta.finite_sample_generations(lp0, 0.5, 10, 3, rng, replicates=2)
    assert c.shape == (2, 4, 4)
    np.testing.assert_allclose(c.sum(-1), 10.0)
    for kw, match in (
        ({"n_samples": 0}, "n_samples"),
        ({"replicates": 0}, "replicates"),
        ({"lam": 2.0}, "lam"),
        ({"kind": "x"}, "kind"),
    ):
        args = {"log_p0": lp0, "lam": 0.5, "n_samples": 10, "generations": 3, "rng": rng} | kw
        with pytest.raises(ValueError, match=match):
            meta.finite_sample_generations(**args)
    with pytest.raises(ValueError, match="n_samples"):
        meta.finite_sample_chi2(5, 0, 0.5, 3)
    with pytest.raises(ValueError, match="k must be"):
        meta.finite_sample_chi2(1, 10, 0.5, 3)
    with pytest.raises(ValueError, match="generations"):
        meta.finite_sample_heterozygosity(lp0, 10, 0.5, [1.5])
