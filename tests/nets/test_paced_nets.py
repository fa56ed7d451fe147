"""Tests for the JAX PACED toys: `sdtheory.nets.paced` and `sdtheory.nets.paced_modes`."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from sdtheory.core import kl as np_kl  # noqa: E402
from sdtheory.core import log_softmax  # noqa: E402
from sdtheory.nets import paced as nets  # noqa: E402
from sdtheory.nets import paced_modes as modes  # noqa: E402
from sdtheory.theory import paced  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    key = jax.random.PRNGKey(0)
    kt, ks, kp = jax.random.split(key, 3)
    teacher = nets.init_mlp(kt, 6 + 2, 12, 5, scale=3.0)
    pop = nets.make_population(kp, teacher, 200, 6, 1.0, hidden_dim=2, hidden_max=1.0)
    student = nets.init_mlp(ks, 6, 8, 5)
    return teacher, pop, student


def test_jax_kl_matches_core_kl_including_zeros():
    rng = np.random.default_rng(0)
    lp = log_softmax(rng.standard_normal((7, 9)) * 3)
    lq = log_softmax(rng.standard_normal((7, 9)) * 3)
    lp[:, :2] = -np.inf  # p_i = 0 entries contribute 0
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    np.testing.assert_allclose(
        np.asarray(nets.kl(jnp.asarray(lp), jnp.asarray(lq))), np_kl(lp, lq), rtol=1e-12, atol=1e-14
    )
    # direction is pinned: KL(p||q) != KL(q||p) here
    assert not np.allclose(np_kl(lp[:, 2:], lq[:, 2:]), np_kl(lq[:, 2:], lp[:, 2:]))


def test_per_problem_gradient_matches_closed_form_and_batch(setup):
    _, pop, student = setup
    g = np.asarray(nets.per_problem_gradients(jax.random.PRNGKey(1), student, pop, n_ref=0))
    flat, unravel = jax.flatten_util.ravel_pytree(student)
    # gradient of KL(p_T || softmax(z)) w.r.t. the output bias is q - p_T (closed form)
    b2 = np.stack([np.asarray(unravel(jnp.asarray(row))["b2"]) for row in g[:20]])
    q = np.exp(np.asarray(nets.mlp_log_probs(student, pop.x[:20])))
    pt = np.exp(np.asarray(pop.teacher_log_probs[:20]))
    np.testing.assert_allclose(b2, q - pt, rtol=1e-10, atol=1e-12)
    # per-problem gradients sum to the gradient of the summed loss
    total = jax.grad(lambda p: nets.forward_kl_loss(p, pop.x, pop.teacher_log_probs).sum())(student)
    np.testing.assert_allclose(g.sum(0), np.asarray(ravel_pytree(total)), rtol=1e-10, atol=1e-10)


def test_reverse_gradient_matches_closed_form(setup):
    """d KL(q||p_T) / d z = q (log q - log p_T - KL) for logits z; checked on the output bias."""
    _, pop, student = setup
    g = np.asarray(nets.per_problem_gradients(None, student, pop, 0, direction="reverse"))
    _, unravel = jax.flatten_util.ravel_pytree(student)
    b2 = np.stack([np.asarray(unravel(jnp.asarray(row))["b2"]) for row in g[:20]])
    lq = np.asarray(nets.mlp_log_probs(student, pop.x[:20]))
    lpt = np.asarray(pop.teacher_log_probs[:20])
    q = np.exp(lq)
    expected = q * (lq - lpt - np_kl(lq, lpt)[:, None])
    np.testing.assert_allclose(b2, expected, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="n_ref"):
        nets.per_problem_gradients(None, student, pop, 1, direction="reverse")
    with pytest.raises(ValueError, match="direction"):
        nets.per_problem_gradients(None, student, pop, 0, direction="sideways")


def ravel_pytree(t):
    return jax.flatten_util.ravel_pytree(t)[0]


def test_sampled_reference_gradient_is_unbiased(setup):
    """Mean over n sampled-reference gradients ~ exact gradient; tolerance 5 SE, n = 300."""
    _, pop, student = setup
    sub = pop.subset(jnp.arange(3))
    exact = np.asarray(nets.per_problem_gradients(jax.random.PRNGKey(0), student, sub, 0))
    n = 300
    draws = np.stack(
        [
            np.asarray(nets.per_problem_gradients(jax.random.PRNGKey(i), student, sub, 1))
            for i in range(n)
        ]
    )
    mean, se = draws.mean(0), draws.std(0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(mean - exact) <= 5 * se + 1e-12)


def test_pass_rates_and_rollout_estimates(setup):
    _, pop, student = setup
    p = np.asarray(nets.pass_rates(student, pop))
    assert np.all((p > 0) & (p < 1))
    k = 2000
    ph = np.asarray(nets.rollout_pass_rates(jax.random.PRNGKey(3), student, pop, k))
    se = np.sqrt(p * (1 - p) / k)
    assert np.mean(np.abs(ph - p) / se) < 1.2  # E|z| = 0.80 for a standard normal
    assert np.all(np.abs(ph - p) < 5 * se + 1e-3)


@pytest.mark.paper("paced2026", "paced.snr-binned-estimator")
def test_measured_snr_curve_on_model_gradients():
    """Binned estimator on g = s(p) u + xi recovers (mean s)^2 / (var s + mean v) per bin."""
    rng = np.random.default_rng(0)
    n, d = 6000, 20
    p = rng.uniform(0, 1, n)
    s = 0.5 * p * (1 - p)
    g = s[:, None] * np.eye(d)[0] + rng.standard_normal((n, d)) / np.sqrt(d)
    c = nets.measure_snr_curve(g, p, bins=5, min_count=10, bootstrap=50)
    assert c.count.sum() == n and c.snr.size == 5
    edges = np.linspace(0, 1, 6)
    for i in range(5):
        m = (p >= edges[i]) & (p < edges[i + 1])
        theory = s[m].mean() ** 2 / (s[m].var(ddof=1) + 1.0)
        assert abs(c.snr[i] - theory) < 5 * c.snr_se[i]
    # the middle bins carry more SNR than the ends (the model's bell)
    assert c.snr[2] > c.snr[0] and c.snr[2] > c.snr[-1]


@pytest.mark.paper("paced2026", "paced.weighted-progress")
def test_weighted_distillation_zero_weights_freeze_and_uniform_learns(setup):
    _, pop, student = setup

    def ev(params):
        return {"kl": float(nets.forward_kl_loss(params, pop.x, pop.teacher_log_probs).mean())}

    frozen, hist0 = nets.weighted_distillation(
        jax.random.PRNGKey(0),
        student,
        pop,
        20,
        lambda ph: jnp.zeros_like(ph),
        n_ref=0,
        eval_every=20,
        evaluate=ev,
        refresh=5,
    )
    for a, b in zip(
        jax.tree_util.tree_leaves(frozen), jax.tree_util.tree_leaves(student), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    _, hist = nets.weighted_distillation(
        jax.random.PRNGKey(0),
        student,
        pop,
        100,
        None,
        lr=1e-2,
        n_ref=0,
        eval_every=100,
        evaluate=ev,
    )
    assert hist[-1]["kl"] < 0.8 * hist[0]["kl"]
    # Beta weights from rollouts run end to end and make progress too
    _, hist_b = nets.weighted_distillation(
        jax.random.PRNGKey(0),
        student,
        pop,
        100,
        lambda ph: jnp.asarray(paced.beta_kernel_weight(np.asarray(ph))),
        lr=1e-2,
        n_ref=0,
        eval_every=100,
        evaluate=ev,
    )
    assert hist_b[-1]["kl"] < hist_b[0]["kl"]


@pytest.mark.paper("paced2026", "paced.fkl-covers")
def test_forward_kl_on_grid_matches_moments():
    """FKL minimiser in the grid-Gaussian (exponential) family matches the teacher's moments."""
    lpt = modes.teacher_log_probs(101, (-0.5, 0.4), (0.6, 0.4), 0.1)
    traj = np.asarray(modes.train(np.array([0.3, np.log(0.3)]), lpt, 4000, 4000, 0.02))
    lq = np.asarray(modes.student_log_probs(jnp.asarray(traj[-1]), 101))
    x = np.linspace(-1, 1, 101)
    pt, q = np.exp(np.asarray(lpt)), np.exp(lq)
    assert q @ x == pytest.approx(pt @ x, abs=1e-4)
    assert q @ x**2 == pytest.approx(pt @ x**2, abs=1e-4)


@pytest.mark.paper("paced2026", "paced.rkl-seeks")
def test_reverse_kl_seeks_the_nearest_mode_and_metrics():
    centres, weights = (-0.5, 0.5), (0.5, 0.5)
    lpt = modes.teacher_log_probs(101, centres, weights, 0.08)
    starts = np.array([[-0.4, np.log(0.1)], [0.45, np.log(0.1)]])
    traj = np.asarray(modes.train(starts, lpt, 2000, 0, 0.02))
    for i, c in enumerate((-0.5, 0.5)):
        m = modes.mode_metrics(traj[i, -1], lpt, centres, weights)
        assert m["mu"] == pytest.approx(c, abs=0.02)
        assert m["coverage"] == pytest.approx(0.5)
        assert m["precision"] > 0.45
        assert m["forward_kl"] > m["reverse_kl"]
