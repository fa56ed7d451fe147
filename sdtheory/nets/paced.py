r"""A measured cross-problem gradient SNR, and pass-rate-weighted distillation, in JAX.

The setting (our construction, to test the PACED abstract's claims [paced2026] on a real
gradient rather than on a model of one):

* **Problems.** Inputs $x_i \sim \mathcal N(0, I_d)$; a fixed teacher network (one hidden layer of
  width `teacher_width`) gives $p_T(\cdot\,|\,x_i)$ over `classes` answers; the correct answer
  $y_i$ is the teacher's argmax (the teacher "solves" every problem).
* **Student.** A narrower one-hidden-layer tanh network $q_\theta(\cdot\,|\,x)$, briefly
  distilled from the teacher, so its pass rate $p_i = q_\theta(y_i\,|\,x_i)$ (the chance a sampled
  rollout is correct) spreads over $(0, 1)$ across problems.
* **Per-problem gradient.**
  $g_i = \nabla_\theta\,\mathrm{KL}(\tilde p_{T,i}\,\|\,q_\theta(\cdot\,|\,x_i))$,
  the forward-KL distillation loss, where $\tilde p_{T,i}$ is the teacher distribution
  (`n_ref=0`) or the empirical distribution of `n_ref` sampled teacher reference answers
  (one-hot for `n_ref=1`, i.e. cross-entropy on a reference response, as in LLM distillation).
* **SNR per bin.** Problems are binned by $p_i$ and, in each bin, the cross-problem SNR
  $\|\bar g\|^2/\operatorname{tr}\widehat{\mathrm{Cov}}\,g$ is computed with the finite-$n$ bias
  of the numerator removed (`sdtheory.theory.paced.gradient_snr`).

JAX float64 needs `jax.config.update("jax_enable_x64", True)` in the caller (sims and tests do
it); library code never flips it. The KL here is a JAX mirror of `sdtheory.core.kl` (same
argument order and $0\log 0 = 0$ convention; the tests compare the two).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..theory import paced as theory

__all__ = [
    "Population",
    "SNRCurve",
    "forward_kl_loss",
    "init_mlp",
    "kl",
    "make_population",
    "measure_snr_curve",
    "mlp_log_probs",
    "pass_rates",
    "per_problem_gradients",
    "rollout_pass_rates",
    "train_student",
    "weighted_distillation",
]

Params = dict[str, jax.Array]


def kl(log_p, log_q):
    r"""$\mathrm{KL}(p\,\|\,q)$ on the last axis, in JAX; $p_i = 0$ terms contribute 0.

    Mirrors `sdtheory.core.kl` (reference $p$ first). Gradients flow through both arguments.
    """
    p = jnp.exp(log_p)
    safe_lp = jnp.where(p > 0, log_p, 0.0)
    return jnp.sum(jnp.where(p > 0, p * (safe_lp - log_q), 0.0), axis=-1)


# ----------------------------------------------------------------------------- networks


def init_mlp(key, dim: int, width: int, classes: int, scale: float = 1.0) -> Params:
    """A one-hidden-layer tanh network with LeCun-normal weights (times `scale` on the output)."""
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (dim, width)) / np.sqrt(dim),
        "b1": jnp.zeros(width),
        "w2": scale * jax.random.normal(k2, (width, classes)) / np.sqrt(width),
        "b2": jnp.zeros(classes),
    }


def mlp_log_probs(params: Params, x, temperature: float = 1.0):
    """Log-softmax of the network's logits divided by `temperature`."""
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return jax.nn.log_softmax((h @ params["w2"] + params["b2"]) / temperature, axis=-1)


@dataclasses.dataclass(frozen=True)
class Population:
    """Problems with inputs `x` (n, d), teacher log-probabilities (n, C) and answers (n,)."""

    x: jax.Array
    teacher_log_probs: jax.Array
    answer: jax.Array

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, idx) -> Population:
        return Population(self.x[idx], self.teacher_log_probs[idx], self.answer[idx])


def make_population(
    key,
    teacher: Params,
    n: int,
    dim: int,
    temperature: float = 1.0,
    hidden_dim: int = 0,
    hidden_max: float = 0.0,
) -> Population:
    r"""`n` problems labelled by the teacher at `temperature`.

    The student sees $x_i \sim \mathcal N(0, I_d)$. The teacher sees $[x_i, c_i z_i]$ with
    $z_i \sim \mathcal N(0, I_{h})$ (`hidden_dim` $= h$) hidden from the student and
    $c_i \sim \mathcal U(0, $ `hidden_max`$)$: problems with large $c_i$ need knowledge the student
    cannot have (out of reach), problems with small $c_i$ are learnable. With `hidden_max=0`
    every problem is learnable in principle. The teacher's first layer must have
    `dim + hidden_dim` inputs.
    """
    kx, kz, kc = jax.random.split(key, 3)
    x = jax.random.normal(kx, (n, dim))
    if hidden_dim:
        z = jax.random.normal(kz, (n, hidden_dim))
        c = jax.random.uniform(kc, (n, 1), maxval=hidden_max)
        xt = jnp.concatenate([x, c * z], axis=-1)
    else:
        xt = x
    lp = mlp_log_probs(teacher, xt, temperature)
    return Population(x, lp, jnp.argmax(lp, axis=-1))


