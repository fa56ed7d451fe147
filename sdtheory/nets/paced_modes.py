r"""Forward KL, reverse KL and forward-then-reverse on a multimodal teacher (JAX).

PACED [paced2026, abstract] distils with forward KL, self-distils with reverse KL, and reports a
two-stage schedule, forward KL first ("mode coverage") then reverse KL ("consolidation"), as
best. This toy isolates the mechanism: the teacher $p_T$ is a mixture of discretised Gaussians
on a grid of `grid` points in $[-1, 1]$; the student is one discretised Gaussian
$q_{\mu,\sigma}(x) \propto \exp(-(x-\mu)^2/2\sigma^2)$ (unimodal, too small to fit $p_T$).

* forward KL $\mathrm{KL}(p_T\|q)$ is mass-covering: $q$ widens over every mode;
* reverse KL $\mathrm{KL}(q\|p_T)$ is mode-seeking: $q$ sits on one mode, which one depends on
  where it starts;
* forward-then-reverse starts the reverse phase from the covering solution.

Metrics (`mode_metrics`): `coverage`, the teacher-mixture weight of the modes whose centre lies
within $\mu \pm 2\sigma$; `precision`, the student mass on the teacher's high-density set
$\{x : p_T(x) \ge 0.1\max p_T\}$; `mode_weight`, the mixture weight of the mode nearest to $\mu$
(the mode it consolidated on); and both KLs.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .paced import kl

__all__ = ["grid_points", "mode_metrics", "student_log_probs", "teacher_log_probs", "train"]


def grid_points(grid: int) -> jax.Array:
    return jnp.linspace(-1.0, 1.0, grid)


def teacher_log_probs(grid: int, centres, weights, width: float) -> jax.Array:
    """Log of the normalised mixture $\\sum_k \\pi_k\\,\\mathcal N(x; c_k, w^2)$ on the grid."""
    x = grid_points(grid)[:, None]
    c = jnp.asarray(centres)[None, :]
    pi = jnp.asarray(weights) / jnp.sum(jnp.asarray(weights))
    comp = -0.5 * ((x - c) / width) ** 2 + jnp.log(pi)[None, :]
    lp = jax.scipy.special.logsumexp(comp, axis=-1)
    return lp - jax.scipy.special.logsumexp(lp)


def student_log_probs(params, grid: int) -> jax.Array:
    """Discretised Gaussian with `params = (mu, log_sigma)`."""
    mu, log_sigma = params[0], params[1]
    z = -0.5 * ((grid_points(grid) - mu) / jnp.exp(log_sigma)) ** 2
    return jax.nn.log_softmax(z)


@functools.partial(jax.jit, static_argnames=("steps",))
def train(params0, log_pt, steps: int, switch, lr: float = 0.05):
    r"""Adam: forward KL for steps $<$ `switch`, reverse KL after; vectorised over starts.

    `switch = steps` is forward KL only, `switch = 0` reverse KL only.

    Args:
      params0: (2,) or (n, 2) starting `(mu, log_sigma)`.
      log_pt: teacher log-probabilities on the grid.
      steps: total steps (static).
      switch: the step at which the loss switches from forward to reverse KL.
      lr: Adam step size.

    Returns:
      (steps + 1, 2) trajectory, or (n, steps + 1, 2) for n starts.
    """
    p0 = jnp.asarray(params0)
    if p0.ndim == 2:
        return jax.vmap(lambda q: _train_one(q, log_pt, steps, switch, lr))(p0)
    return _train_one(p0, log_pt, steps, switch, lr)


def _train_one(params0, log_pt, steps, switch, lr):
    grid = log_pt.shape[-1]

    def loss(p, reverse):
        lq = student_log_probs(p, grid)
        return jnp.where(reverse, kl(lq, log_pt), kl(log_pt, lq))

    b1, b2, eps = 0.9, 0.999, 1e-8

    def step(carry, t):
        p, m, v = carry
        g = jax.grad(loss)(p, t >= switch)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        tt = t + 1.0
        p = p - lr * (m / (1 - b1**tt)) / (jnp.sqrt(v / (1 - b2**tt)) + eps)
        return (p, m, v), p

    p0 = jnp.asarray(params0, dtype=jnp.result_type(float))
    z = jnp.zeros_like(p0)
    _, traj = jax.lax.scan(step, (p0, z, z), jnp.arange(steps))
    return jnp.concatenate([p0[None], traj], axis=0)


def mode_metrics(params, log_pt, centres, weights) -> dict[str, float]:
    """Coverage, precision, consolidated-mode weight, forward and reverse KL at `params`."""
    grid = log_pt.shape[-1]
    lq = np.asarray(student_log_probs(jnp.asarray(params), grid))
    lpt = np.asarray(log_pt)
    mu, sigma = float(params[0]), float(np.exp(params[1]))
    c = np.asarray(centres, dtype=np.float64)
    pi = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    covered = np.abs(c - mu) <= 2 * sigma
    high = lpt >= lpt.max() + np.log(0.1)
    from ..core import kl as np_kl

    return {
        "mu": mu,
        "sigma": sigma,
        "coverage": float(pi[covered].sum()),
        "precision": float(np.exp(lq)[high].sum()),
        "mode_weight": float(pi[np.argmin(np.abs(c - mu))]),
        "forward_kl": float(np_kl(lpt, lq)),
        "reverse_kl": float(np_kl(lq, lpt)),
    }
