r"""JAX checks of kernel self-distillation against explicit refits and trained networks.

Two kinds of runs, both with one fresh fit per distillation step (step 1 fits $y$, step $\tau$ fits
$\alpha_\tau y+(1-\alpha_\tau)\hat y^{(\tau-1)}$ at the training points):

- `iterative_refits`: kernel ridge refits by linear solves (`jnp.linalg.solve`), the brute-force
  reference for `sdtheory.theory.krr.KernelSelfDistillation`.
- `distill_network`: a two-layer network $f(x;\theta)=m^{-1/2}\sum_j v_j\tanh(w_j^\top x+b_j)$
  in the NTK parametrisation, trained by full-batch gradient descent to convergence on
  $\tfrac12\|g(X;\theta)-t\|^2+\tfrac\lambda2\|\theta-\theta_0\|^2$ with the centred output
  $g(x;\theta)=f(x;\theta)-f(x;\theta_0)$, every step restarting from the same $\theta_0$.
  Linearising $g$ around $\theta_0$ turns this into kernel ridge with the empirical NTK
  $\Theta=J J^\top$ at $\theta_0$ and penalty $\lambda$ [derived], so the network's
  self-distillation path should approach the closed form with kernel $\Theta$ as the width $m$
  grows (lazy training; the deviation is expected to scale like $m^{-1/2}$). With
  `train="readout"` only $v$ is trained: a random-features model whose objective is exactly
  kernel ridge, so the deviation is optimisation error only.

Library code does not switch on float64; callers (sims, tests) set `jax_enable_x64`.
"""

from __future__ import annotations

import math
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from ..core._checks import check_positive_int

__all__ = [
    "init_two_layer",
    "apply_two_layer",
    "empirical_kernel",
    "iterative_refits",
    "distill_network",
]


def init_two_layer(
    key, d_in: int, width: int, dtype=jnp.float64, pad_to: int | None = None
) -> dict:
    """NTK-parametrised two-layer tanh network: N(0, 1) weights, outputs scaled by width^-1/2.

    With `pad_to` > width the arrays have `pad_to` units of which only the first `width` are live
    (`mask`); the dead ones have zero Jacobian and zero gradient, so the function, its kernel and
    its training are those of the width-`width` network, while every width shares one compiled
    program.
    """
    width = check_positive_int(width, "width")
    size = width if pad_to is None else int(pad_to)
    if size < width:
        raise ValueError(f"pad_to must be >= width = {width}, got {pad_to!r}")
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w": jax.random.normal(k1, (size, d_in), dtype),
        "b": jax.random.normal(k2, (size,), dtype),
        "v": jax.random.normal(k3, (size,), dtype),
        "mask": (jnp.arange(size) < width).astype(dtype) / math.sqrt(width),
    }


def apply_two_layer(params: dict, x) -> jnp.ndarray:
    """$f(x)=m^{-1/2}\\sum_j v_j\\tanh(w_j^\\top x+b_j)$ for `x` of shape (n, d_in)."""
    h = jnp.tanh(x @ params["w"].T + params["b"])
    return h @ (params["v"] * params["mask"])


def _trainable(params: dict, train: str) -> dict:
    keys = ("w", "b", "v") if train == "all" else ("v",)
    return {k: params[k] for k in keys}


def _merge(params0: dict, sub: dict) -> dict:
    return {**params0, **sub}


def empirical_kernel(params: dict, x1, x2, train: Literal["all", "readout"] = "all"):
    r"""$\Theta(x_1,x_2)=J(x_1)J(x_2)^\top$, Jacobians w.r.t. the trained parameters."""

    def f(sub, x):
        return apply_two_layer(_merge(params, sub), x)

    sub = _trainable(params, train)
    j1 = jax.jacobian(f)(sub, x1)
    j2 = jax.jacobian(f)(sub, x2)
    flat = lambda j: jnp.concatenate([v.reshape(v.shape[0], -1) for v in jax.tree.leaves(j)], 1)
    return flat(j1) @ flat(j2).T


def iterative_refits(kernel, y, lam: float, steps: int, alpha, kernel_eval=None) -> jnp.ndarray:
    """Kernel ridge refits by linear solves; rows are steps 1..`steps` (JAX)."""
    kernel = jnp.asarray(kernel)
    y = jnp.asarray(y)
    al = np.full(steps - 1, float(alpha)) if np.ndim(alpha) == 0 else np.asarray(alpha, float)
    if al.shape != (steps - 1,):
        raise ValueError(f"alpha must be a scalar or have length {steps - 1}, got {al.shape}")
    reg = kernel + lam * jnp.eye(kernel.shape[0], dtype=kernel.dtype)
    ke = kernel if kernel_eval is None else jnp.asarray(kernel_eval)
    prev, out = y, []
    for t in range(steps):
        tgt = y if t == 0 else al[t - 1] * y + (1 - al[t - 1]) * prev
        w = jnp.linalg.solve(reg, tgt)
        prev = kernel @ w
        out.append(ke @ w)
    return jnp.stack(out)


