"""Tests for `sdtheory.theory.taid`: interpolation, schedule invariants, regression proxy."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdtheory.core import entropy, kl, log_softmax
from sdtheory.testing.strategies import logits
from sdtheory.theory import taid
from sdtheory.theory.taid import TAIDSchedule

# ----------------------------------------------------------------------------- interpolation


@given(logits(k=7, batch=(3,)), logits(k=7, batch=(3,)), st.floats(0.0, 1.0))
def test_interpolation_is_logit_space_mix(s, p, t):
    lp = taid.interpolated_log_probs(s, p, t)
    np.testing.assert_allclose(lp, log_softmax((1 - t) * s + t * p), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(np.exp(lp).sum(-1), 1.0, rtol=0, atol=1e-12)


def test_interpolation_ends_and_masked_vocabulary():
    s = np.array([1.0, -np.inf, 0.5, 2.0])
    p = np.array([0.0, 3.0, -np.inf, 1.0])
    np.testing.assert_array_equal(taid.interpolated_log_probs(s, p, 0.0), log_softmax(s))
    np.testing.assert_array_equal(taid.interpolated_log_probs(s, p, 1.0), log_softmax(p))
    mid = taid.interpolated_log_probs(s, p, 0.5)
    assert np.isneginf(mid[1]) and np.isneginf(mid[2]) and np.isfinite(mid[[0, 3]]).all()


@given(logits(k=9, batch=(2,)), logits(k=9, batch=(2,)))
def test_objective_ends(s, p):
    """t = 1 gives the forward KL from the teacher; t = 0 gives 0."""
    np.testing.assert_allclose(
        taid.interpolated_kl(s, p, 1.0), kl(log_softmax(p), log_softmax(s)), rtol=1e-12
    )
    np.testing.assert_array_equal(taid.interpolated_kl(s, p, 0.0), 0.0)


def test_gradient_is_cross_entropy_gradient_by_finite_differences():
    rng = np.random.default_rng(3)
    s, p, t = rng.normal(size=6) * 2, rng.normal(size=6) * 2, 0.37
    log_pt = taid.interpolated_log_probs(s, p, t)  # held fixed: the detached target
    g = taid.interpolated_kl_gradient(s, p, t)
    h = 1e-6
    for obj in (
        lambda z: kl(log_pt, log_softmax(z)),
        lambda z: -np.sum(np.exp(log_pt) * log_softmax(z)),
    ):
        fd = np.array([(obj(s + h * e) - obj(s - h * e)) / (2 * h) for e in np.eye(6)])
        np.testing.assert_allclose(g, fd, rtol=0, atol=1e-8)  # central FD error O(h^2)
    # KL = cross-entropy - H(p_t): their difference does not depend on the student
    ce = -np.sum(np.exp(log_pt) * log_softmax(s))
    assert math.isclose(
        ce - float(kl(log_pt, log_softmax(s))), float(entropy(log_pt)), rel_tol=1e-12
    )


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan")])
def test_interpolation_rejects_bad_t(bad):
    with pytest.raises(ValueError, match="t must"):
        taid.interpolated_log_probs([0.0, 1.0], [1.0, 0.0], bad)


def test_interpolation_rejects_bad_logits():
    with pytest.raises(ValueError, match="teacher_logits"):
        taid.interpolated_log_probs([0.0, 1.0], [np.inf, 0.0], 0.5)
    with pytest.raises(ValueError, match="student_logits"):
        taid.interpolated_log_probs([0.0, np.nan], [1.0, 0.0], 0.5)
    with pytest.raises(ValueError, match="do not broadcast"):
        taid.interpolated_log_probs(np.zeros(3), np.zeros(4), 0.5)


# ----------------------------------------------------------------------------- schedule

loss_seqs = st.lists(st.floats(1e-3, 1e3, allow_nan=False), min_size=2, max_size=60)
configs = st.fixed_dictionaries(
    {
        "t_start": st.floats(0.0, 0.99),
        "alpha": st.floats(0.0, 1.0),
        "beta": st.floats(0.0, 1.0),
        "adaptive": st.booleans(),
    }
).flatmap(
    lambda c: st.fixed_dictionaries(
        {**{k: st.just(v) for k, v in c.items()}, "t_end": st.floats(max(c["t_start"], 1e-3), 1.0)}
    )
)


@given(configs, loss_seqs, st.integers(1, 5))
def test_schedule_monotone_floor_cap(cfg, losses, stretch):
    total = len(losses) * stretch
    s = TAIDSchedule(**cfg)
    ts = [s.t]
    for step, j in enumerate(losses):
        t = s.update(j, step, total)
        if step == 0:
            assert t == cfg["t_start"] and s.momentum == 0.0 and s.delta_t is None
        else:
            floor = taid.linear_t(step, total, cfg["t_start"], cfg["t_end"])
            if cfg["adaptive"]:
                assert floor - 1e-15 <= t <= cfg["t_end"]
                assert t >= ts[-1]
            else:
                assert t == floor  # non-adaptive returns the floor exactly
        ts.append(t)
    assert all(b >= a for a, b in zip(ts, ts[1:], strict=False))


def test_first_call_only_records_the_loss():
    s = TAIDSchedule(alpha=1.0, beta=0.0)
    assert s.update(5.0, 3, 10) == 0.4 and s.prev_loss == 5.0 and s.momentum == 0.0
    # second call: momentum = (1 - beta) * rel = (5 - 4) / 5 (beta = 0)
    s.update(4.0, 4, 10)
    assert math.isclose(s.momentum, 0.2, rel_tol=1e-14)
    sig = 1 / (1 + math.exp(-0.2))
    assert math.isclose(s.delta_t, sig * 0.6, rel_tol=1e-14)
    assert math.isclose(s.t, 0.4 + sig * 0.6, rel_tol=1e-14)  # above the floor 0.64


def test_cap_at_t_end():
    s = TAIDSchedule(t_start=0.5, t_end=0.8, alpha=1.0, beta=0.0)
    for step in range(20):
        s.update(10.0 / (step + 1), step, 10_000)
    assert s.t == 0.8


def test_non_adaptive_is_linear():
    s = TAIDSchedule(t_start=0.2, t_end=0.9, adaptive=False, alpha=1.0)
    got = [s.update(1.0 / (k + 1), k, 40) for k in range(40)]
    want = [0.2] + [0.2 + 0.7 * (k / 40) for k in range(1, 40)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)


def test_save_restore_continues_identically():
    rng = np.random.default_rng(0)
    losses = np.exp(rng.normal(0, 0.5, 60))
    a = TAIDSchedule(alpha=0.05, beta=0.9)
    for k in range(30):
        a.update(losses[k], k, 1000)
    state = json.loads(json.dumps(a.state_dict()))  # survives a JSON round trip
    b = TAIDSchedule(alpha=0.05, beta=0.9)
    b.load_state_dict(state)
    for k in range(30, 60):
        assert a.update(losses[k], k, 1000) == b.update(losses[k], k, 1000)
        assert a.momentum == b.momentum and a.delta_t == b.delta_t
    fresh = TAIDSchedule()
    fresh.load_state_dict(TAIDSchedule().state_dict())  # unused schedule: first call pending
    assert fresh.prev_loss is None


def test_load_rejects_other_config_and_missing_keys():
    st_ = TAIDSchedule(alpha=0.05).state_dict()
    with pytest.raises(ValueError, match="alpha"):
        TAIDSchedule(alpha=0.1).load_state_dict(st_)
    del st_["momentum"]
    with pytest.raises(ValueError, match="momentum"):
        TAIDSchedule(alpha=0.05).load_state_dict(st_)


@pytest.mark.parametrize(
    "kw, name",
    [
        (dict(t_start=1.0), "t_start"),
        (dict(t_start=-0.1), "t_start"),
        (dict(t_end=0.0), "t_end"),
        (dict(t_end=1.5), "t_end"),
        (dict(t_start=0.6, t_end=0.5), "t_end"),
        (dict(alpha=1.5), "alpha"),
        (dict(alpha=-1e-3), "alpha"),
        (dict(beta=1.2), "beta"),
    ],
)
def test_schedule_rejects_bad_config(kw, name):
    with pytest.raises(ValueError, match=name):
        TAIDSchedule(**kw)


@pytest.mark.parametrize(
    "args, name",
    [
        ((float("nan"), 0, 10), "loss"),
        ((float("inf"), 0, 10), "loss"),
        ((1.0, -1, 10), "step"),
        ((1.0, 11, 10), "step"),
        ((1.0, 0.5, 10), "step"),
        ((1.0, 0, 0), "total_steps"),
    ],
)
def test_update_rejects_bad_input(args, name):
    with pytest.raises(ValueError, match=name):
        TAIDSchedule().update(*args)


# ----------------------------------------------------------------------------- regression proxy


def _instance(r0, kappa, n=16, seed=0):
    rng = np.random.default_rng(seed)
    d = np.geomspace(1.0, kappa, n)
    z = rng.standard_normal(n)
    return d, z / np.linalg.norm(z) * r0  # K * eps = 1


@pytest.mark.parametrize("seed", [3, 4, 7, 12, 14, 19, 21, 25])
def test_proxy_rounds_at_the_inputs_that_crashed(seed):
    # sims/taid_proxy.py crashed at these seeds (issue 13): in its kappa = 1 cells pure
    # self-distillation has c_t = d/(r_t - 1), so r_t = r0 - t exactly and lands on r = 1, which
    # rounding turns into 1 + a few ulps. Replays the sim's draws (kappa = 1 first, K = 16).
    rng = np.random.default_rng(seed)
    d = np.ones(16)
    for r0 in (1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0):
        u = rng.standard_normal(16)
        z0 = u / np.linalg.norm(u) * r0
        sd = taid.self_distillation_rounds(d, z0, 1.0, rounds=math.ceil(r0**2) + 1)
        fitted = math.ceil(r0) - 1  # the rounds with r_t = r0 - t > 1
        assert sd.fitted_rounds == fitted
        np.testing.assert_allclose(sd.norms[: fitted + 1], r0 - np.arange(fitted + 1), rtol=1e-13)
        assert np.all(sd.norms[fitted + 1 :] == 0.0) and np.all(np.isinf(sd.c[fitted:]))
        for T in (5, 10, 20, 50, 100):
            tp = taid.taid_proxy_rounds(d, z0, 1.0, T)
            assert np.all(tp.norms >= np.arange(T + 1) / T * r0 * (1 - 1e-12))  # the floor


@pytest.mark.claim("taid.sd-rounds-bounds")
@given(st.floats(1.2, 30.0), st.floats(1.0, 100.0), st.integers(0, 10**6))
def test_self_distillation_rounds_between_r0_minus_1_and_r0_squared(r0, kappa, seed):
    d, z = _instance(r0, kappa, seed=seed)
    sd = taid.self_distillation_rounds(d, z, 1.0, rounds=int(r0**2) + 2)
    n = sd.fitted_rounds
    assert r0 - 1 <= n <= r0**2
    assert n >= (r0 - 1) / kappa  # the Mobahi-style lower bound
    c = sd.c[:n]
    assert np.all(np.diff(c) > 0)  # regularisation amplification
    assert np.all(np.diff(sd.norms[: n + 1]) < 0)


@pytest.mark.claim("taid.proxy-floor")
@given(st.floats(0.5, 30.0), st.floats(1.0, 100.0), st.integers(1, 60), st.integers(0, 10**6))
def test_taid_proxy_floor(r0, kappa, T, seed):
    d, z = _instance(r0, kappa, seed=seed)
    pr = taid.taid_proxy_rounds(d, z, 1.0, T)
    t = np.arange(T + 1)
    assert np.all(pr.norms >= t / T * r0 * (1 - 1e-12))
    assert math.isclose(pr.norms[-1], r0, rel_tol=1e-12)  # round T returns the teacher signal
    # the late window: no collapse at round t + 1 once (t / T) r0 > 1
    late = np.flatnonzero(t[:-1] / T * r0 > 1 + 1e-9) + 1
    assert pr.fitted[late - 1].all()


@pytest.mark.claim("taid.proxy-noncollapse")
@given(st.floats(1.0, 100.0), st.integers(1, 80), st.floats(0.0, 3.0), st.integers(0, 10**6))
def test_noncollapse_condition_prevents_collapse(kappa, T, margin, seed):
    r0 = taid.noncollapse_r0(kappa, T) * (1 + 1e-12) + margin  # on or beyond the boundary
    assert taid.noncollapse_condition(r0, kappa, T)
    d, z = _instance(r0, kappa, seed=seed)
    assert taid.taid_proxy_rounds(d, z, 1.0, T).collapse_round is None


def test_noncollapse_r0_solves_the_quadratic():
    for kappa, T in ((4.0, 100), (1.0, 1), (30.0, 7)):
        r = taid.noncollapse_r0(kappa, T)
        assert math.isclose(r * (r - 1), T * (1 + kappa), rel_tol=1e-13)
