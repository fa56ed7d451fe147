r"""The filter maths shared by every kernel self-distillation class (numpy, float64).

With $a=d/(d+\lambda)$ per eigenvalue $d$, the training predictions after step τ are
$V\mathrm{diag}(b^{(\tau)})V^\top y$ with $b^{(1)}=a$ and
$b^{(\tau)}=a(\alpha_\tau+(1-\alpha_\tau)b^{(\tau-1)})$. The dual factor is
$g^{(\tau)}=b^{(\tau)}/d$, finite at $d=0$. `SpectralSelfDistillation` computes $b$ and $g$
for any step, α and the limit from the `eigenvalues` and `lam` of its subclass: the full
kernel (`sdtheory.theory.krr.KernelSelfDistillation`) or the d x d feature Gram
(`sdtheory.theory.krr_scale.LowRankSelfDistillation`). Derivations: `docs/theory/krr.md`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SpectralSelfDistillation", "spectral_decomposition"]

_SYMMETRY_RTOL = 1e-8


def _check_lam(lam) -> float:
    v = float(lam)
    if not (v > 0.0 and math.isfinite(v)):
        raise ValueError(f"lam must be a finite number > 0, got {lam!r}")
    return v


def check_gram(kernel) -> np.ndarray:
    """`kernel` as a float64 array, checked to be square, non-empty, finite and symmetric (to a
    relative 1e-8 of its largest entry)."""
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] == 0:
        raise ValueError(f"kernel must be a non-empty square matrix, got shape {k.shape}")
    if not np.isfinite(k).all():
        raise ValueError("kernel must be finite, got NaN or inf entries")
    scale = float(np.max(np.abs(k))) or 1.0
    asym = float(np.max(np.abs(k - k.T)))
    if asym > _SYMMETRY_RTOL * scale:
        raise ValueError(f"kernel must be symmetric, got max |K - K^T| = {asym:.3g}")
    return k


def spectral_decomposition(kernel, eig_tol: float | None = None, *, clip_small: bool = False):
    r"""Eigendecomposition of a symmetric PSD Gram matrix with explicit clipping.

    Eigenvalues are returned in **descending** order. `numpy.linalg.eigh` computes each
    eigenvalue to an absolute error of about $n\,\epsilon_{64}\max_k|d_k|$ (the default
    `eig_tol`), so a PSD matrix that is (nearly) singular yields tiny eigenvalues of either sign.
    The rule is explicit:

    - $d_k<-$`eig_tol`: the matrix is not PSD; `ValueError`.
    - $-$`eig_tol`$\le d_k<0$: set to exactly 0 (rounding noise of a zero eigenvalue).
    - $0\le d_k\le$`eig_tol`: kept as computed, unless `clip_small` (then set to 0 as well).
      Kept is right for ridge-type filters $d/(d+\lambda)$, which are continuous at 0 (clipping
      them would move the predictions by up to `eig_tol`$/\lambda$); `mobahi_rounds` clips them,
      because its constraint must know the kernel's numerical null space.

    Args:
      kernel: the n x n Gram matrix (symmetric up to a relative 1e-8; it is symmetrised).
      eig_tol: the clipping threshold; `None` for the default above.
      clip_small: also set eigenvalues in $[0,$ `eig_tol`$]$ to 0.

    Returns:
      `(eigenvalues, eigenvectors, n_clipped)`: eigenvalues descending and non-negative,
      eigenvectors as columns, and how many eigenvalues were set to 0.

    Raises:
      ValueError: `kernel` not square, not finite, not symmetric, or with an eigenvalue below
        `-eig_tol`; `eig_tol` negative.

    Example:
      >>> d, v, n0 = spectral_decomposition(np.array([[1.0, 1.0], [1.0, 1.0]]), clip_small=True)
      >>> bool(np.allclose(d, [2.0, 0.0])) and d[1] == 0.0 and n0 == 1
      True
    """
    k = check_gram(kernel)
    d, v = np.linalg.eigh(0.5 * (k + k.T))
    d, v = d[::-1].copy(), v[:, ::-1].copy()
    if eig_tol is None:
        eig_tol = k.shape[0] * np.finfo(np.float64).eps * max(float(np.max(np.abs(d))), 1e-300)
    elif not (float(eig_tol) >= 0.0):
        raise ValueError(f"eig_tol must be >= 0, got {eig_tol!r}")
    if d[-1] < -eig_tol:
        raise ValueError(
            f"kernel must be positive semi-definite, got eigenvalue {d[-1]:.3g} < -eig_tol "
            f"= {-eig_tol:.3g}"
        )
    small = (d < 0) | ((d <= eig_tol) & clip_small)
    d[small] = 0.0
    return d, v, int(small.sum())


class SpectralSelfDistillation:
    r"""Shrinkage $b^{(\tau)}$, dual factors $g^{(\tau)}$, the limit and the rate, in an eigenbasis.

    A base class. Subclasses set `eigenvalues` (descending, non-negative), `lam`, `_a`
    $=d/(d+\lambda)$, `_one_minus_a` $=\lambda/(d+\lambda)$, and the property `n` (the number
    of training points, used to check `kernel_eval`).
    """

    eigenvalues: np.ndarray
    lam: float
    _a: np.ndarray
    _one_minus_a: np.ndarray

    @property
    def n(self) -> int:
        raise NotImplementedError

    def _alphas(self, step, alpha) -> tuple[float | None, np.ndarray | None]:
        """(constant alpha, None) or (None, array of alpha_2..alpha_step)."""
        if np.ndim(alpha) == 0:
            a = float(alpha)
            if not math.isfinite(a):
                raise ValueError(f"alpha must be finite, got {alpha!r}")
            if step == math.inf and not (0.0 <= a <= 1.0):
                raise ValueError(f"alpha must lie in [0, 1] for step=inf, got {alpha!r}")
            return a, None
        if step == math.inf:
            raise ValueError("alpha must be a scalar for step=inf (the limit of a constant alpha)")
        arr = np.asarray(alpha, dtype=np.float64)
        if arr.ndim != 1 or arr.shape[0] != step - 1:
            raise ValueError(
                f"alpha must be a scalar or a sequence of alpha_2..alpha_step of length "
                f"{step - 1}, got shape {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"alpha must be finite, got {alpha!r}")
        return None, arr

    @staticmethod
    def _check_step(step):
        if step == math.inf:
            return math.inf
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
            raise ValueError(f"step must be an int >= 1 or math.inf, got {step!r}")
        return int(step)

    def _b_constant(self, tau: np.ndarray, alpha: float) -> np.ndarray:
        r"""$b^{(\tau)}$ for constant alpha; `tau` an int array (>= 0), result `tau.shape + (n,)`.

        Closed sum $\alpha a\,(1-q^{\tau-1})/(1-q)+(1-\alpha)^{\tau-1}a^\tau$ with $q=(1-\alpha)a$,
        and $1-q=(\lambda+\alpha d)/(d+\lambda)$ computed without cancellation. $\tau=0$ gives 1
        (the step-0 "prediction" is $y$ itself).
        """
        tau = np.asarray(tau, dtype=np.float64)[..., None]
        a, d, lam = self._a, self.eigenvalues, self.lam
        one_minus_q = (lam + alpha * d) / (d + lam)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            log_q = np.log1p(-one_minus_q)  # -inf where q = 0
            geo = -np.expm1((tau - 1.0) * log_q) / one_minus_q  # sum_{i<tau-1} q^i
            q = (1.0 - alpha) * a  # q < 0 for alpha > 1: integer powers, 1 - q > 1 (no NaN)
            geo = np.where(q < 0.0, (1.0 - np.power(q, tau - 1.0)) / one_minus_q, geo)
            geo = np.where(tau >= 2.0, geo, 0.0)  # empty sum for tau = 1
            lead = np.power(1.0 - alpha, np.maximum(tau - 1.0, 0.0)) * np.power(a, tau)
            b = alpha * a * geo + lead
        return np.where(tau == 0.0, 1.0, b)

    def _b_sequence(self, alphas: np.ndarray) -> np.ndarray:
        """All $b^{(1)}..b^{(step)}$ for per-step alphas; shape (step, n)."""
        out = np.empty((alphas.shape[0] + 1, self.eigenvalues.shape[0]))
        out[0] = self._a
        for i, al in enumerate(alphas, start=1):
            out[i] = self._a * (al + (1.0 - al) * out[i - 1])
        return out

    def _b_limit(self, alpha: float) -> np.ndarray:
        d = self.eigenvalues
        return alpha * d / (alpha * d + self.lam)

    def shrinkage(self, step, alpha) -> np.ndarray:
        r"""The diagonal of $B^{(\text{step})}$ in the eigenbasis (order of `eigenvalues`).

        $\hat y^{(\tau)}=V\,\mathrm{diag}(b^{(\tau)})V^\top y$. For `step=math.inf`,
        $b^{(\infty)}_k=\alpha d_k/(\alpha d_k+\lambda)$ (derived; the notebook's `B_lim`).

        Args:
          step: int >= 1 or `math.inf`.
          alpha: scalar, or the sequence $\alpha_2..\alpha_{\text{step}}$.

        Example:
          >>> from sdtheory.theory.krr import KernelSelfDistillation
          >>> sd = KernelSelfDistillation(np.diag([3.0, 1.0]), np.ones(2), lam=1.0)
          >>> bool(np.allclose(sd.shrinkage(2, 0.0), [0.75**2, 0.5**2]))
          True
        """
        step = self._check_step(step)
        const, seq = self._alphas(step, alpha)
        if step == math.inf:
            return self._b_limit(const)
        if seq is not None:
            return self._b_sequence(seq)[-1]
        return self._b_constant(np.asarray(step), const)

    def shrinkage_path(self, steps: int, alpha) -> np.ndarray:
        """Rows $b^{(1)}..b^{(\\text{steps})}$, shape `(steps, n)`; `alpha` scalar or sequence."""
        steps = self._check_step(steps)
        if steps == math.inf:
            raise ValueError("steps must be a finite int >= 1 for shrinkage_path, got inf")
        const, seq = self._alphas(steps, alpha)
        if seq is not None:
            return self._b_sequence(seq)
        return self._b_constant(np.arange(1, steps + 1), const)

    def _dual_factor(self, step, alpha) -> np.ndarray:
        r"""$g$ with $f^{(\tau)}(x)=\mathbf k_x^\top V\mathrm{diag}(g)V^\top y$ and $b=d\,g$.

        $g^{(\tau)}=(\alpha_\tau+(1-\alpha_\tau)b^{(\tau-1)})/(d+\lambda)$, finite even where
        $d_k=0$ (unlike $b/d$).
        """
        step = self._check_step(step)
        const, seq = self._alphas(step, alpha)
        d, lam = self.eigenvalues, self.lam
        if step == math.inf:
            return const / (const * d + lam)
        if step == 1:
            return 1.0 / (d + lam)
        if seq is not None:
            prev, al = self._b_sequence(seq[:-1])[-1], seq[-1]
        else:
            prev, al = self._b_constant(np.asarray(step - 1), const), const
        return (al + (1.0 - al) * prev) / (d + lam)

    def _check_kernel_eval(self, kernel_eval) -> np.ndarray:
        ke = np.asarray(kernel_eval, dtype=np.float64)
        if ke.ndim != 2 or ke.shape[1] != self.n:
            raise ValueError(f"kernel_eval must have shape (m, {self.n}), got shape {ke.shape}")
        if not np.isfinite(ke).all():
            raise ValueError("kernel_eval must be finite, got NaN or inf entries")
        return ke

    def convergence_rate(self, alpha: float) -> float:
        r"""Geometric rate $\rho=|1-\alpha|\,a_{\max}$, $a_{\max}=d_{\max}/(d_{\max}+\lambda)$.

        $B^{(\tau)}-B^{(\infty)}=((1-\alpha)A)^{\tau-1}(A-B^{(\infty)})$ (derived, see
        `sdtheory.symbolic.krr.prove_rate`), so $\|B^{(\tau)}-B^{(\infty)}\|_2$ decays like
        $\rho^{\tau}$.

        Example:
          >>> from sdtheory.theory.krr import KernelSelfDistillation
          >>> sd = KernelSelfDistillation(np.diag([3.0, 1.0]), np.ones(2), lam=1.0)
          >>> bool(np.isclose(sd.convergence_rate(0.5), 0.5 * 0.75))
          True
        """
        al = float(alpha)
        if not (0.0 <= al <= 1.0):
            raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
        return abs(1.0 - al) * float(self._a.max())


def _scale(coef: np.ndarray, z: np.ndarray) -> np.ndarray:
    return coef * z if z.ndim == 1 else coef[:, None] * z


def _greedy_alpha(p: np.ndarray, r: np.ndarray, t: np.ndarray, constrain: bool) -> float:
    r"""$\arg\min_\alpha\|t-p-\alpha r\|^2=\langle r,t-p\rangle/\|r\|^2$ (clipped to [0, 1]
    with `constrain`); 1.0 where r is below the rounding level of $p$ and $p+r$ (flat loss)."""
    rr = float(np.sum(r * r))
    floor = 1e-12 * (float(np.linalg.norm(p)) + float(np.linalg.norm(r + p)))
    al = 1.0 if rr <= floor * floor else float(np.sum(r * (t - p))) / rr
    return min(1.0, max(0.0, al)) if constrain else al
