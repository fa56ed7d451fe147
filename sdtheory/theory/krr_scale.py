r"""Kernel self-distillation at scale: exact low-rank closed forms, a certified Nyström path, and
preconditioned conjugate gradients (numpy/scipy, float64).

`sdtheory.theory.krr.KernelSelfDistillation` needs one `eigh` of the n x n Gram matrix, which
is about an hour and 12.8 GB at n = 40,000. The classes here keep its API: any `step` (int or
`math.inf`), `alpha` scalar or the sequence $\alpha_2..\alpha_{\text{step}}$, `predict`,
`predict_path`, `shrinkage`, `shrinkage_path`, `convergence_rate`, `optimal_alpha`, and new
points. They do so where the Gram matrix cannot be decomposed, or even stored:

- `LowRankSelfDistillation` (`KernelSelfDistillation.from_features`): the **exact** closed
  forms for the linear kernel $\mathbf K=\Phi\Phi^\top$ of features $\Phi\in\mathbb R^{n\times d}$.
  They come from the d x d Gram $\Phi^\top\Phi$ in $O(nd^2+d^3)$.
- `NystromSelfDistillation` (`KernelSelfDistillation.nystrom`): the same closed forms for a
  rank-m Nyström approximation $\tilde{\mathbf K}=FF^\top\preceq\mathbf K$ of an implicit kernel
  (randomly pivoted Cholesky: $nm$ kernel entries and $O(nm^2)$ work). Each prediction comes
  with an **a-posteriori certificate** on its distance to the exact one: `certificate`,
  `certificate_path`.
- `pcg_self_distillation`: the exact predictor at one (α, steps) by conjugate gradients,
  preconditioned with the Nyström factor. It uses matrix-free kernel products, and the same
  certificate is computed from its true residuals.

**The certificate [derived: `docs/theory/krr.md` §6, constants proved in
`sdtheory.symbolic.krr_scale`].** Let $P=\mathbf K(\mathbf K+\lambda I)^{-1}$, and let
$\tilde y^{(j)}$, $\tilde t^{(j)}$ be the computed predictions and blended targets. Take
$\tilde u^{(j)}=(\tilde t^{(j)}-\tilde y^{(j)})/\lambda$ and the true residual
$g^{(j)}=\mathbf K\tilde u^{(j)}-\tilde y^{(j)}$. Then exactly

$$\hat y^{(\tau)}-\tilde y^{(\tau)}=\sum_{j\le\tau}\beta_{\tau j}P^{\tau-j}(I-P)g^{(j)},
\qquad \beta_{\tau j}=\prod_{l=j+1}^{\tau}(1-\alpha_l),$$

and $\|P^i(I-P)\|\le c_i=i^i/(i+1)^{i+1}$. When $g=Eu+\delta$ with
$0\preceq E=\mathbf K-\tilde{\mathbf K}\preceq\mathbf K$, also
$\|P^i(I-P)Eu\|\le\sqrt\lambda\,\kappa_i\sqrt{u^\top Eu}$ with
$\kappa_i^2=(2i+1)^{2i+1}/(2i+2)^{2i+2}$. The certificate adds, over $j$,
$|\beta_{\tau j}|\min(c_i\|g\|,\ \sqrt\lambda\kappa_i\sqrt{u^\top Eu}+c_i\|\delta\|)$ with $i=\tau-j$.
`kind="residual"` computes $\mathbf K\tilde u$ exactly: one blocked pass over the kernel for all
steps and α, which is $O(n^2)$ time and $O(n)$ memory. `kind="trace"` replaces $\|Eu\|$ and
$u^\top Eu$ by their bounds from $\operatorname{tr}E$, the discarded spectrum, at $O(nm)$.
It is looser, by the effective rank of $E$.

Kernel operators (`DenseKernel`, `BlockKernel`, and the torch one in `sdtheory.lm.krr_scale`)
are described in `sdtheory.theory._kernel_ops`; the kernels are `RBF` and `Laplace`.

References:
  Chen, Epperly, Tropp & Webber, *Randomly pivoted Cholesky: practical approximation of a kernel
  matrix with few entry evaluations* (2022), arXiv:2207.06503: the pivot rule used here
  (sampling proportional to the residual diagonal). Drawing a block of pivots from one residual
  is our simplification; the accelerated block version with rejection sampling is Epperly,
  Tropp & Webber (2024), arXiv:2410.03969.
  Frangella, Tropp & Udell, *Randomized Nyström preconditioning* (2023): Nyström factors as
  preconditioners for $\mathbf K+\lambda I$. Only the algorithms are taken from these papers.
  The bounds here are derived on the theory page.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.linalg import blas, lapack, solve_triangular

from ..core._checks import check_positive_int
from ._kernel_ops import RBF, BlockKernel, DenseKernel, Laplace
from ._krr_lowrank import _EPS, LowRankSelfDistillation, _check_y
from ._krr_spectral import SpectralSelfDistillation, _check_lam

__all__ = [
    "RBF",
    "BlockKernel",
    "DenseKernel",
    "IterativeResult",
    "Laplace",
    "LowRankSelfDistillation",
    "NystromFactor",
    "NystromSelfDistillation",
    "as_operator",
    "certificate_constants",
    "nystrom_factor",
    "pcg",
    "pcg_self_distillation",
]


def certificate_constants(steps: int) -> tuple[np.ndarray, np.ndarray]:
    r"""$c_i=\sup_{0\le x<1}x^i(1-x)$ and $\kappa_i=\sup_{0\le x<1}x^{i+1/2}(1-x)^{1/2}$, $i<$ steps.

    $c_0=1$, $c_i=i^i/(i+1)^{i+1}$ and $\kappa_i^2=(2i+1)^{2i+1}/(2i+2)^{2i+2}$: the norms of
    $P^i(I-P)$ and of $P^i(I-P)\mathbf K^{1/2}/\sqrt\lambda$ for any PSD $\mathbf K$ (proved in
    `sdtheory.symbolic.krr_scale.prove_certificate_constants`).

    Example:
      >>> c, k = certificate_constants(3)
      >>> bool(np.allclose(c, [1.0, 0.25, 4 / 27]) and np.isclose(k[0], 0.5))
      True
    """
    i = np.arange(steps, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.exp(np.where(i > 0, i * np.log(i), 0.0) - (i + 1.0) * np.log(i + 1.0))
    c[0] = 1.0
    kappa = np.exp(0.5 * ((2 * i + 1) * np.log(2 * i + 1) - (2 * i + 2) * np.log(2 * i + 2)))
    return c, kappa


# ============================================================================ Nyström


@dataclasses.dataclass(frozen=True)
class NystromFactor:
    r"""A Nyström factor $\tilde{\mathbf K}=FF^\top=\mathbf K_{XS}\mathbf K_{SS}^{-1}\mathbf K_{SX}$.

    Attributes:
      factor: F, shape (n, r); `factor[pivots]` is lower triangular.
      pivots: the landmark indices S, in the order they were taken.
      residual_diag: the diagonal of $E=\mathbf K-FF^\top$ (clipped at 0). Its sum
        $\operatorname{tr}E$ bounds $\|E\|_2$ because $E\succeq0$.
      rounding: $\eta=16\,n\,\epsilon\max_i\mathbf K_{ii}\,\hat\kappa(F_S)$, an allowance for
        the rounding that can leave $K-FF^\top$ indefinite. This is a model, not a proof;
        $\hat\kappa$ is LAPACK's 1-norm estimate of the pivot block's condition number. Over
        4,000 adversarial draws (condition numbers up to $10^{12}$, singular kernels), the most
        negative eigenvalue of $K-FF^\top$ was at most
        $1.02\,n\,\epsilon\max_i\mathbf K_{ii}\hat\kappa(F_S)$.
    """

    factor: np.ndarray
    pivots: np.ndarray
    residual_diag: np.ndarray
    rounding: float = 0.0

    @property
    def trace_residual(self) -> float:
        return float(np.sum(self.residual_diag))


def as_operator(kernel, x=None):
    """A kernel operator from an operator, an n x n matrix, or a kernel function and inputs."""
    if all(hasattr(kernel, a) for a in ("matmat", "columns", "diag", "n")):
        return kernel
    if callable(kernel):
        if x is None:
            raise ValueError("x must be given with a kernel function")
        return BlockKernel(kernel, x)
    return DenseKernel(kernel)


def nystrom_factor(
    kernel, rank: int, *, rng, x=None, method: str = "rpcholesky", block: int | None = None
) -> NystromFactor:
    r"""Rank-`rank` Nyström factor by (block) randomly pivoted Cholesky.

    Each round draws `block` new pivots without replacement, with probabilities proportional to
    the residual diagonal $\operatorname{diag}(\mathbf K-FF^\top)$ (`method="rpcholesky"`,
    Chen et al. 2022) or uniformly (`method="uniform"`, all pivots in one round). It then
    factors the residual block with LAPACK's pivoted Cholesky `dpstrf`, which drops pivots
    whose residual is below $64\epsilon\max_i\mathbf K_{ii}$ (rounding level), and appends
    $G_SL^{-\top}$, where $G_S$ are the residual columns. It stops early when every residual
    is at that level. The rank is then below `rank`, and the approximation is exact to
    rounding. Cost: `rank` kernel columns ($n\cdot$rank entries) and $O(n\,\text{rank}^2)$.

    Args:
      kernel: a kernel operator, an n x n matrix, or a kernel function with `x`.
      rank: the largest rank m >= 1.
      rng: a `numpy.random.Generator` or a seed.
      x: training inputs, when `kernel` is a kernel function.
      method: "rpcholesky" or "uniform".
      block: pivots per round (default `min(rank, 100)`).
    """
    op = as_operator(kernel, x)
    rank = check_positive_int(rank, "rank")
    if method not in ("rpcholesky", "uniform"):
        raise ValueError(f"method must be 'rpcholesky' or 'uniform', got {method!r}")
    rng = np.random.default_rng(rng)
    n, rank = op.n, int(min(rank, op.n))
    blk = rank if method == "uniform" else check_positive_int(block or min(rank, 100), "block")
    diag0 = np.asarray(op.diag(), dtype=np.float64)
    if diag0.shape != (n,) or not np.isfinite(diag0).all():
        raise ValueError("the kernel diagonal must be finite")
    scale = float(np.max(np.abs(diag0))) if n else 0.0
    if float(np.min(diag0)) < -n * _EPS * scale:
        raise ValueError(f"kernel must be PSD, got a diagonal entry {float(np.min(diag0)):.3g}")
    tol = 64 * _EPS * scale
    res = np.maximum(diag0, 0.0)
    f = np.zeros((n, rank), order="F")  # column blocks are contiguous
    piv: list[int] = []
    k = 0
    while k < rank:
        live = np.flatnonzero(res > tol)
        if live.shape[0] == 0:
            break
        b = min(blk, rank - k, live.shape[0])
        if method == "uniform":
            s = rng.choice(live, size=b, replace=False)
        else:
            s = rng.choice(live, size=b, replace=False, p=res[live] / res[live].sum())
        g = np.asfortranarray(op.columns(s), dtype=np.float64)
        if k:  # residual columns: g -= F[:, :k] F[s, :k]^T, in place
            g = blas.dgemm(-1.0, f[:, :k], f[s, :k], beta=1.0, c=g, trans_b=1, overwrite_c=1)
        h = 0.5 * (g[s] + g[s].T)
        c, perm, r, info = lapack.dpstrf(h, tol=tol, lower=1)
        if info < 0:
            raise RuntimeError(f"dpstrf failed with info = {info}")
        if r == 0:
            res[s] = 0.0  # residuals at rounding level: these pivots carry nothing
            continue
        sel = perm[:r] - 1
        chol = np.tril(c[:r, :r])
        new = blas.dtrsm(1.0, chol, np.asfortranarray(g[:, sel]), side=1, lower=1, trans_a=1)
        new[np.asarray(piv, dtype=np.intp)] = 0.0  # exact zeros at earlier pivots
        new[s[sel]] = chol  # and exactly the triangular factor at the new ones
        f[:, k : k + r] = new
        piv.extend(int(i) for i in s[sel])
        k += r
        res = np.maximum(res - np.einsum("ij,ij->i", new, new), 0.0)
        res[s[sel]] = 0.0
    f = f if k == rank else np.asfortranarray(f[:, :k])
    piv_a = np.asarray(piv, dtype=np.intp)
    rounding = 0.0
    if k:
        rcond, _ = lapack.dtrcon(np.ascontiguousarray(f[piv_a]), norm="1", uplo="L", diag="N")
        rounding = 16 * n * _EPS * scale / max(rcond, 1e-300)
    return NystromFactor(f, piv_a, res, rounding)


class NystromSelfDistillation(LowRankSelfDistillation):
    r"""Self-distillation closed forms on a Nyström approximation, with certified errors.

    The closed forms of `LowRankSelfDistillation` are applied to the Nyström factor F of
    `nystrom_factor`: $\tilde{\mathbf K}=FF^\top$, with landmarks chosen by randomly pivoted
    Cholesky. Predictions approximate those of `KernelSelfDistillation(K, y, lam)`.
    `certificate` and `certificate_path` bound their Euclidean distance to the exact training
    predictions. Given new inputs, `certificate` bounds the error at each new point instead
    (derived, `docs/theory/krr.md` §6). `shrinkage`, `eigenvalues` and `optimal_alpha` are
    those of $\tilde{\mathbf K}$.

    New points: `x_eval` (inputs, with a kernel function operator) or `kernel_eval` (m x n; only
    the landmark columns are read). Both give the Nyström predictor
    $\tilde f(x)=\tilde\phi(x)^\top w$, where $\tilde\phi(x)=F_S^{-1}k_S(x)$. This predictor
    reproduces the training predictions at the training points.

    Args:
      kernel: a kernel operator (`BlockKernel`, `DenseKernel`, or the torch operator), an n x n
        matrix, or a kernel function (`RBF`, `Laplace`) together with `x`.
      y: targets, shape (n,) or (n, k).
      lam: ridge penalty $\lambda>0$.
      rank: Nyström rank m.
      rng: a `numpy.random.Generator` or a seed (pivot sampling).
      x: training inputs, when `kernel` is a kernel function.
      method, block: see `nystrom_factor`.
      factor: a precomputed `NystromFactor` (then `rank`, `rng`, `method` and `block` are unused).

    Example:
      >>> from sdtheory.theory.krr import KernelSelfDistillation
      >>> rng = np.random.default_rng(0)
      >>> x = rng.uniform(size=(300, 2)); y = np.sin(3 * x[:, 0])
      >>> ny = NystromSelfDistillation(RBF(2.0), y, 1e-2, rank=60, rng=1, x=x)
      >>> exact = KernelSelfDistillation(RBF(2.0)(x, x), y, 1e-2).predict(4, 0.3)
      >>> err = np.linalg.norm(ny.predict(4, 0.3) - exact)
      >>> bool(err <= ny.certificate(4, 0.3))
      True
    """

    def __init__(
        self,
        kernel,
        y,
        lam: float,
        rank: int | None = None,
        *,
        rng=None,
        x=None,
        method: str = "rpcholesky",
        block: int | None = None,
        factor: NystromFactor | None = None,
        eig_tol: float | None = None,
    ):
        self.op = as_operator(kernel, x)
        if factor is None:
            if rank is None or rng is None:
                raise ValueError("rank and rng must be given unless factor is")
            factor = nystrom_factor(self.op, rank, rng=rng, method=method, block=block)
        if factor.factor.shape[0] != self.op.n:
            raise ValueError(
                f"factor has {factor.factor.shape[0]} rows, kernel has n = {self.op.n}"
            )
        super().__init__(factor.factor, y, lam, eig_tol=eig_tol)
        self.nystrom = factor
        self.pivots = factor.pivots
        self.trace_residual = factor.trace_residual
        self.rounding = factor.rounding
        self._cache: dict = {}

    # ------------------------------------------------------------------ new points

    def features(self, x_eval=None, kernel_eval=None) -> np.ndarray:
        r"""Nyström features $\tilde\phi(x)=F_S^{-1}k_S(x)$ of new points, shape (m, rank)."""
        if (x_eval is None) == (kernel_eval is None):
            raise ValueError("give exactly one of x_eval and kernel_eval")
        if kernel_eval is not None:
            ks = self._check_kernel_eval(kernel_eval)[:, self.pivots]
        else:
            if not hasattr(self.op, "cross"):
                raise ValueError("x_eval needs a kernel function operator; give kernel_eval")
            ks = self.op.cross(x_eval, self.pivots)
        lower = self.phi[self.pivots]
        return solve_triangular(lower, ks.T, lower=True, check_finite=False).T

    def _eval_rows(self, kernel_eval, x_eval, phi_eval):
        if phi_eval is not None:
            if kernel_eval is not None or x_eval is not None:
                raise ValueError("give one of kernel_eval, x_eval and phi_eval")
            return phi_eval
        if kernel_eval is None and x_eval is None:
            return None
        return self.features(x_eval, kernel_eval)

    def predict(self, step, alpha, kernel_eval=None, *, x_eval=None, phi_eval=None):
        """Nyström predictions at the training points, or at new points (`x_eval`,
        `kernel_eval`: landmark columns only, or Nyström features `phi_eval`)."""
        rows = self._eval_rows(kernel_eval, x_eval, phi_eval)
        return super().predict(step, alpha, phi_eval=rows)

    def predict_path(self, steps: int, alpha, kernel_eval=None, *, x_eval=None, phi_eval=None):
        """Nyström predictions after steps 1..`steps` (new points as in `predict`)."""
        rows = self._eval_rows(kernel_eval, x_eval, phi_eval)
        return super().predict_path(steps, alpha, phi_eval=rows)

    def predict_grid(self, alphas, steps: int, kernel_eval=None, *, x_eval=None, phi_eval=None):
        """Nyström predictions for constant alphas x steps (new points as in `predict`)."""
        rows = self._eval_rows(kernel_eval, x_eval, phi_eval)
        return super().predict_grid(alphas, steps, phi_eval=rows)

    def optimal_alpha(
        self,
        target,
        steps: int,
        kernel_eval=None,
        *,
        x_eval=None,
        phi_eval=None,
        constrain: bool = False,
    ) -> np.ndarray:
        """`optimal_alpha` of the Nyström kernel (new points as in `predict`)."""
        rows = self._eval_rows(kernel_eval, x_eval, phi_eval)
        return super().optimal_alpha(target, steps, phi_eval=rows, constrain=constrain)

    # ------------------------------------------------------------------ certificate

    def _krylov(self, s: int, kind: str) -> dict:
        r"""Krylov vectors $k_i=\tilde P^iy$, duals $\tilde w_i=(k_i-k_{i+1})/\lambda$ and their
        residual products, for i < s (cached; one kernel pass for `kind="residual"`)."""
        key = ("krylov", kind)
        hit = self._cache.get(key)
        if hit is not None and hit["s"] >= s:
            return hit
        y2 = self.y if self.y.ndim == 2 else self.y[:, None]
        lam, n = self.lam, self.n
        # k_i = F W (a^(i-1)/(d+lam) z) for i >= 1 and w_i = F W (a^(i-1)/(d+lam)^2 z): one
        # product for all i, no cancellation; w_0 = (y - k_1)/lam carries y's null-space part
        pw = self._krylov_filters(s)
        vec = self._filtered(self.phi, np.concatenate([pw, pw[:-1] / (self.eigenvalues + lam)]))
        kv = np.concatenate([y2[None], vec[:s]])  # (s + 1, n, c)
        duals = np.concatenate([((y2 - kv[1]) / lam)[None], vec[s:]])  # (s, n, c)
        flat = np.moveaxis(duals, 0, 1).reshape(n, -1)
        k_tilde = self.phi @ (self.phi.T @ flat)
        delta = np.moveaxis(k_tilde.reshape(n, s, -1), 1, 0) - kv[1:]
        out = {"s": s, "duals": duals, "delta": delta}
        if kind == "residual":
            k_full = np.asarray(self.op.matmat(flat), dtype=np.float64)
            out["e_duals"] = np.moveaxis((k_full - k_tilde).reshape(n, s, -1), 1, 0)
        self._cache[key] = out
        return out

    def _path_terms(self, steps: int, alpha, kind: str):
        r"""Per step j: $\|g_j\|$, $u_j^\top Eu_j$ (or their trace bounds) and $\|\delta_j\|$,
        each of shape (steps, c), and the weights $\beta_{\tau j}$."""
        if kind not in ("residual", "trace"):
            raise ValueError(f"kind must be 'residual' or 'trace', got {kind!r}")
        al = self._alpha_row(steps, alpha)
        coef = np.zeros((steps, steps))  # t_j = sum_i coef[j, i] k_i
        coef[0, 0] = 1.0
        for j in range(1, steps):
            coef[j, 1:] = (1.0 - al[j]) * coef[j - 1, :-1]
            coef[j, 0] += al[j]
        kry = self._krylov(steps, kind)
        u = np.tensordot(coef, kry["duals"][:steps], axes=(1, 0))
        delta = np.tensordot(coef, kry["delta"][:steps], axes=(1, 0))
        un = np.linalg.norm(u, axis=1)
        dn = np.linalg.norm(delta, axis=1)
        if kind == "residual":
            eu = np.tensordot(coef, kry["e_duals"][:steps], axes=(1, 0))
            gn = np.linalg.norm(eu + delta, axis=1)
            q = np.maximum(np.einsum("jnc,jnc->jc", u, eu), 0.0)
        else:
            tr = self.trace_residual + self.n * self.rounding  # tr E_+ <= tr E + n eta
            gn, q = tr * un + dn, tr * un**2
        # the energy branch assumes E >= 0; with ||E_-|| <= eta: u'E_+u <= q + eta ||u||^2 and
        # ||P^i (I-P) E_- u|| <= c_i eta ||u||
        q = q + self.rounding * un**2
        dn = dn + self.rounding * un
        beta = np.zeros((steps, steps))
        for t in range(steps):
            beta[t, t] = 1.0
            beta[t, :t] = beta[t - 1, :t] * (1.0 - al[t]) if t else 0.0
        return gn, q, dn, beta

    def _combine(self, gn, q, dn, beta) -> np.ndarray:
        steps = gn.shape[0]
        c, kappa = certificate_constants(steps)
        lag = np.subtract.outer(np.arange(steps), np.arange(steps))  # tau - j
        mask = lag >= 0
        lag = np.where(mask, lag, 0)
        ci, ki = c[lag][..., None], kappa[lag][..., None]  # (tau, j, 1)
        term = np.minimum(
            ci * gn[None], math.sqrt(self.lam) * ki * np.sqrt(q)[None] + ci * dn[None]
        )
        return np.einsum("tj,tjc->tc", np.abs(beta) * mask, term)

    def certificate_path(self, steps: int, alpha, *, kind: str = "residual") -> np.ndarray:
        r"""Certified $\|\hat y^{(\tau)}-\tilde y^{(\tau)}\|_2$ for $\tau=1..$`steps`.

        $\hat y$ is the exact training prediction (the full kernel) and $\tilde y$ is this
        object's `predict_path`. The bound holds in exact arithmetic, for the computed
        $\tilde y$ up to their rounding ($\sim\epsilon\,\|y\|$ times the condition of
        $\tilde{\mathbf K}+\lambda I$).

        Args:
          steps: the last step (finite).
          alpha: scalar or $\alpha_2..\alpha_{\text{steps}}$.
          kind: "residual" (one pass over the kernel, shared by every α and every step up to
            the largest asked for so far; $O(n^2)$ time, $O(n\cdot\text{steps})$ memory) or
            "trace" ($O(n\,m\cdot\text{steps})$, from $\operatorname{tr}E$ only).

        Returns:
          Shape `(steps,)`, or `(steps, k)` for targets of shape (n, k) (one bound per column).
        """
        steps = self._check_step(steps)
        if steps == math.inf:
            raise ValueError("steps must be finite for certificate_path; use certificate")
        self._alphas(steps, alpha)
        out = self._combine(*self._path_terms(steps, alpha, kind))
        return out[:, 0] if self.y.ndim == 1 else out

    def _limit_terms(self, alpha: float, kind: str):
        """$\\|g\\|$, $u^\\top Eu$, $\\|\\delta\\|$ and $\\lambda/\\alpha$ for the limit."""
        key = ("limit", kind, alpha)
        if key not in self._cache:
            y2 = self.y if self.y.ndim == 2 else self.y[:, None]
            mu = self.lam / alpha
            yt = self._apply_p(y2, mu)
            u = (y2 - yt) / mu
            k_tilde = self.phi @ (self.phi.T @ u)
            dn = np.linalg.norm(k_tilde - yt, axis=0)
            un = np.linalg.norm(u, axis=0)
            if kind == "residual":
                eu = np.asarray(self.op.matmat(u), dtype=np.float64).reshape(u.shape) - k_tilde
                gn = np.linalg.norm(eu + k_tilde - yt, axis=0)
                q = np.maximum(np.einsum("nc,nc->c", u, eu), 0.0)
            else:
                tr = self.trace_residual + self.n * self.rounding
                gn, q = tr * un + dn, tr * un**2
            q = q + self.rounding * un**2
            dn = dn + self.rounding * un
            self._cache[key] = (gn, q, dn, mu)
        return self._cache[key]

    def certificate(
        self,
        step,
        alpha,
        *,
        kind: str = "residual",
        x_eval=None,
        kernel_eval=None,
        eval_diag=None,
    ) -> np.ndarray | float:
        r"""Certified distance of `predict(step, alpha)` to the exact prediction.

        At the training points this is the Euclidean norm, as in `certificate_path`. For the limit,
        $\|\hat y^{(\infty)}-\tilde y^{(\infty)}\|\le\min(\|g\|,\frac12\sqrt{\lambda/\alpha}
        \sqrt{u^\top Eu}+\|\delta\|)$ with $u=\alpha(y-\tilde y^{(\infty)})/\lambda$.

        At new points (`x_eval`, or `kernel_eval` with `eval_diag` $=k(x,x)$) it bounds each
        $|f^{(\tau)}(x)-\tilde f^{(\tau)}(x)|$ by

        $$\sqrt{k(x,x)}\Big(\frac{|1-\alpha_\tau|\,\varepsilon_{\tau-1}}{\sqrt\lambda}
        +\min\Big(\frac{\|g_\tau\|}{\sqrt\lambda},\sqrt{u_\tau^\top Eu_\tau}
        +\frac{\|\delta_\tau\|}{\sqrt\lambda}\Big)\Big)+\sqrt{E_{xx}\,u_\tau^\top Eu_\tau},$$

        where $\varepsilon_{\tau-1}$ is the training certificate of the previous step and
        $E_{xx}=k(x,x)-\|\tilde\phi(x)\|^2$ is the Nyström residual at x. For the limit, use
        $\lambda/\alpha$ and drop the first term.

        Args:
          step: int >= 1 or `math.inf`; alpha: scalar or $\alpha_2..\alpha_{\text{step}}$.
          kind: "residual" or "trace" (see `certificate_path`).
          x_eval: new inputs (with a kernel function operator).
          kernel_eval: m x n kernel to the training points (landmark columns are read).
          eval_diag: $k(x,x)$ at the new points, needed with `kernel_eval`.

        Returns:
          A float (or one per target column) at the training points; shape (m,) (or (m, k))
          at new points.
        """
        step = self._check_step(step)
        const, _ = self._alphas(step, alpha)
        if step == math.inf:
            if const == 0.0:
                gn = q = dn = np.zeros(1 if self.y.ndim == 1 else self.y.shape[1])
                mu, eps_prev, al = math.inf, np.zeros_like(gn), 1.0
            else:
                gn, q, dn, mu = self._limit_terms(const, kind)
                eps_prev, al = np.zeros_like(gn), 1.0
            train = np.minimum(gn, 0.5 * math.sqrt(mu) * np.sqrt(q) + dn) if const else gn
        else:
            gn_p, q_p, dn_p, beta = self._path_terms(step, alpha, kind)
            path = self._combine(gn_p, q_p, dn_p, beta)
            train = path[-1]
            gn, q, dn, mu = gn_p[-1], q_p[-1], dn_p[-1], self.lam
            eps_prev = path[-2] if step > 1 else np.zeros_like(train)
            al = self._alpha_row(step, alpha)[-1]
        if x_eval is None and kernel_eval is None:
            return float(train[0]) if self.y.ndim == 1 else train
        feats = self.features(x_eval, kernel_eval)
        if kernel_eval is not None:
            if eval_diag is None:
                raise ValueError("eval_diag (k(x, x) at the new points) is needed with kernel_eval")
            kxx = np.asarray(eval_diag, dtype=np.float64)
        else:
            kxx = np.asarray(self.op.diag_at(x_eval), dtype=np.float64)
        if kxx.shape != (feats.shape[0],) or not (kxx >= 0).all():
            raise ValueError(f"eval_diag must be >= 0 with shape ({feats.shape[0]},)")
        exx = np.maximum(kxx - np.einsum("ij,ij->i", feats, feats), 0.0)
        if mu == math.inf:  # alpha = 0: both limits are the zero function
            out = np.zeros((feats.shape[0], gn.shape[0]))
        else:
            sl = math.sqrt(mu)
            inner = abs(1.0 - al) * eps_prev / sl + np.minimum(gn / sl, np.sqrt(q) + dn / sl)
            out = np.sqrt(kxx)[:, None] * inner[None] + np.sqrt(exx[:, None] * q[None])
        return out[:, 0] if self.y.ndim == 1 else out


# ============================================================================ iterative exact path


def pcg(apply_a, b, apply_m, *, x0=None, tol: float = 1e-10, maxiter: int = 1000):
    r"""Preconditioned conjugate gradients for SPD $A$, all columns of `b` at once.

    Stops when every column's recursive residual satisfies $\|r\|\le$ `tol` $\|b\|$, or after
    `maxiter` iterations. Each iteration makes one call of `apply_a` on an (n, k) block.

    Returns:
      `(x, iterations)`.
    """
    b2 = b[:, None] if b.ndim == 1 else b
    x = np.zeros_like(b2) if x0 is None else (x0[:, None] if x0.ndim == 1 else x0).copy()
    r = b2 - apply_a(x) if x0 is not None else b2.copy()
    z = apply_m(r)
    p = z.copy()
    rz = np.sum(r * z, axis=0)
    target = tol * np.linalg.norm(b2, axis=0)
    it = 0
    while it < maxiter and np.any(np.linalg.norm(r, axis=0) > target):
        ap = apply_a(p)
        pap = np.sum(p * ap, axis=0)
        step = np.divide(rz, pap, out=np.zeros_like(rz), where=pap > 0)
        x += step * p
        r -= step * ap
        z = apply_m(r)
        rz_new = np.sum(r * z, axis=0)
        beta = np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz > 0)
        p = z + beta * p
        rz = rz_new
        it += 1
    return (x[:, 0] if b.ndim == 1 else x), it


@dataclasses.dataclass(frozen=True)
class IterativeResult:
    r"""Result of `pcg_self_distillation`.

    Attributes:
      predictions: training predictions after steps 1..steps, shape `(steps, n) + y.shape[1:]`
        (one row, the limit, for `steps=math.inf`).
      duals: $\tilde u^{(\tau)}$ with predictions $\mathbf K_{x,X}\tilde u^{(\tau)}$ at new
        points, same shape.
      bound: certified $\|\hat y^{(\tau)}-\tilde y^{(\tau)}\|_2$ per step (per target column).
      residual_norms: $\|g_\tau\|=\|(\mathbf K+\lambda I)\tilde u^{(\tau)}-\tilde t^{(\tau)}\|$
        (true residuals, one extra kernel product per step).
      iterations: CG iterations per step.
      lam: the ridge penalty of the solves ($\lambda/\alpha$ for the limit).
      alphas: $(1,\alpha_2,..)$ per step.
    """

    predictions: np.ndarray
    duals: np.ndarray
    bound: np.ndarray
    residual_norms: np.ndarray
    iterations: np.ndarray
    lam: float
    alphas: np.ndarray

    def bound_at(self, eval_diag, step: int = -1) -> np.ndarray:
        r"""Certified $|f^{(\tau)}(x)-\mathbf k_x^\top\tilde u^{(\tau)}|$ at new points:
        $\sqrt{k(x,x)/\lambda}\,(|1-\alpha_\tau|\varepsilon_{\tau-1}+\|g_\tau\|)$ [derived].

        `step` indexes the rows (default: the last)."""
        kxx = np.asarray(eval_diag, dtype=np.float64)
        i = range(self.bound.shape[0])[step]
        prev = self.bound[i - 1] if i > 0 else np.zeros_like(self.bound[0])
        inner = abs(1.0 - self.alphas[i]) * prev + self.residual_norms[i]
        return np.multiply.outer(np.sqrt(kxx / self.lam), inner)


def pcg_self_distillation(
    kernel,
    y,
    lam: float,
    steps,
    alpha,
    *,
    x=None,
    preconditioner: LowRankSelfDistillation | None = None,
    rank: int = 200,
    rng=None,
    tol: float = 1e-10,
    maxiter: int = 1000,
) -> IterativeResult:
    r"""Exact self-distillation at one (α, steps) by Nyström-preconditioned conjugate gradients.

    Step τ solves $(\mathbf K+\lambda I)u=\tilde t^{(\tau)}$, with
    $\tilde t^{(1)}=y$ and $\tilde t^{(\tau)}=\alpha_\tau y+(1-\alpha_\tau)\tilde y^{(\tau-1)}$.
    Its predictions are $\tilde y^{(\tau)}=\tilde t^{(\tau)}-\lambda u$. The preconditioner is
    $(\tilde{\mathbf K}+\lambda I)^{-1}$, applied by Woodbury in $O(nm)$. Because
    $\tilde{\mathbf K}\preceq\mathbf K$, the preconditioned spectrum lies in
    $[1,1+\|E\|/\lambda]$ [derived]. The solve starts from the Nyström solution. Kernel products
    go through the operator (`BlockKernel`: tiles, so the n x n matrix never exists), which
    costs $O(n^2)$ per iteration. The certificate is that of the module docstring, with the
    true residuals $g_\tau$ and the $c_i$ branch:
    $\|\hat y^{(\tau)}-\tilde y^{(\tau)}\|\le\sum_j|\beta_{\tau j}|\,c_{\tau-j}\|g_j\|$.

    Args:
      kernel: a kernel operator, an n x n matrix, or a kernel function with `x`.
      y: targets, shape (n,) or (n, k); lam: ridge penalty > 0.
      steps: int >= 1, or `math.inf` for the limit (one solve with $\lambda/\alpha$).
      alpha: scalar, or $\alpha_2..\alpha_{\text{steps}}$.
      preconditioner: a `LowRankSelfDistillation` whose $\Phi\Phi^\top\preceq\mathbf K$
        (e.g. a `NystromSelfDistillation` on the same kernel); built with `rank` and `rng`
        when None.
      tol: relative residual at which each solve stops; maxiter: per solve.
    """
    lam = _check_lam(lam)
    op = as_operator(kernel, x)
    y = _check_y(y, op.n)
    if preconditioner is None:
        if rng is None:
            raise ValueError("rng must be given to build the Nyström preconditioner")
        preconditioner = NystromSelfDistillation(op, y, lam, rank, rng=rng)
    if preconditioner.n != op.n:
        raise ValueError(f"preconditioner has n = {preconditioner.n}, kernel has n = {op.n}")
    steps = SpectralSelfDistillation._check_step(steps)
    if steps == math.inf:
        const, _ = preconditioner._alphas(steps, alpha)
        if const == 0.0:
            z = np.zeros((1,) + y.shape)
            zb = np.zeros((1,) + y.shape[1:])
            return IterativeResult(z, z, zb, zb, np.zeros(1, int), math.inf, np.ones(1))
        mu, al = lam / const, np.ones(1)
    else:
        mu, al = lam, preconditioner._alpha_row(steps, alpha)

    def apply_a(v):
        return np.asarray(op.matmat(v), dtype=np.float64).reshape(v.shape) + mu * v

    def apply_m(v):
        return (v - preconditioner._apply_p(v, mu)) / mu

    preds, duals, gnorm, iters = [], [], [], []
    prev = y
    for tau in range(al.shape[0]):
        t = y if tau == 0 else al[tau] * y + (1.0 - al[tau]) * prev
        u, it = pcg(apply_a, t, apply_m, x0=apply_m(t), tol=tol, maxiter=maxiter)
        prev = t - mu * u
        g = apply_a(u) - t
        preds.append(prev)
        duals.append(u)
        gnorm.append(np.linalg.norm(g, axis=0))
        iters.append(it)
    gn = np.array(gnorm)
    if steps == math.inf:
        bound = gn
    else:
        c, _ = certificate_constants(al.shape[0])
        bound = np.empty_like(gn)
        for tau in range(al.shape[0]):
            w = np.ones(tau + 1)
            for j in range(tau - 1, -1, -1):
                w[j] = w[j + 1] * abs(1.0 - al[j + 1])
            bound[tau] = np.einsum("j,j,j...->...", w, c[tau - np.arange(tau + 1)], gn[: tau + 1])
    return IterativeResult(
        predictions=np.array(preds),
        duals=np.array(duals),
        bound=bound,
        residual_norms=gn,
        iterations=np.array(iters),
        lam=mu,
        alphas=al,
    )
