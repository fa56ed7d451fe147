r"""Kernel self-distillation against trained networks, lazy and rich (JAX).

Networks here are trained the way kernel theory describes them, so the theory's prediction can be
computed *before* training and compared afterwards. For a network $f(x;\theta)$ at its
initialisation $\theta_0$ and an output scale $\kappa>0$ (Chizat, Oyallon & Bach's lazy-training
scale), the trained function is the centred, rescaled output

$$g(x;\varphi)=\kappa\,\big(f(x;\theta_0+\varphi/\kappa)-f(x;\theta_0)\big),$$

fitted by gradient descent on $\tfrac12\|g(X;\varphi)-t\|^2+\tfrac\lambda2\|\varphi\|^2$ from
$\varphi=0$. Linearising $f$ at $\theta_0$ gives $g\approx J\varphi$, and the objective becomes
kernel ridge regression with the empirical NTK $\Theta=JJ^\top$ at initialisation and penalty
$\lambda$, *whatever* $\kappa$ [derived]. So one closed form
(`sdtheory.theory.krr.KernelSelfDistillation` on $\Theta$) predicts every trained surface, and
$\kappa$ moves the network between the lazy regime (large $\kappa$, or large width in the NTK
parametrisation: the parameters move by $O(1/\kappa)$ and the linearisation is exact in the
limit) and the rich one ($\kappa=m^{-1/2}$, the mean-field scaling, where the features move).

Self-distillation over an $\alpha$ grid: step 1 fits $y$; step $\tau\ge2$ fits
$\alpha y+(1-\alpha)\hat y^{(\tau-1)}$, where $\hat y^{(\tau-1)}$ is the previous *trained*
network's output at the training points. Every fit restarts from $\theta_0$ (the kernel setting of
Borup & Andersen 2021), and all $\alpha$ of one step are fitted at once (`jax.vmap`).

Models (NTK parametrisation, $\tanh$):

- `mlp`: $z_l=\sigma_w W_l a_{l-1}/\sqrt{n_{l-1}}+\sigma_b b_l$, $a_l=\tanh z_l$, scalar
  readout $f=\sigma_w w^\top a_L/\sqrt{n_L}+\sigma_b b$. Its empirical NTK is computed exactly
  from per-example backpropagated signals $\delta_l=\partial f/\partial z_l$:
  $\Theta(x,x')=\sum_l\big(\tfrac{\sigma_w^2}{n_{l-1}}a_{l-1}\!\cdot a'_{l-1}+\sigma_b^2\big)
  \,\delta_l\!\cdot\delta'_l$ (the per-layer outer-product structure of dense-layer gradients).
- `cnn`: two 3x3 convolutions (`channels` each, stride 1, `SAME`), global average pooling and a
  scalar readout; its NTK is $JJ^\top$ from the full Jacobian (few parameters).

Library code does not switch on float64; callers set `jax_enable_x64`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Net",
    "digits_binary",
    "empirical_ntk",
    "enable_x64",
    "init_net",
    "apply_net",
    "predicted_surface",
    "self_distill_surface",
    "spearman",
]

SIGMA_W = 1.0
SIGMA_B = 0.1


@dataclasses.dataclass(frozen=True)
class Net:
    """A network architecture: `kind` (`"mlp"` or `"cnn"`), `width` (units or channels), depth.

    `image_shape` is the (height, width) of the input images for the CNN.
    """

    kind: str = "mlp"
    width: int = 256
    depth: int = 2
    image_shape: tuple[int, int] = (8, 8)

    def __post_init__(self):
        if self.kind not in ("mlp", "cnn"):
            raise ValueError(f"kind must be 'mlp' or 'cnn', got {self.kind!r}")
        if int(self.width) < 1:
            raise ValueError(f"width must be >= 1, got {self.width!r}")
        if int(self.depth) < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth!r}")


def enable_x64() -> None:
    """Switch JAX to float64 (callers do this once; library code never flips it on its own)."""
    jax.config.update("jax_enable_x64", True)


def init_net(seed, net: Net, d_in: int, dtype=None) -> dict:
    """Standard-normal weights and biases (the NTK parametrisation puts the scales in `apply`).

    `seed` is an int or a JAX PRNG key; `dtype` defaults to float64 when x64 is enabled.
    """
    key = jax.random.PRNGKey(int(seed)) if isinstance(seed, (int, np.integer)) else seed
    if dtype is None:
        dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    keys = jax.random.split(key, 2 * net.depth + 2)
    params = {}
    if net.kind == "mlp":
        fan = d_in
        for l in range(net.depth):
            params[f"w{l}"] = jax.random.normal(keys[2 * l], (net.width, fan), dtype)
            params[f"b{l}"] = jax.random.normal(keys[2 * l + 1], (net.width,), dtype)
            fan = net.width
    else:
        c_in = 1
        for l in range(net.depth):
            params[f"w{l}"] = jax.random.normal(keys[2 * l], (3, 3, c_in, net.width), dtype)
            params[f"b{l}"] = jax.random.normal(keys[2 * l + 1], (net.width,), dtype)
            c_in = net.width
    params["w_out"] = jax.random.normal(keys[-2], (net.width,), dtype)
    params["b_out"] = jax.random.normal(keys[-1], (), dtype)
    return params


def _mlp_hidden(params: dict, x, depth: int, eps=None):
    """Activations a_0..a_L of the MLP; `eps[l]` is added to the pre-activation z_{l+1}."""
    acts = [x]
    a = x
    for l in range(depth):
        w = params[f"w{l}"]
        z = SIGMA_W * a @ w.T / math.sqrt(w.shape[1]) + SIGMA_B * params[f"b{l}"]
        if eps is not None:
            z = z + eps[l]
        a = jnp.tanh(z)
        acts.append(a)
    return acts


def _readout(params: dict, a):
    w = params["w_out"]
    return SIGMA_W * a @ w / math.sqrt(w.shape[0]) + SIGMA_B * params["b_out"]


def _cnn_features(params: dict, x, depth: int, image_shape):
    h = x.reshape((x.shape[0], *image_shape, 1))
    for l in range(depth):
        w = params[f"w{l}"]
        fan = w.shape[0] * w.shape[1] * w.shape[2]
        z = jax.lax.conv_general_dilated(
            h, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        h = jnp.tanh(SIGMA_W * z / math.sqrt(fan) + SIGMA_B * params[f"b{l}"])
    return h.mean(axis=(1, 2))


def apply_net(params: dict, x, net: Net) -> jnp.ndarray:
    """The network output f(x), shape (n,), for inputs `x` of shape (n, d_in)."""
    if net.kind == "mlp":
        return _readout(params, _mlp_hidden(params, x, net.depth)[-1])
    return _readout(params, _cnn_features(params, x, net.depth, net.image_shape))


def _mlp_ntk(params: dict, x1, x2, depth: int):
    def deltas(x):
        eps = [jnp.zeros((x.shape[0], params[f"b{l}"].shape[0]), x.dtype) for l in range(depth)]

        def f(e):
            return jnp.sum(_readout(params, _mlp_hidden(params, x, depth, e)[-1]))

        # rows are independent, so the gradient of the sum is the per-example gradient
        return jax.grad(f)(eps), _mlp_hidden(params, x, depth)

    d1, a1 = deltas(x1)
    d2, a2 = deltas(x2)
    m_out = params["w_out"].shape[0]
    k = (SIGMA_W**2 / m_out) * (a1[-1] @ a2[-1].T) + SIGMA_B**2  # readout layer (delta = 1)
    for l in range(depth):
        fan = params[f"w{l}"].shape[1]
        k = k + ((SIGMA_W**2 / fan) * (a1[l] @ a2[l].T) + SIGMA_B**2) * (d1[l] @ d2[l].T)
    return k


def _jacobian_ntk(params: dict, x1, x2, net: Net, chunk: int = 256):
    def flat_jac(x):
        j = jax.jacrev(lambda p: apply_net(p, x, net))(params)
        return jnp.concatenate([v.reshape(x.shape[0], -1) for v in jax.tree.leaves(j)], 1)

    j1 = jnp.concatenate([flat_jac(x1[i : i + chunk]) for i in range(0, x1.shape[0], chunk)])
    j2 = jnp.concatenate([flat_jac(x2[i : i + chunk]) for i in range(0, x2.shape[0], chunk)])
    return j1 @ j2.T


def empirical_ntk(params: dict, x1, x2, net: Net, *, method: str = "auto") -> np.ndarray:
    r"""$\Theta(x_1,x_2)=J(x_1)J(x_2)^\top$ at `params`, Jacobians w.r.t. every parameter.

    `method="auto"` uses the exact per-layer formula for the MLP and the full Jacobian for the
    CNN; `"jacobian"` forces the full Jacobian (the reference the MLP formula is tested against).
    """
    if method not in ("auto", "jacobian"):
        raise ValueError(f"method must be 'auto' or 'jacobian', got {method!r}")
    x1, x2 = jnp.asarray(x1), jnp.asarray(x2)
    if net.kind == "mlp" and method == "auto":
        return np.asarray(_mlp_ntk(params, x1, x2, net.depth))
    return np.asarray(_jacobian_ntk(params, x1, x2, net))


def predicted_surface(kernel, kernel_eval, y, y_eval, lam: float, alphas, steps: int):
    """Closed-form held-out MSE of every (alpha, step): array (len(alphas), steps).

    Kernel self-distillation (`KernelSelfDistillation`) with the empirical NTK, predictions at
    the evaluation points compared with `y_eval`.
    """
    from sdtheory.theory.krr import KernelSelfDistillation

    sd = KernelSelfDistillation(kernel, y, lam)
    out = np.empty((len(alphas), steps))
    for i, a in enumerate(alphas):
        pred = sd.predict_path(steps, float(a), kernel_eval=kernel_eval)
        out[i] = np.mean((pred - np.asarray(y_eval)[None]) ** 2, axis=1)
    return out


def _fit_batch(params0, x, targets, net: Net, kappa, lam, lr, momentum, iters: int):
    """Fit each column of `targets`: 1/2||g(X; phi) - t||^2 + lam/2 ||phi||^2 from phi = 0.

    Nesterov's accelerated gradient with a safeguard for the non-convex (rich) case: a step that
    raises the objective is rejected, the momentum is reset and the step size halved. On the
    linearised (lazy) problem with `lr` <= 1/L it is plain Nesterov and never rejects.
    """
    f0 = apply_net(params0, x, net)

    def g(phi):
        p = jax.tree.map(lambda a, b: a + b / kappa, params0, phi)
        return kappa * (apply_net(p, x, net) - f0)

    def loss(phi, t):
        r = g(phi) - t
        reg = sum(jnp.sum(v**2) for v in jax.tree.leaves(phi))
        return 0.5 * jnp.sum(r**2) + 0.5 * lam * reg

    grad = jax.grad(loss)

    def fit(t):
        zero = jax.tree.map(jnp.zeros_like, params0)

        def body(_, state):
            phi, vel, step, prev = state
            ahead = jax.tree.map(lambda p, v: p + momentum * v, phi, vel)
            gr = grad(ahead, t)
            new_vel = jax.tree.map(lambda v, gg: momentum * v - step * gg, vel, gr)
            new_phi = jax.tree.map(lambda p, v: p + v, phi, new_vel)
            new = loss(new_phi, t)
            ok = new <= prev
            pick = lambda a, b: jax.tree.map(lambda u, w: jnp.where(ok, u, w), a, b)
            return (
                pick(new_phi, phi),
                pick(new_vel, zero),
                jnp.where(ok, step, 0.5 * step),
                jnp.where(ok, new, prev),
            )

        init = (zero, zero, jnp.asarray(lr, x.dtype), loss(zero, t))
        phi, _, _, _ = jax.lax.fori_loop(0, iters, body, init)
        gr = grad(phi, t)
        gnorm = jnp.sqrt(sum(jnp.sum(v**2) for v in jax.tree.leaves(gr)))
        scale = jnp.sqrt(sum(jnp.sum(v**2) for v in jax.tree.leaves(grad(zero, t))))
        return phi, gnorm / scale

    return jax.vmap(fit, in_axes=1)(targets)


_fit_jit = jax.jit(_fit_batch, static_argnames=("net", "iters"))


def _outputs(params0, phis, x, net: Net, kappa):
    f0 = apply_net(params0, x, net)

    def one(phi):
        p = jax.tree.map(lambda a, b: a + b / kappa, params0, phi)
        return kappa * (apply_net(p, x, net) - f0)

    return jax.vmap(one)(phis)


_outputs_jit = jax.jit(_outputs, static_argnames=("net",))


def self_distill_surface(
    params0: dict,
    x,
    y,
    x_eval,
    y_eval,
    net: Net,
    *,
    kappa: float,
    lam: float,
    alphas: Sequence[float],
    steps: int,
    lr: float,
    momentum: float,
    iters: int,
) -> dict:
    """Train the self-distillation path for every alpha; held-out MSE of every (alpha, step).

    Returns a dict with `mse` (len(alphas), steps), `train_out` and `eval_out`
    (len(alphas), steps, n) network outputs, and `grad_rel` (len(alphas), steps): the final
    gradient norm relative to the one at phi = 0 (how far each fit is from its stationary point).
    """
    if not kappa > 0:
        raise ValueError(f"kappa must be > 0, got {kappa!r}")
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps!r}")
    x, y, x_eval = jnp.asarray(x), jnp.asarray(y), jnp.asarray(x_eval)
    al = jnp.asarray(np.asarray(alphas, dtype=np.float64), dtype=x.dtype)
    n_a = al.shape[0]
    tr, ev, gr = [], [], []
    prev = None
    for step in range(int(steps)):
        if step == 0:
            # step 1 fits y for every alpha: one fit, repeated
            phi, g_rel = _fit_jit(params0, x, y[:, None], net, kappa, lam, lr, momentum, iters)
            out_tr = jnp.repeat(_outputs_jit(params0, phi, x, net, kappa), n_a, 0)
            out_ev = jnp.repeat(_outputs_jit(params0, phi, x_eval, net, kappa), n_a, 0)
            g_rel = jnp.repeat(g_rel, n_a)
        else:
            targets = al[None, :] * y[:, None] + (1 - al[None, :]) * prev.T
            phi, g_rel = _fit_jit(params0, x, targets, net, kappa, lam, lr, momentum, iters)
            out_tr = _outputs_jit(params0, phi, x, net, kappa)
            out_ev = _outputs_jit(params0, phi, x_eval, net, kappa)
        prev = out_tr
        tr.append(np.asarray(out_tr))
        ev.append(np.asarray(out_ev))
        gr.append(np.asarray(g_rel))
    tr, ev = np.stack(tr, 1), np.stack(ev, 1)
    mse = np.mean((ev - np.asarray(y_eval)[None, None]) ** 2, axis=2)
    return {"mse": mse, "train_out": tr, "eval_out": ev, "grad_rel": np.stack(gr, 1)}


def spearman(a, b) -> float:
    """Spearman rank correlation of two equal-length arrays (average ranks for ties)."""
    from scipy.stats import spearmanr

    a, b = np.ravel(a), np.ravel(b)
    if a.shape != b.shape or a.size < 3:
        raise ValueError(f"a and b must have the same size >= 3, got {a.size} and {b.size}")
    return float(spearmanr(a, b).statistic)


def digits_binary(
    n_train: int, n_eval: int, *, noise: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""scikit-learn's bundled handwritten digits (8x8, offline) as a binary regression task.

    Target $+1$ for digits 5–9 and $-1$ for 0–4; pixels scaled to $[0,1]$ and standardised with
    the training mean and standard deviation. A fraction `noise` of the *training* labels is
    flipped (held-out labels stay clean): the setting where self-distillation can help.

    Returns:
      `(x, y, x_eval, y_eval, y_clean)` as float64 numpy arrays.
    """
    from sklearn.datasets import load_digits

    if not 0.0 <= float(noise) < 0.5:
        raise ValueError(f"noise must lie in [0, 0.5), got {noise!r}")
    data = load_digits()
    x_all = data.data.astype(np.float64) / 16.0
    y_all = np.where(data.target >= 5, 1.0, -1.0)
    if int(n_train) + int(n_eval) > x_all.shape[0] or int(n_train) < 2 or int(n_eval) < 1:
        raise ValueError(
            f"n_train + n_eval must be <= {x_all.shape[0]} with n_train >= 2, n_eval >= 1, got "
            f"{n_train} + {n_eval}"
        )
    rng = np.random.default_rng(seed)
    idx = rng.permutation(x_all.shape[0])
    tr, ev = idx[: int(n_train)], idx[int(n_train) : int(n_train) + int(n_eval)]
    mu, sd = x_all[tr].mean(0), x_all[tr].std(0) + 0.1
    x, x_eval = (x_all[tr] - mu) / sd, (x_all[ev] - mu) / sd
    y_clean = y_all[tr]
    flip = rng.random(y_clean.shape[0]) < float(noise)
    y = np.where(flip, -y_clean, y_clean)
    return x, y, x_eval, y_all[ev], y_clean