def _fit(params0: dict, x, target, lam: float, iters: int, lr: float, train: str):
    """Full-batch GD from theta_0 on 1/2||g(X) - t||^2 + lam/2 ||theta - theta_0||^2."""
    sub0 = _trainable(params0, train)
    f0 = apply_two_layer(params0, x)

    def loss(sub):
        g = apply_two_layer(_merge(params0, sub), x) - f0
        reg = sum(
            jnp.sum((s - s0) ** 2)
            for s, s0 in zip(jax.tree.leaves(sub), jax.tree.leaves(sub0), strict=True)
        )
        return 0.5 * jnp.sum((g - target) ** 2) + 0.5 * lam * reg

    grad = jax.grad(loss)

    def body(_, sub):
        return jax.tree.map(lambda p, g: p - lr * g, sub, grad(sub))

    sub = jax.lax.fori_loop(0, iters, body, sub0)
    gnorm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grad(sub))))
    return _merge(params0, sub), gnorm


_fit_jit = jax.jit(_fit, static_argnames=("iters", "train"))
_kernel_jit = jax.jit(empirical_kernel, static_argnames=("train",))
_apply_jit = jax.jit(apply_two_layer)


def distill_network(
    key,
    x,
    y,
    lam: float,
    steps: int,
    alpha: float,
    width: int,
    x_eval=None,
    *,
    iters: int = 4000,
    train: Literal["all", "readout"] = "all",
    pad_to: int | None = None,
) -> dict:
    r"""Self-distil a two-layer network by GD (fresh fit from the same $\theta_0$ each step).

    Args:
      key: PRNG key for the initialisation.
      x: training inputs (n, d_in); y: targets (n,).
      lam: the ridge penalty on $\|\theta-\theta_0\|^2$ (the kernel-ridge $\lambda$).
      steps: distillation steps; alpha: the constant ground-truth weight.
      width: hidden units m.
      x_eval: optional evaluation inputs.
      iters: GD iterations per fit; the learning rate is $1/(\lambda_{\max}(\Theta)+\lambda)$.
      train: `"all"` (two-layer NTK regime) or `"readout"` (random features).
      pad_to: pad the arrays to this many units (see `init_two_layer`); runs at several widths
        then share one compilation.

    Returns:
      Dict with `train` (steps, n) and `eval` (steps, m_eval) network predictions, the matching
      closed-form predictions `train_theory`, `eval_theory` (kernel ridge self-distillation with
      the empirical kernel at $\theta_0$, via `sdtheory.theory.krr`), `grad_norm` per fit, and
      `kernel`.
    """
    from sdtheory.theory.krr import KernelSelfDistillation

    if train not in ("all", "readout"):
        raise ValueError(f"train must be 'all' or 'readout', got {train!r}")
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    x_eval = x if x_eval is None else jnp.asarray(x_eval)
    params0 = init_two_layer(key, x.shape[1], width, x.dtype, pad_to)
    kern = np.asarray(_kernel_jit(params0, x, x, train))
    kern = 0.5 * (kern + kern.T)
    kern_eval = np.asarray(_kernel_jit(params0, x_eval, x, train))
    lr = 1.0 / (float(np.linalg.eigvalsh(kern)[-1]) + lam)
    f0_train = _apply_jit(params0, x)
    f0_eval = _apply_jit(params0, x_eval)
    preds, evals, gnorms = [], [], []
    prev = y
    for t in range(steps):
        target = y if t == 0 else alpha * y + (1 - alpha) * prev
        params, gn = _fit_jit(params0, x, target, lam, iters, lr, train)
        prev = _apply_jit(params, x) - f0_train
        preds.append(prev)
        evals.append(_apply_jit(params, x_eval) - f0_eval)
        gnorms.append(float(gn))
    sd = KernelSelfDistillation(kern, np.asarray(y), lam)
    return {
        "train": np.asarray(jnp.stack(preds)),
        "eval": np.asarray(jnp.stack(evals)),
        "train_theory": sd.predict_path(steps, alpha),
        "eval_theory": sd.predict_path(steps, alpha, kern_eval),
        "grad_norm": np.array(gnorms),
        "kernel": kern,
    }
