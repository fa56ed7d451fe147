r"""Capacity-limited students: exponential families fitted by M-projection, projected recursion.

Simulation only: no theorem is claimed for the projected recursion (`docs/theory/meta.md`, §4).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize
from scipy.special import logsumexp

from ...core import log_softmax, total_variation
from ...core._checks import as_log_probs, check_positive_int
from ._common import log_probs
from ._operators import AnchoredOperator


class ExponentialFamily:
    r"""Log-linear student family $q_\theta \propto h\,e^{T\theta}$, fitted by moment matching.

    The M-projection $\arg\min_\theta \mathrm{KL}(m\|q_\theta)$ is the $\theta$ with
    $\mathbb E_{q_\theta}[T] = \mathbb E_m[T]$; `fit` solves these moment equations by damped
    Newton (Jacobian = covariance of $T$ under $q_\theta$).

    Args:
      statistics: (k, r) sufficient statistics $T$, one row per outcome.
      base_log_measure: (k,) $\log h$; zeros if None.

    Example:
      >>> fam = ExponentialFamily.discretized_gaussian(9)
      >>> lm = np.log(np.full(9, 1 / 9))
      >>> bool(np.allclose(fam.moments(fam.project(lm)), fam.moments(lm)))
      True
    """

    def __init__(self, statistics, base_log_measure=None):
        t = np.asarray(statistics, dtype=np.float64)
        if t.ndim != 2 or not np.isfinite(t).all():
            raise ValueError(f"statistics must be a finite (k, r) matrix, got shape {t.shape}")
        self.statistics = t
        k = t.shape[0]
        if base_log_measure is None:
            base_log_measure = np.zeros(k)
        h = np.asarray(base_log_measure, dtype=np.float64)
        if h.shape != (k,) or not np.isfinite(h).all():
            raise ValueError(f"base_log_measure must be finite with shape ({k},), got {h.shape}")
        self.base = h

    @classmethod
    def discretized_gaussian(cls, k: int) -> ExponentialFamily:
        """Unimodal family on ordered outcomes: statistics $(y, y^2)$, $y$ evenly in $[-1, 1]$."""
        y = np.linspace(-1.0, 1.0, check_positive_int(k, "k", minimum=3))
        return cls(np.stack([y, y**2], axis=1))

    @property
    def dim(self) -> int:
        return self.statistics.shape[1]

    def log_probs(self, theta) -> np.ndarray:
        """$\\log q_\\theta$."""
        z = self.base + self.statistics @ np.asarray(theta, dtype=np.float64)
        return log_softmax(z)

    def moments(self, log_p) -> np.ndarray:
        r"""$\mathbb E_p[T]$."""
        lp = as_log_probs(log_p, "log_p")
        return np.exp(lp) @ self.statistics

    def _check_target(self, log_m) -> np.ndarray:
        lm = log_probs(log_m, "log_m")
        if lm.shape != self.base.shape:
            raise ValueError(f"log_m must have shape {self.base.shape}, got {lm.shape}")
        return lm

    def fit(self, log_m, theta0=None, tol: float = 1e-11, max_iter: int = 200) -> np.ndarray:
        r"""Natural parameters of the M-projection of $m$, by moment matching.

        Damped Newton on the moment equations; stops when $\max|\mathbb E_q[T]-\mathbb E_m[T]|
        \le$ `tol`$\cdot(1+\max|\mathbb E_m[T]|)$, or at the rounding floor (no step reduces
        the residual any more while it is below $10^{-8}$ relative).
        """
        lm = self._check_target(log_m)
        mu = np.exp(lm) @ self.statistics
        th = np.zeros(self.dim) if theta0 is None else np.array(theta0, dtype=np.float64)
        scale = 1.0 + np.abs(mu).max()

        def residual(th):
            return np.exp(self.log_probs(th)) @ self.statistics - mu

        resid = residual(th)
        for _ in range(max_iter):
            err = np.abs(resid).max()
            if err <= tol * scale:
                return th
            q = np.exp(self.log_probs(th))
            tc = self.statistics - q @ self.statistics
            cov = (tc * q[:, None]).T @ tc
            step = np.linalg.lstsq(cov, -resid, rcond=None)[0]
            s = 1.0
            while s > 1e-10:  # backtrack until the moment residual shrinks
                new = residual(th + s * step)
                if np.abs(new).max() < err:
                    break
                s *= 0.5
            else:
                if err <= 1e-8 * scale:
                    return th  # rounding floor reached
                break
            th, resid = th + s * step, new
        raise RuntimeError(
            f"moment matching did not converge (residual {np.abs(resid).max():.2e}); the "
            "target's moments may lie on the boundary of the family's moment set"
        )

    def project(self, log_m, theta0=None) -> np.ndarray:
        r"""$\Pi_{\mathcal Q}(m) = \arg\min_{q \in \mathcal Q}\mathrm{KL}(m\|q)$ in log space."""
        return self.log_probs(self.fit(log_m, theta0))


class LowRankSoftmax(ExponentialFamily):
    r"""Softmax over a rank-$r$ logit subspace, $q_\theta = \mathrm{softmax}(b + U\theta)$.

    Fitted by KL minimisation.

    `fit` minimises $\mathrm{KL}(m\|q_\theta)$ over $\theta \in \mathbb R^r$ with scipy's
    `trust-exact` (exact gradient $U^\top(q_\theta - m)$ and Hessian), or by Newton steps on
    the KL from a warm start `theta0`. The family is log-linear,
    so the result must agree with moment matching (`ExponentialFamily.fit`); the tests check it.

    Args:
      basis: (k, r) matrix $U$ spanning the logit subspace.
      bias: (k,) base logits $b$; zeros if None.
    """

    @classmethod
    def random(cls, k: int, rank: int, rng: np.random.Generator) -> LowRankSoftmax:
        """A Gaussian basis $U \\in \\mathbb R^{k\\times r}$ (columns scaled by $1/\\sqrt r$)."""
        k = check_positive_int(k, "k", minimum=2)
        if not (1 <= check_positive_int(rank, "rank") < k):
            raise ValueError(f"rank must satisfy 1 <= rank < k={k}, got {rank!r}")
        return cls(rng.standard_normal((k, rank)) / np.sqrt(rank))

    def __init__(self, basis, bias=None):
        super().__init__(basis, bias)

    def fit(self, log_m, theta0=None, tol: float = 1e-12, max_iter: int = 500) -> np.ndarray:
        lm = self._check_target(log_m)
        m = np.exp(lm)
        u = self.statistics

        def f(th):  # KL(m || q_theta) up to the constant -H(m)
            z = self.base + u @ th
            return float(logsumexp(z) - m @ z)

        def grad(th):
            return u.T @ (np.exp(self.log_probs(th)) - m)

        def hess(th):
            q = np.exp(self.log_probs(th))
            uc = u - q @ u
            return (uc * q[:, None]).T @ uc

        scale = 1.0 + np.abs(m @ u).max()
        if theta0 is not None:
            # warm start (the recursion's previous fit): Newton steps on the KL, which converge
            # quadratically from nearby; fall back to the trust region if they do not
            th = np.asarray(theta0, dtype=np.float64).copy()
            for _ in range(8):
                g = grad(th)
                if np.abs(g).max() <= tol * scale:
                    return th
                th = th - np.linalg.lstsq(hess(th), g, rcond=None)[0]
            if np.abs(grad(th)).max() <= tol * scale:
                return th
        th0 = np.zeros(self.dim) if theta0 is None else np.asarray(theta0, dtype=np.float64)
        res = optimize.minimize(
            f,
            th0,
            jac=grad,
            hess=hess,
            method="trust-exact",
            options={"gtol": tol, "maxiter": max_iter},
        )
        # The objective's rounding floor (eps * KL) stops the trust region once the gradient is
        # ~1e-8; finish with plain Newton steps on the stationarity condition, which do not need
        # the objective to resolve changes below eps.
        th = res.x
        for _ in range(5):
            g = grad(th)
            if np.abs(g).max() <= tol * scale:
                break
            th = th - np.linalg.lstsq(hess(th), g, rcond=None)[0]
        if np.abs(grad(th)).max() > 1e-9 * scale:
            raise RuntimeError(f"KL minimisation did not converge: {res.message}")
        return th


def projected_iterates(
    op: AnchoredOperator, family: ExponentialFamily, log_q0, n: int
) -> np.ndarray:
    r"""Capacity-limited recursion $q_{k+1} = \Pi_{\mathcal Q}(\Phi_\lambda(p_0, q_k))$.

    The start is projected too: $q_0 = \Pi_{\mathcal Q}(q_0)$. Returns $(n+1, k)$ log-probs.
    Simulation only: no theorem is claimed for this recursion (`docs/theory/meta.md`, §4).
    """
    n = check_positive_int(n, "n", minimum=0)
    th = family.fit(log_q0)
    out = [family.log_probs(th)]
    for _ in range(n):
        th = family.fit(op(out[-1]), theta0=th)
        out.append(family.log_probs(th))
    return np.stack(out)


def projected_fixed_point(
    op: AnchoredOperator,
    family: ExponentialFamily,
    log_q0=None,
    tol: float = 1e-11,
    max_iter: int = 20000,
) -> tuple[np.ndarray, int]:
    r"""Iterate `projected_iterates` until $\mathrm{TV}(q_{k+1}, q_k) \le$ `tol`.

    Returns:
      `(log_q_star, iterations)`.

    Raises:
      RuntimeError: if `max_iter` iterations do not reach `tol`.
    """
    if op.lam == 0.0:
        raise ValueError("lam must be > 0: at lam=0 every member of the family is a fixed point")
    lq = family.log_probs(np.zeros(family.dim)) if log_q0 is None else log_q0
    th = family.fit(lq)
    q = family.log_probs(th)
    for it in range(1, max_iter + 1):
        th = family.fit(op(q), theta0=th)
        q_new = family.log_probs(th)
        if float(total_variation(q, q_new)) <= tol:
            return q_new, it
        q = q_new
    raise RuntimeError(f"no fixed point within tol={tol} after max_iter={max_iter} iterations")
