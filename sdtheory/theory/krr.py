r"""Self-distillation in kernel ridge regression: closed forms from one eigendecomposition.

Two settings share this module.

**Weighted ground truth** (Borup & Andersen 2021, `papers/borup2021`). Step 1 is the ridge fit
to $y$; step $\tau\ge2$ refits ridge (penalty $\lambda$) to the blended target
$\alpha_\tau y+(1-\alpha_\tau)\hat y^{(\tau-1)}$, so $\alpha$ weights the ground truth and
$\alpha=0$ is pure self-distillation. With $\mathbf K=VDV^\top$ and $a_k=d_k/(d_k+\lambda)$ the
training predictions are $\hat y^{(\tau)}=V\,\mathrm{diag}(b^{(\tau)})\,V^\top y$ with

$$b^{(1)}=a,\qquad b^{(\tau)}=a\,(\alpha_\tau+(1-\alpha_\tau)\,b^{(\tau-1)}),$$

and for constant $\alpha$ the closed sum
$b^{(\tau)}=(1-\alpha)^{\tau-1}a^\tau+\alpha\sum_{i=1}^{\tau-1}(1-\alpha)^{i-1}a^i$.
The recursion is the one of the official notebook (`Kennethborup/self_distillation`,
`toy_example.ipynb`, commit `cb20d6c`); the closed sum, the limit
$b^{(\infty)}=d/(d+\lambda/\alpha)$ (ridge with $\lambda/\alpha$) and the geometric rate
$(1-\alpha)\,a_{\max}$ are derived in `docs/theory/krr.md` and proved with sympy in
`sdtheory.symbolic.krr`.

**Pure self-distillation with an ε-constraint** (Mobahi, Farajtabar & Bartlett 2020,
`papers/mobahi2020`): `mobahi_rounds`.

Claims served: `krr.closed-form-equals-refits`, `krr.limit-amplified-ridge`,
`krr.convergence-rate`, `krr.sparsification-*`, `krr.optimal-alpha-derived`, `mobahi.*`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import brentq

from ..core._checks import check_positive_int
from ._krr_lowrank import LowRankSelfDistillation
from ._krr_spectral import (
    SpectralSelfDistillation,
    _check_lam,
    _greedy_alpha,
    _scale,
    spectral_decomposition,
)

__all__ = [
    "KernelSelfDistillation",
    "MobahiRounds",
    "distillation_grid",
    "iterative_refits",
    "mobahi_constant",
    "mobahi_rounds",
    "ridge_predict",
    "spectral_decomposition",
]


class KernelSelfDistillation(SpectralSelfDistillation):
    r"""Self-distillation with weighted ground truth, solved once in the kernel's eigenbasis.

    Step 1 is the ridge fit $\hat f^{(1)}(x)=\mathbf k_x^\top(\mathbf K+\lambda I)^{-1}y$; step
    $\tau\ge2$ refits ridge to $\alpha_\tau y+(1-\alpha_\tau)\hat y^{(\tau-1)}$ (Borup & Andersen
    2021; the recursion as in their official notebook). One `eigh` in the constructor; every
    prediction, shrinkage diagonal and limit afterwards costs $O(n^2)$ or less.

    `alpha` may be any finite real for finite steps: values in $[0,1]$ are the paper's weights,
    others are the affine continuation that `optimal_alpha` can return. The limit needs
    $\alpha\in[0,1]$.

    Attributes:
      eigenvalues: kernel eigenvalues $d_k$, descending; negative rounding noise clipped to 0
        (see `spectral_decomposition`).
      eigenvectors: matching eigenvectors (columns).
      n_clipped: how many (negative, within rounding) eigenvalues were set to 0.
      lam: the ridge penalty $\lambda$.

    Example:
      >>> rng = np.random.default_rng(0)
      >>> x = rng.standard_normal((20, 3)); K = x @ x.T + np.eye(20); y = rng.standard_normal(20)
      >>> sd = KernelSelfDistillation(K, y, lam=0.5)
      >>> ridge = K @ np.linalg.solve(K + 0.5 * np.eye(20), y)
      >>> bool(np.allclose(sd.predict(1, 0.3), ridge))
      True
      >>> lim = K @ np.linalg.solve(K + (0.5 / 0.3) * np.eye(20), y)  # ridge with lam/alpha
      >>> bool(np.allclose(sd.predict(math.inf, 0.3), lim))
      True
    """

    def __init__(self, kernel, y, lam: float, *, eig_tol: float | None = None):
        self.lam = _check_lam(lam)
        d, v, n0 = spectral_decomposition(kernel, eig_tol)
        y = np.asarray(y, dtype=np.float64)
        if y.ndim not in (1, 2) or y.shape[0] != d.shape[0]:
            raise ValueError(
                f"y must have shape (n,) or (n, k) with n = {d.shape[0]}, got shape {y.shape}"
            )
        if not np.isfinite(y).all():
            raise ValueError("y must be finite, got NaN or inf entries")
        self.eigenvalues = d
        self.eigenvectors = v
        self.n_clipped = n0
        self.y = y
        self._z = v.T @ y  # y in the eigenbasis
        self._a = d / (d + self.lam)
        self._one_minus_a = self.lam / (d + self.lam)  # exact, no cancellation near a = 1

    @classmethod
    def from_features(cls, phi, y, lam: float, *, eig_tol: float | None = None, gram=None):
        r"""Exact closed forms for $\mathbf K=\Phi\Phi^\top$ from the d x d Gram, $O(nd^2+d^3)$.

        Returns a `sdtheory.theory.krr_scale.LowRankSelfDistillation`: the same API, with
        `phi_eval` (m x d features) for new points and `weights(step, alpha)` for the primal
        weights. See that class for the arguments.

        Example:
          >>> phi = np.random.default_rng(0).standard_normal((40, 3)); y = np.ones(40)
          >>> sd = KernelSelfDistillation.from_features(phi, y, lam=0.5)
          >>> bool(np.allclose(sd.predict(3, 0.2), KernelSelfDistillation(phi @ phi.T, y, 0.5)
          ...      .predict(3, 0.2)))
          True
        """
        return LowRankSelfDistillation(phi, y, lam, eig_tol=eig_tol, gram=gram)

    @classmethod
    def nystrom(cls, kernel, y, lam: float, rank: int, *, rng, x=None, **kwargs):
        r"""Closed forms on a rank-`rank` Nyström approximation, with certified errors.

        Returns a `sdtheory.theory.krr_scale.NystromSelfDistillation` (`kernel`: an operator, an
        n x n matrix, or a kernel function such as `krr_scale.RBF` with inputs `x`).
        """
        from .krr_scale import NystromSelfDistillation  # deferred: loads the kernel operators

        return NystromSelfDistillation(kernel, y, lam, rank, rng=rng, x=x, **kwargs)

    @property
    def n(self) -> int:
        return self.eigenvalues.shape[0]

    # ------------------------------------------------------------------ predictions

    def predict(self, step, alpha, kernel_eval=None) -> np.ndarray:
        r"""Predictions after `step` steps, at the training points or at new points.

        Training points: $V\mathrm{diag}(b^{(\tau)})V^\top y$. New points with
        `kernel_eval` $=\mathbf K_{x,X}$ (m x n):
        $\mathbf K_{x,X}(\mathbf K+\lambda I)^{-1}(\alpha_\tau y+(1-\alpha_\tau)\hat y^{(\tau-1)})$,
        evaluated in the eigenbasis. `step=math.inf` gives ridge with $\lambda/\alpha$
        (the zero function for $\alpha=0$).

        Args:
          step: int >= 1 or `math.inf`.
          alpha: scalar in [0, 1] (any finite real for finite steps), or the sequence
            $\alpha_2..\alpha_{\text{step}}$ (length step - 1).
          kernel_eval: optional m x n kernel between new points and the training points.

        Returns:
          Shape `(n,) + y.shape[1:]`, or `(m,) + y.shape[1:]` with `kernel_eval`.
        """
        if kernel_eval is None:
            b = self.shrinkage(step, alpha)
            return self.eigenvectors @ _scale(b, self._z)
        ke = self._check_kernel_eval(kernel_eval)
        g = self._dual_factor(step, alpha)
        return ke @ (self.eigenvectors @ _scale(g, self._z))

    def predict_path(self, steps: int, alpha, kernel_eval=None) -> np.ndarray:
        """Predictions after steps 1..`steps`, shape `(steps, n or m) + y.shape[1:]`.

        One matrix product for all steps (the shrinkage rows are cheap closed forms).
        """
        b = self.shrinkage_path(steps, alpha)  # (steps, n)
        if kernel_eval is None:
            coef = b
            basis = self.eigenvectors
        else:
            ke = self._check_kernel_eval(kernel_eval)
            prev = np.vstack([np.ones(self.n), b[:-1]])
            const, seq = self._alphas(steps, alpha)
            al = np.full(steps, const) if seq is None else np.concatenate([[1.0], seq])
            coef = (al[:, None] + (1.0 - al[:, None]) * prev) / (self.eigenvalues + self.lam)
            basis = ke @ self.eigenvectors
        if self.y.ndim == 1:
            return (coef * self._z) @ basis.T
        return np.einsum("sk,kc,mk->smc", coef, self._z, basis)

    # ------------------------------------------------------------------ alpha*

    def optimal_alpha(
        self, target, steps: int, kernel_eval=None, *, constrain: bool = False
    ) -> np.ndarray:
        r"""Greedy per-step $\alpha_\tau$ minimising the squared error to `target` [derived].

        **Derived, not the paper's criterion.** Borup & Andersen (v2 abstract) state a closed form
        for the optimal weight per step; its criterion and formula were not retrievable here. This
        method uses the fact that step-$\tau$ predictions are affine in $\alpha_\tau$:
        $\hat f^{(\tau)}=p+\alpha_\tau r$ with $p=P\hat y^{(\tau-1)}$,
        $r=P(y-\hat y^{(\tau-1)})$ and $P=\mathbf K_{x,X}(\mathbf K+\lambda I)^{-1}$, so
        $\alpha^\star_\tau=\langle r,t-p\rangle/\|r\|^2$, taken greedily for
        $\tau=2..$`steps` along the path of the earlier optimal weights.

        Args:
          target: values $t$ to match: at the training points (length n), or at the rows of
            `kernel_eval` (length m); same trailing shape as `y`.
          steps: the last step; returns $\alpha_2..\alpha_{\text{steps}}$.
          kernel_eval: optional m x n kernel for evaluation points (e.g. validation points).
          constrain: minimise over $[0, 1]$ instead of the real line (for a 1-D convex quadratic
            this is the clip of the unconstrained minimiser, which is then exact, not a
            heuristic).

        Returns:
          The array of $\alpha_2..\alpha_{\text{steps}}$ (length steps - 1). Where $r=0$ (to
          1e-12 relative to $\|P y\|+\|P\hat y^{(\tau-1)}\|$, i.e. rounding) the error does
          not depend on $\alpha_\tau$ and 1.0 is returned.
        """
        steps = self._check_step(steps)
        if steps == math.inf:
            raise ValueError("steps must be a finite int >= 1, got inf")
        t = np.asarray(target, dtype=np.float64)
        m = self.n if kernel_eval is None else self._check_kernel_eval(kernel_eval).shape[0]
        if t.shape != (m,) + self.y.shape[1:]:
            raise ValueError(f"target must have shape {(m,) + self.y.shape[1:]}, got {t.shape}")
        basis = self.eigenvectors if kernel_eval is None else kernel_eval @ self.eigenvectors
        # evaluation map in the eigenbasis: train -> d/(d+lam), new points -> 1/(d+lam)
        filt = self._a if kernel_eval is None else 1.0 / (self.eigenvalues + self.lam)
        b_prev = self._a.copy()  # b^(1)
        out = np.empty(steps - 1)
        for i in range(steps - 1):
            p = basis @ _scale(filt * b_prev, self._z)
            r = basis @ _scale(filt * (1.0 - b_prev), self._z)
            out[i] = al = _greedy_alpha(p, r, t, constrain)
            b_prev = self._a * (al + (1.0 - al) * b_prev)
        return out


# ============================================================================ Mobahi et al.


@dataclasses.dataclass(frozen=True)
class MobahiRounds:
    r"""Result of `mobahi_rounds`.

    Attributes:
      c: $c_t$ for the non-collapsed rounds $t=0..t^\star-1$ (Mobahi's normalisation; the ridge
        penalty on the raw Gram matrix is $\lambda_t=n\,c_t$).
      predictions: rows $y_0=y, y_1, \dots$ (training-set predictions of each round), up to and
        including the first all-zero row at collapse.
      norms: $\|y_t\|$ per row of `predictions`.
      collapse_round: $t^\star$, the first round whose target satisfies $\|y_t\|^2\le n\epsilon$
        (its fit is $f\equiv0$); `None` if no collapse within `max_rounds`.
      r0: $r_0=\|y\|/\sqrt{n\epsilon}$.
      kappa: $\kappa=d_{\max}/d_{\min}$ over the positive eigenvalues of $G=\mathbf K/n$.
      eigenvalues: eigenvalues of $G=\mathbf K/n$, descending.
      shrinkage: rows $b^{(t)}=\prod_{i<t}d/(c_i+d)$ for $t=0..$ (same rows as `predictions`).
      effective_dim: $(\sum_k b_k)^2/\sum_k b_k^2$ per row: the participation ratio of the
        shrinkage product, which falls as the basis sparsifies (nan on the zero row).
      ratio_top_bottom: $b_1^{(t)}/b_n^{(t)}$ (largest over smallest positive eigenvalue) per row.
    """

    c: np.ndarray
    predictions: np.ndarray
    norms: np.ndarray
    collapse_round: int | None
    r0: float
    kappa: float
    eigenvalues: np.ndarray
    shrinkage: np.ndarray
    effective_dim: np.ndarray
    ratio_top_bottom: np.ndarray


# r = ||z|| / target within this many ulps of 1 is collapse: r carries the rounding of the rounds
# before it (a few ulps each), so it cannot be told from 1, and the fit it would give has norm
# below (r - 1) ||z||, zero to that precision.
_COLLAPSE_ULPS = 256


def mobahi_constant(z, d, target: float) -> float:
    r"""Mobahi's per-round constant: the root $c$ of $\|c\,z/(c+d)\|=$ `target` ($=\sqrt{n\epsilon}$).

    The one solver of a constrained round, shared by `mobahi_rounds` and the TAID proxy
    (`sdtheory.theory.taid`). The round's fit is $d/(c+d)\odot z$. With $r=\|z\|/$`target`:

    * $r\le1$: the zero function meets the constraint and is optimal (**collapse**); the answer
      is $c=\infty$, whose fit is $0$. An $r$ within 256 ulps of 1 counts as 1: it carries the
      rounding of earlier rounds, and its fit would be zero to that precision.
    * $r>1$: $\|z\|\,c/(c+d_{\max})\le\|cz/(c+d)\|\le\|z\|\,c/(c+d_{\min})$ gives the bracket
      $d_{\min}/(r-1)\le c\le d_{\max}/(r-1)$ (derived), solved by Brent's method (in $\log c$
      when $d_{\min}>0$). Where rounding hides the residual's sign change at an end of the
      bracket, that end meets the constraint to working precision and is returned.

    Eigenvalues $d_k=0$ (the kernel's null space) are allowed: those coordinates are never
    fitted, so a root exists only if they leave a residual of at most `target`.

    Args:
      z: the round's target in the eigenbasis of $G=\mathbf K/n$, shape (n,).
      d: eigenvalues of $G$, shape (n,), finite and $\ge 0$, at least one $> 0$.
      target: $\sqrt{n\epsilon}>0$.

    Returns:
      $c\in[0,\infty)$, or `math.inf` on collapse.

    Raises:
      ValueError: bad shapes or values, or a null-space residual above `target` (no $c$ meets
        the constraint).

    Example:
      >>> d, z = np.array([1.0, 2.0]), np.array([3.0, 4.0])
      >>> c = mobahi_constant(z, d, 1.0)
      >>> bool(np.isclose(np.linalg.norm(c * z / (c + d)), 1.0))
      True
      >>> mobahi_constant(np.array([0.6, 0.8]), d, 1.0)  # ||z|| = target: collapse
      inf
    """
    z = np.asarray(z, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    if z.ndim != 1 or d.shape != z.shape:
        raise ValueError(f"z and d must be 1-d of the same length, got {z.shape} and {d.shape}")
    if not np.isfinite(z).all():
        raise ValueError("z must be finite")
    if not (np.isfinite(d).all() and (d >= 0).all() and (d > 0).any()):
        raise ValueError(f"d must be finite and >= 0 with a positive entry, got {d.tolist()}")
    target = float(target)
    if not (target > 0.0 and math.isfinite(target)):
        raise ValueError(f"target must be a finite number > 0, got {target!r}")
    return _mobahi_solve(z, d, target)


def _mobahi_solve(z: np.ndarray, d: np.ndarray, target: float) -> float:
    r = float(np.linalg.norm(z)) / target
    if r <= 1.0 + _COLLAPSE_ULPS * np.finfo(float).eps:
        return math.inf
    null = d == 0
    null_resid = float(np.linalg.norm(z[null]))
    if null_resid > target:
        raise ValueError(
            f"the kernel's null space leaves a residual {null_resid:.6g} > target {target:.6g}: "
            "no c meets the constraint"
        )
    zp, dp = z[~null], d[~null]
    dmax = float(dp.max())
    dmin = 0.0 if null.any() else float(dp.min())

    def resid(c):  # the null-space coordinates keep their full residual whatever c is
        return math.hypot(null_resid, float(np.linalg.norm(c * zp / (c + dp)))) - target

    hi = dmax / (r - 1.0) * (1.0 + 1e-9)
    if resid(hi) <= 0.0:  # true residual >= 0 at hi: hi meets the constraint to rounding
        return hi
    if dmin > 0.0:
        lo = dmin / (r - 1.0) * (1.0 - 1e-9)
        if resid(lo) >= 0.0:  # true residual <= 0 at lo: likewise
            return lo
        lc = brentq(
            lambda u: resid(math.exp(u)),
            math.log(lo),
            math.log(hi),
            xtol=1e-15,
            rtol=4 * np.finfo(float).eps,
            maxiter=500,
        )
        return math.exp(lc)
    return brentq(resid, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)


def mobahi_rounds(
    kernel, y, eps: float, max_rounds: int = 100, *, eig_tol: float | None = None
) -> MobahiRounds:
    r"""Constrained pure self-distillation (Mobahi, Farajtabar & Bartlett 2020).

    Round $t$ solves $\min_f R(f)$ s.t. $\frac1n\|f(X)-y_t\|^2\le\epsilon$; its training
    predictions are $y_{t+1}$. In the eigenbasis of $G=\mathbf K/n$ ($z_t=V^\top y_t$),
    $z_{t+1}=d/(c_t+d)\odot z_t$ where $c_t$ is the root of
    $\sum_k(c\,z_{t,k}/(c+d_k))^2=n\epsilon$ (unique iff $\|y_t\|^2>n\epsilon$), found by Brent's
    method on the bracket $[d_{\min}/(r_t-1),\,d_{\max}/(r_t-1)]$, $r_t=\|y_t\|/\sqrt{n\epsilon}$.
    When $\|y_t\|^2\le n\epsilon$ the zero function is feasible and optimal: **collapse**.

    The setting is recalled from the paper (hypothesis, not checked against the PDF); the root
    bracket and the collapse-round bounds $r_0-1\le t^\star\le r_0^2$ are derived
    (`docs/theory/krr.md`).

    Args:
      kernel: n x n PSD Gram matrix $g(x_j,x_k)$ (unnormalised; divided by n here).
      y: targets, shape (n,).
      eps: the mean-squared-error budget $\epsilon>0$.
      max_rounds: rounds to run at most (>= 1).
      eig_tol: eigenvalue clipping threshold (see `spectral_decomposition`; here eigenvalues
        up to `eig_tol` count as the kernel's null space).

    Returns:
      A `MobahiRounds`.

    Raises:
      ValueError: bad arguments, or `eps` below the residual of the kernel's null space (the
        constraint is then infeasible).

    Example:
      >>> res = mobahi_rounds(np.diag([4.0, 2.0, 1.0]) * 3, np.array([3.0, 2.0, 1.0]), 0.1, 50)
      >>> bool(np.all(np.diff(res.c) > 0)) and res.collapse_round is not None
      True
    """
    eps_v = float(eps)
    if not (eps_v > 0.0 and math.isfinite(eps_v)):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    max_rounds = check_positive_int(max_rounds, "max_rounds")
    d_raw, v, _ = spectral_decomposition(kernel, eig_tol, clip_small=True)
    n = d_raw.shape[0]
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (n,) or not np.isfinite(y).all():
        raise ValueError(f"y must be a finite vector of shape ({n},), got shape {y.shape}")
    if not (d_raw > 0).any():
        raise ValueError("kernel must have a positive eigenvalue, got the zero matrix")
    d = d_raw / n
    target = math.sqrt(n * eps_v)
    z = v.T @ y
    null = d == 0
    null_resid = float(np.linalg.norm(z[null]))
    if null_resid > target:
        raise ValueError(
            f"eps = {eps!r} is infeasible: the kernel's null space leaves a residual "
            f"{null_resid**2 / n:.3g} > eps"
        )
    b = np.ones(n)
    cs, zs, bs = [], [z], [b]
    collapse = None
    for t in range(max_rounds):
        zt = zs[-1]
        c = _mobahi_solve(zt, d, target)
        if math.isinf(c):  # ||y_t||^2 <= n eps: the zero function
            collapse = t
            zs.append(np.zeros(n))
            bs.append(np.zeros(n))
            break
        fac = d / (c + d)
        cs.append(c)
        zs.append(fac * zt)
        bs.append(fac * bs[-1])
    zs_a = np.array(zs)
    b_a = np.array(bs)
    pos = d > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = b_a.sum(1) ** 2 / (b_a**2).sum(1)
        ratio = b_a[:, 0] / b_a[:, np.flatnonzero(pos)[-1]]
    return MobahiRounds(
        c=np.array(cs),
        predictions=zs_a @ v.T,
        norms=np.linalg.norm(zs_a, axis=1),
        collapse_round=collapse,
        r0=float(np.linalg.norm(y)) / target,
        kappa=float(d[pos].max() / d[pos].min()),
        eigenvalues=d,
        shrinkage=b_a,
        effective_dim=eff,
        ratio_top_bottom=ratio,
    )


def distillation_grid(kernel, y, lam: float, alphas, steps: int) -> np.ndarray:
    r"""Training predictions for a grid of constant alphas x steps 1..`steps`, one Cholesky.

    Constant-$\alpha$ predictions are polynomials in $P=\mathbf K(\mathbf K+\lambda I)^{-1}$:
    $\hat y^{(\tau)}=(1-\alpha)^{\tau-1}P^\tau y+\alpha\sum_{i=1}^{\tau-1}(1-\alpha)^{i-1}P^iy$
    (the closed sum of `KernelSelfDistillation` with $A\to P$). The Krylov vectors
    $u_i=P^iy$ come from one Cholesky factorisation, $Pv=v-\lambda(\mathbf K+\lambda I)^{-1}v$,
    and $P$ has spectrum in $[0,1)$, so the powers are stable. Cost: one ridge factorisation plus
    `steps` pairs of triangular solves and a `(len(alphas) * steps) x steps` by `steps x n`
    product; no eigendecomposition. Use `KernelSelfDistillation` for new points, per-step alpha,
    the limit or the shrinkage diagonals.

    Args:
      kernel: n x n PSD Gram matrix; y: (n,) targets; lam > 0.
      alphas: the constant ground-truth weights (any finite reals).
      steps: the last step (int >= 1).

    Returns:
      Array of shape `(len(alphas), steps, n)`: `out[i, t - 1]` is $\hat y^{(t)}$ at alpha
      `alphas[i]`.

    Example:
      >>> rng = np.random.default_rng(0)
      >>> x = rng.standard_normal((30, 4)); K = x @ x.T; y = rng.standard_normal(30)
      >>> g = distillation_grid(K, y, 0.5, [0.0, 0.3], 6)
      >>> bool(np.allclose(g[1], KernelSelfDistillation(K, y, 0.5).predict_path(6, 0.3)))
      True
    """
    lam = _check_lam(lam)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    k = np.asarray(kernel, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or y.shape != (k.shape[0],):
        raise ValueError(f"kernel must be n x n and y of shape (n,), got {k.shape} and {y.shape}")
    al = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if al.ndim != 1 or not np.isfinite(al).all():
        raise ValueError(f"alphas must be a 1-D sequence of finite numbers, got {alphas!r}")
    reg = k.copy()
    reg.flat[:: k.shape[0] + 1] += lam
    fac = cho_factor(reg, lower=True, check_finite=False)
    u = np.empty((steps, k.shape[0]))
    prev = y
    for i in range(steps):
        prev = prev - lam * cho_solve(fac, prev, check_finite=False)
        u[i] = prev
    # coefficients C[a, tau-1, i-1] of u_i in the closed sum
    tau = np.arange(1, steps + 1)[:, None]
    i = np.arange(1, steps + 1)[None, :]
    one_m = (1.0 - al)[:, None, None]
    with np.errstate(invalid="ignore"):
        inner = al[:, None, None] * one_m ** (i - 1)
    coef = np.where(i < tau, inner, 0.0) + np.where(i == tau, one_m ** (tau - 1), 0.0)
    return coef @ u


def ridge_predict(kernel, y, lam: float, kernel_eval=None) -> np.ndarray:
    r"""Plain kernel ridge by a linear solve: $\mathbf K_{x,X}(\mathbf K+\lambda I)^{-1}y$.

    A reference for tests and benchmarks (the brute-force building block).
    """
    lam = _check_lam(lam)
    k = np.asarray(kernel, dtype=np.float64)
    coef = np.linalg.solve(k + lam * np.eye(k.shape[0]), y)
    return (k if kernel_eval is None else np.asarray(kernel_eval, dtype=np.float64)) @ coef


def iterative_refits(kernel, y, lam: float, steps: int, alpha, kernel_eval=None) -> np.ndarray:
    r"""Brute force: refit ridge `steps` times by linear solves; rows are steps 1..`steps`.

    Step $\tau$ solves $(\mathbf K+\lambda I)w=\alpha_\tau y+(1-\alpha_\tau)\hat y^{(\tau-1)}$ and
    predicts $\mathbf Kw$ (or $\mathbf K_{x,X}w$). This is the notebook's recursion verbatim, a
    fresh solve per step; it is the reference the closed forms are tested against.

    Args:
      alpha: scalar or the sequence $\alpha_2..\alpha_{\text{steps}}$.
    """
    lam = _check_lam(lam)
    k = np.asarray(kernel, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    al = np.full(steps - 1, float(alpha)) if np.ndim(alpha) == 0 else np.asarray(alpha, float)
    if al.shape != (steps - 1,):
        raise ValueError(f"alpha must be a scalar or have length {steps - 1}, got {al.shape}")
    reg = k + lam * np.eye(k.shape[0])
    ke = k if kernel_eval is None else np.asarray(kernel_eval, dtype=np.float64)
    out = []
    prev = y
    for tau in range(1, steps + 1):
        tgt = y if tau == 1 else al[tau - 2] * y + (1.0 - al[tau - 2]) * prev
        w = np.linalg.solve(reg, tgt)
        prev = k @ w
        out.append(ke @ w)
    return np.array(out)