def pass_rates(params: Params, pop: Population):
    r"""Exact pass rate $p_i = q_\theta(y_i\,|\,x_i)$: the chance one sampled answer is correct."""
    lq = mlp_log_probs(params, pop.x)
    return jnp.exp(jnp.take_along_axis(lq, pop.answer[:, None], axis=-1)[:, 0])


def rollout_pass_rates(key, params: Params, pop: Population, k: int):
    r"""$\hat p_i$ from $K$ sampled student answers per problem (student rollouts only)."""
    lq = mlp_log_probs(params, pop.x)
    draws = jax.random.categorical(key, lq, axis=-1, shape=(k, len(pop)))
    return jnp.mean(draws == pop.answer[None, :], axis=0)


# ----------------------------------------------------------------------------- losses


def _targets(key, pop: Population, n_ref: int):
    """Distillation targets: the teacher (n_ref = 0) or the empirical law of n_ref samples."""
    if n_ref == 0:
        return pop.teacher_log_probs
    draws = jax.random.categorical(key, pop.teacher_log_probs, axis=-1, shape=(n_ref, len(pop)))
    c = pop.teacher_log_probs.shape[-1]
    counts = jax.nn.one_hot(draws, c).sum(axis=0) / n_ref
    return jnp.where(counts > 0, jnp.log(jnp.where(counts > 0, counts, 1.0)), -jnp.inf)


def forward_kl_loss(params: Params, x, target_log_probs):
    r"""Per-problem forward KL $\mathrm{KL}(p_T\,\|\,q_\theta)$ (shape (n,))."""
    return kl(target_log_probs, mlp_log_probs(params, x))


def per_problem_gradients(
    key, params: Params, pop: Population, n_ref: int = 1, direction: str = "forward"
):
    r"""(n, P) matrix of flattened per-problem gradients of a KL distillation loss.

    `direction="forward"`: $\nabla_\theta\mathrm{KL}(\tilde p_T\|q_\theta)$ with $\tilde p_T$ the
    teacher (`n_ref=0`) or `n_ref` sampled teacher answers. `direction="reverse"`: the exact
    on-policy reverse KL $\nabla_\theta\mathrm{KL}(q_\theta\|p_T)$ (needs `n_ref=0`).
    """
    if direction == "forward":
        return _gradients(params, pop.x, _targets(key, pop, n_ref))
    if direction == "reverse":
        if n_ref != 0:
            raise ValueError(f"n_ref must be 0 for direction='reverse', got {n_ref!r}")
        return _reverse_gradients(params, pop.x, pop.teacher_log_probs)
    raise ValueError(f"direction must be 'forward' or 'reverse', got {direction!r}")


@jax.jit
def _reverse_gradients(params, x, teacher_log_probs):
    flat, unravel = ravel_pytree(params)

    def one(xi, ti):
        return jax.grad(lambda f: kl(mlp_log_probs(unravel(f), xi[None]), ti[None])[0])(flat)

    return jax.vmap(one)(x, teacher_log_probs)


@jax.jit
def _gradients(params, x, targets):
    flat, unravel = ravel_pytree(params)

    def one(xi, ti):
        return jax.grad(lambda f: forward_kl_loss(unravel(f), xi[None], ti[None])[0])(flat)

    return jax.vmap(one)(x, targets)


# ----------------------------------------------------------------------------- training


