r"""Exact self-distillation closed forms for explicit features, from the d x d feature Gram.

`LowRankSelfDistillation` is returned by `KernelSelfDistillation.from_features` and re-exported by
`sdtheory.theory.krr_scale` (where `NystromSelfDistillation` builds on it). Derivation:
`docs/theory/krr.md` §6.
"""

from __future__ import annotations

import math

import numpy as np

from ._krr_spectral import (
    SpectralSelfDistillation,
    _check_lam,
    _greedy_alpha,
    _scale,
    spectral_decomposition,
)

__all__ = ["LowRankSelfDistillation"]

_EPS = float(np.finfo(np.float64).eps)


def _check_y(y, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"y must have shape (n,) or (n, k) with n = {n}, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("y must be finite, got NaN or inf entries")
    return y


class LowRankSelfDistillation(SpectralSelfDistillation):
    r"""Exact self-distillation closed forms for $\mathbf K=\Phi\Phi^\top$, from $\Phi^\top\Phi$.

    Let $\Phi^\top\Phi=W\operatorname{diag}(d)W^\top$ (d x d). The nonzero eigenvalues of
    $\mathbf K$ are $d$, and the rest are 0, where every step's filter vanishes. The step-τ
    predictor is linear in the features, $\hat f^{(\tau)}(x)=\phi(x)^\top w^{(\tau)}$, with
    primal weights

    $$w^{(\tau)}=W\operatorname{diag}(g^{(\tau)})\,W^\top\Phi^\top y,$$

    where $g^{(\tau)}$ is the dual factor of `KernelSelfDistillation` ($b^{(\tau)}=d\,g^{(\tau)}$).
    This costs one $O(nd^2)$ Gram product and one d x d `eigh`. Each prediction after that is a
    product with $\Phi$: $O(nd)$ per step and α. It is exact, not an approximation, and equals
    `KernelSelfDistillation(phi @ phi.T, y, lam)` to rounding. `eigenvalues`, `shrinkage` and
    `shrinkage_path` list the d eigenvalues of $\Phi^\top\Phi$. The other n - d eigenvalues of
    $\mathbf K$ are 0, with $b=0$ at every step. There is no n x n `eigenvectors` matrix.

    New points: `phi_eval` (m x d, the features of the new points) gives $\phi(x)^\top w$.
    `kernel_eval` (m x n, $\mathbf K_{x,X}$) is also accepted and uses the dual vector
    $(\mathbf K+\lambda I)^{-1}t^{(\tau)}=(t^{(\tau)}-\hat y^{(\tau)})/\lambda$.

    Args:
      phi: features, shape (n, d).
      y: targets, shape (n,) or (n, k).
      lam: ridge penalty $\lambda>0$.
      eig_tol: clipping threshold for the eigenvalues of $\Phi^\top\Phi$. The default is
        $(n+d)\,\epsilon\operatorname{tr}(\Phi^\top\Phi)$, the rounding level of the product
        and its `eigh` (see `spectral_decomposition`).
      gram: $\Phi^\top\Phi$ if already computed, e.g. on an accelerator
        (`sdtheory.lm.krr_scale.features_gram`).

    Example:
      >>> from sdtheory.theory.krr import KernelSelfDistillation
      >>> rng = np.random.default_rng(0)
      >>> phi = rng.standard_normal((50, 4)); y = rng.standard_normal(50)
      >>> low = LowRankSelfDistillation(phi, y, lam=0.3)
      >>> full = KernelSelfDistillation(phi @ phi.T, y, lam=0.3)
      >>> bool(np.allclose(low.predict(5, 0.2), full.predict(5, 0.2)))
      True
    """

    def __init__(self, phi, y, lam: float, *, eig_tol: float | None = None, gram=None):
        self.lam = _check_lam(lam)
        f = np.asarray(phi, dtype=np.float64)
        if f.ndim != 2 or f.shape[0] == 0 or f.shape[1] == 0:
            raise ValueError(f"phi must have shape (n, d) with n, d >= 1, got shape {f.shape}")
        if not np.isfinite(f).all():
            raise ValueError("phi must be finite, got NaN or inf entries")
        y = _check_y(y, f.shape[0])
        if gram is None:
            gram = f.T @ f
        else:
            gram = np.asarray(gram, dtype=np.float64)
            if gram.shape != (f.shape[1], f.shape[1]):
                raise ValueError(f"gram must have shape {(f.shape[1],) * 2}, got {gram.shape}")
        if eig_tol is None:
            eig_tol = sum(f.shape) * _EPS * max(float(np.trace(gram)), 1e-300)
        d, w, n0 = spectral_decomposition(gram, eig_tol)
        self.phi = f
        self.y = y
        self.eigenvalues = d
        self.n_clipped = n0
        self._w = w
        self._z = w.T @ (f.T @ y)  # W^T Phi^T y
        self._a = d / (d + self.lam)
        self._one_minus_a = self.lam / (d + self.lam)

    @property
    def n(self) -> int:
        """The number of training points."""
        return self.phi.shape[0]

    @property
    def rank(self) -> int:
        """The number of features d (eigenvalues of $\\Phi^\\top\\Phi$, zeros included)."""
        return self.eigenvalues.shape[0]

    # ------------------------------------------------------------------ primal weights

    def weights(self, step, alpha) -> np.ndarray:
        r"""Primal weights $w^{(\tau)}$, shape `(d,) + y.shape[1:]`: $\hat f^{(\tau)}=\phi^\top w$.

        `step` and `alpha` as in `predict`. A linear head trained by self-distillation with
        weight decay λ on the features converges to these weights.
        """
        return self._w @ _scale(self._dual_factor(step, alpha), self._z)

    def _g_path(self, steps: int, alpha) -> np.ndarray:
        """Dual factors $g^{(1)}..g^{(steps)}$, shape (steps, d)."""
        b = self.shrinkage_path(steps, alpha)
        al = self._alpha_row(steps, alpha)[:, None]
        prev = np.vstack([np.ones(self.rank), b[:-1]])
        return (al + (1.0 - al) * prev) / (self.eigenvalues + self.lam)

    def _alpha_row(self, steps: int, alpha) -> np.ndarray:
        """$(1, \\alpha_2, .., \\alpha_{steps})$ for a scalar or a sequence."""
        const, seq = self._alphas(steps, alpha)
        rest = np.full(steps - 1, const) if seq is None else seq
        return np.concatenate([[1.0], rest])

    def weights_path(self, steps: int, alpha) -> np.ndarray:
        """Primal weights after steps 1..`steps`, shape `(steps, d) + y.shape[1:]`."""
        g = self._g_path(steps, alpha)
        if self._z.ndim == 1:
            return (g * self._z) @ self._w.T
        return np.einsum("sk,kc,dk->sdc", g, self._z, self._w)

    # ------------------------------------------------------------------ predictions

    def _rows(self, phi_eval) -> np.ndarray:
        if phi_eval is None:
            return self.phi
        f = np.asarray(phi_eval, dtype=np.float64)
        if f.ndim != 2 or f.shape[1] != self.phi.shape[1]:
            raise ValueError(
                f"phi_eval must have shape (m, {self.phi.shape[1]}), got shape {f.shape}"
            )
        if not np.isfinite(f).all():
            raise ValueError("phi_eval must be finite, got NaN or inf entries")
        return f

    def _dual(self, step, alpha) -> np.ndarray:
        r"""$(\mathbf K+\lambda I)^{-1}t^{(\tau)}=(t^{(\tau)}-\hat y^{(\tau)})/\lambda$."""
        step = self._check_step(step)
        const, seq = self._alphas(step, alpha)
        if step == math.inf:
            return const * (self.y - self.predict(math.inf, const)) / self.lam
        t = self.y
        if step > 1:
            al, prev = (const, const) if seq is None else (seq[-1], seq[:-1])
            t = al * self.y + (1.0 - al) * self.predict(step - 1, prev)
        return (t - self.predict(step, alpha)) / self.lam

    def predict(self, step, alpha, kernel_eval=None, *, phi_eval=None) -> np.ndarray:
        r"""Predictions after `step` steps: $\Phi w^{(\tau)}$, or at new points.

        Args:
          step: int >= 1 or `math.inf` (ridge with $\lambda/\alpha$).
          alpha: scalar, or the sequence $\alpha_2..\alpha_{\text{step}}$.
          kernel_eval: optional m x n kernel $\mathbf K_{x,X}$ between new and training points.
          phi_eval: optional m x d features of new points (preferred: $O(md)$).

        Returns:
          Shape `(n,) + y.shape[1:]`, or `(m,) + y.shape[1:]` at new points.
        """
        if kernel_eval is not None:
            if phi_eval is not None:
                raise ValueError("give kernel_eval or phi_eval, not both")
            return self._check_kernel_eval(kernel_eval) @ self._dual(step, alpha)
        return self._rows(phi_eval) @ self.weights(step, alpha)

    def predict_path(self, steps: int, alpha, kernel_eval=None, *, phi_eval=None) -> np.ndarray:
        """Predictions after steps 1..`steps`, shape `(steps, n or m) + y.shape[1:]`.

        One product of the features with the d x steps weight matrix.
        """
        if kernel_eval is None:
            w = self.weights_path(steps, alpha)
            rows = self._rows(phi_eval)
            return w @ rows.T if w.ndim == 2 else np.einsum("md,sdc->smc", rows, w)
        if phi_eval is not None:
            raise ValueError("give kernel_eval or phi_eval, not both")
        ke = self._check_kernel_eval(kernel_eval)
        yh = self.predict_path(steps, alpha)
        al = self._alpha_row(steps, alpha).reshape((-1,) + (1,) * self.y.ndim)
        prev = np.concatenate([self.y[None], yh[:-1]])
        duals = (al * self.y[None] + (1.0 - al) * prev - yh) / self.lam
        return np.einsum("mn,sn...->sm...", ke, duals)

    def predict_grid(self, alphas, steps: int, *, phi_eval=None) -> np.ndarray:
        r"""Predictions for constant alphas x steps 1..`steps`, from one product with the features.

        The constant-α predictions are fixed combinations of the Krylov functions
        $f_i=\tilde P^iy$, $i=1..$`steps`, through the closed sum of §1:
        $\hat y^{(\tau)}=(1-\alpha)^{\tau-1}f_\tau+\alpha\sum_{i<\tau}(1-\alpha)^{i-1}f_i$. This is
        `distillation_grid` for this class. The $f_i$ at any feature rows are
        $\psi\,W(a^{i-1}/(d+\lambda)\odot W^\top\Phi^\top y)$, so one $O(nd\cdot$steps$)$
        product serves every alpha.

        Returns:
          Shape `(len(alphas), steps, n or m) + y.shape[1:]`; `out[i, t - 1]` equals
          `predict(t, alphas[i])` to rounding.
        """
        al = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
        if al.ndim != 1 or not np.isfinite(al).all():
            raise ValueError(f"alphas must be a 1-D sequence of finite numbers, got {alphas!r}")
        steps = self._check_step(steps)
        if steps == math.inf:
            raise ValueError("steps must be a finite int >= 1, got inf")
        rows = self._rows(phi_eval)
        basis = self._krylov_functions(rows, steps)  # (steps, m, c)
        tau = np.arange(1, steps + 1)[:, None]
        i = np.arange(1, steps + 1)[None, :]
        one_m = (1.0 - al)[:, None, None]
        with np.errstate(invalid="ignore", over="ignore"):
            inner = al[:, None, None] * one_m ** (i - 1)
            coef = np.where(i < tau, inner, 0.0) + np.where(i == tau, one_m ** (tau - 1), 0.0)
        out = (coef.reshape(-1, steps) @ basis.reshape(steps, -1)).reshape(
            (al.shape[0], steps) + basis.shape[1:]
        )
        return out[..., 0] if self.y.ndim == 1 else out

    def _krylov_functions(self, rows: np.ndarray, steps: int) -> np.ndarray:
        r"""$f_i=\tilde P^iy$ at the feature rows, $i=1..$steps: shape (steps, m, c)."""
        return self._filtered(rows, self._krylov_filters(steps))

    def _krylov_filters(self, steps: int) -> np.ndarray:
        r"""$a^{i-1}/(d+\lambda)$ for i = 1..steps, shape (steps, d)."""
        return self._a[None, :] ** np.arange(steps)[:, None] / (self.eigenvalues + self.lam)

    def _filtered(self, rows: np.ndarray, filters: np.ndarray) -> np.ndarray:
        r"""$\psi W(h_i\odot W^\top\Phi^\top y)$ for each row $h_i$ of `filters`: (s, m, c)."""
        z2 = self._z if self._z.ndim == 2 else self._z[:, None]
        coef = filters[:, :, None] * z2[None]  # (s, d, c)
        vec = rows @ (self._w @ np.moveaxis(coef, 0, 1).reshape(self.rank, -1))
        return np.moveaxis(vec.reshape(rows.shape[0], filters.shape[0], -1), 1, 0)

    def optimal_alpha(
        self, target, steps: int, kernel_eval=None, *, phi_eval=None, constrain: bool = False
    ) -> np.ndarray:
        r"""Greedy per-step $\alpha^\star_\tau=\langle r,t-p\rangle/\|r\|^2$ [derived].

        The same criterion as `KernelSelfDistillation.optimal_alpha`, evaluated with the low-rank
        maps: $p=P\hat y^{(\tau-1)}$ and $r=P(y-\hat y^{(\tau-1)})$ at the training points are
        $\Phi W\operatorname{diag}(b/(d+\lambda))W^\top\Phi^\top y$ and the same with $1-b$.
        At new points, `phi_eval` replaces $\Phi$, and `kernel_eval` applies
        $\mathbf K_{x,X}(\mathbf K+\lambda I)^{-1}v=\mathbf K_{x,X}(v-Pv)/\lambda$.
        """
        steps = self._check_step(steps)
        if steps == math.inf:
            raise ValueError("steps must be a finite int >= 1, got inf")
        if kernel_eval is not None and phi_eval is not None:
            raise ValueError("give kernel_eval or phi_eval, not both")
        t = np.asarray(target, dtype=np.float64)
        ke = None if kernel_eval is None else self._check_kernel_eval(kernel_eval)
        rows = self._rows(phi_eval if ke is None else None)
        m = rows.shape[0] if ke is None else ke.shape[0]
        if t.shape != (m,) + self.y.shape[1:]:
            raise ValueError(f"target must have shape {(m,) + self.y.shape[1:]}, got {t.shape}")
        inv = 1.0 / (self.eigenvalues + self.lam)
        b_prev, g_prev = self._a.copy(), inv.copy()  # b^(1), g^(1)
        out = np.empty(steps - 1)
        for i in range(steps - 1):
            p = rows @ (self._w @ _scale(inv * b_prev, self._z))
            r = rows @ (self._w @ _scale(inv * (1.0 - b_prev), self._z))
            if ke is not None:  # training-point vectors -> values at the new points
                y_prev = self.phi @ (self._w @ _scale(g_prev, self._z))
                p = ke @ (y_prev - p) / self.lam
                r = ke @ (self.y - y_prev - r) / self.lam
            out[i] = al = _greedy_alpha(p, r, t, constrain)
            g_prev = (al + (1.0 - al) * b_prev) * inv
            b_prev = self._a * (al + (1.0 - al) * b_prev)
        return out

    def _apply_p(self, v: np.ndarray, mu: float | None = None) -> np.ndarray:
        r"""$\tilde P_\mu v=\Phi(\Phi^\top\Phi+\mu I)^{-1}\Phi^\top v$ ($\mu=\lambda$ by default)."""
        mu = self.lam if mu is None else mu
        c = self._w.T @ (self.phi.T @ v)
        c = c / (self.eigenvalues + mu) if c.ndim == 1 else c / (self.eigenvalues + mu)[:, None]
        return self.phi @ (self._w @ c)