def _adam(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    def init(params):
        z = jax.tree_util.tree_map(jnp.zeros_like, params)
        return (z, z, jnp.zeros((), dtype=jnp.int32))

    def update(grads, state, params):
        m, v, t = state
        t = t + 1
        m = jax.tree_util.tree_map(lambda a, g: b1 * a + (1 - b1) * g, m, grads)
        v = jax.tree_util.tree_map(lambda a, g: b2 * a + (1 - b2) * g * g, v, grads)
        c1, c2 = 1 - b1**t, 1 - b2**t
        params = jax.tree_util.tree_map(
            lambda p, a, b: p - lr * (a / c1) / (jnp.sqrt(b / c2) + eps), params, m, v
        )
        return params, (m, v, t)

    return init, update


def train_student(
    key, student: Params, pop: Population, steps: int, batch: int = 64, lr: float = 1e-2
) -> Params:
    """Plain (uniform) forward-KL distillation on the full teacher distribution with Adam."""
    init, update = _adam(lr)

    @jax.jit
    def step(carry, k):
        params, state = carry
        idx = jax.random.randint(k, (batch,), 0, len(pop))
        g = jax.grad(lambda p: forward_kl_loss(p, pop.x[idx], pop.teacher_log_probs[idx]).mean())(
            params
        )
        params, state = update(g, state, params)
        return (params, state), None

    (params, _), _ = jax.lax.scan(step, (student, init(student)), jax.random.split(key, steps))
    return params


def weighted_distillation(
    key,
    student: Params,
    pool: Population,
    steps: int,
    weight_fn: Callable[[jax.Array], jax.Array] | None,
    *,
    batch: int = 64,
    lr: float = 3e-3,
    rollouts: int = 8,
    refresh: int = 25,
    n_ref: int = 1,
    eval_every: int = 25,
    evaluate: Callable[[Params], dict[str, float]] | None = None,
):
    r"""Distillation with per-problem weights $w(\hat p_i)$ at equal compute to uniform.

    Every step draws `batch` problems uniformly from `pool` and minimises
    $\sum_i w_i\ell_i / \sum_i w_i$ (a batch whose weights are all 0 makes no update), where
    $\ell_i$ is the forward KL to `n_ref` sampled teacher answers (0: the teacher distribution).
    $\hat p_i$ comes from `rollouts` student samples per problem, re-estimated every `refresh`
    steps. `weight_fn=None` is uniform weighting. Same steps, batch and learning rate for every
    weighting: equal gradient compute (the rollouts are extra inference).

    Returns:
      `(params, history)`; `history` is a list of `{"step": t, **evaluate(params)}`.
    """
    init, _ = _adam(lr)
    state = init(student)
    params = student
    step = functools.partial(_weighted_step, batch=batch, n_ref=n_ref, lr=lr)

    history = []
    weights = jnp.ones(len(pool))
    keys = jax.random.split(key, steps + 1)
    for t in range(steps + 1):
        if evaluate is not None and t % eval_every == 0:
            history.append({"step": t, **evaluate(params)})
        if t == steps:
            break
        if weight_fn is not None and t % refresh == 0:
            ph = rollout_pass_rates(jax.random.fold_in(keys[t], 1), params, pool, rollouts)
            weights = weight_fn(ph)
        params, state = step(
            params, state, keys[t], weights, pool.x, pool.teacher_log_probs, pool.answer
        )
    return params, history


def _weighted_loss(p, x, t, w):
    l = forward_kl_loss(p, x, t)
    return jnp.sum(w * l) / jnp.maximum(jnp.sum(w), 1e-300)


@functools.partial(jax.jit, static_argnames=("batch", "n_ref", "lr"))
def _weighted_step(params, state, k, weights, x, tlp, answer, *, batch, n_ref, lr):
    _, update = _adam(lr)
    k1, k2 = jax.random.split(k)
    idx = jax.random.randint(k1, (batch,), 0, x.shape[0])
    sub = Population(x[idx], tlp[idx], answer[idx])
    t = _targets(k2, sub, n_ref)
    w = weights[idx]
    g = jax.grad(_weighted_loss)(params, sub.x, t, w)
    new, new_state = update(g, state, params)
    keep = jnp.sum(w) > 0
    params = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), new, params)
    state = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), new_state, state)
    return params, state


# ----------------------------------------------------------------------------- SNR curve


@dataclasses.dataclass(frozen=True)
class SNRCurve:
    """Per-bin cross-problem gradient SNR; arrays have one entry per bin kept."""

    lo: np.ndarray
    hi: np.ndarray
    p_mean: np.ndarray
    count: np.ndarray
    snr: np.ndarray
    snr_se: np.ndarray
    mean_norm2: np.ndarray
    trace_cov: np.ndarray

    def as_table(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in dataclasses.asdict(self).items()}


def measure_snr_curve(
    grads, p, bins: int = 10, min_count: int = 30, bootstrap: int = 100, seed: int = 0
) -> SNRCurve:
    r"""Bin problems by pass rate; per bin, $\|\bar g\|^2/\operatorname{tr}\widehat{\mathrm{Cov}}$.

    Bins are equal-width on $[0, 1]$; bins with fewer than `min_count` problems are dropped. The
    numerator is debiased (see `sdtheory.theory.paced.gradient_snr`); `snr_se` is the bootstrap
    standard error over problems in the bin (`bootstrap` resamples).
    """
    g = np.asarray(grads, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(bins):
        idx = np.flatnonzero(which == b)
        if idx.size < min_count:
            continue
        gb = g[idx]
        mean = gb.mean(0)
        tr = float(np.sum((gb - mean) ** 2) / (idx.size - 1))
        val = theory.gradient_snr(gb)
        boots = [
            theory.gradient_snr(gb[rng.integers(0, idx.size, idx.size)]) for _ in range(bootstrap)
        ]
        rows.append(
            (
                edges[b],
                edges[b + 1],
                p[idx].mean(),
                idx.size,
                val,
                float(np.std(boots, ddof=1)),
                float(mean @ mean) - tr / idx.size,
                tr,
            )
        )
    cols = list(zip(*rows, strict=True)) if rows else [()] * 8
    return SNRCurve(*(np.asarray(c, dtype=np.float64) for c in cols))
