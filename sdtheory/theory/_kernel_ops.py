r"""Kernels and kernel operators for the large-n paths of `sdtheory.theory.krr_scale` (numpy).

A *kernel operator* is anything with these members; the algorithms touch the n x n Gram matrix
$\mathbf K$ only through them, so it never has to exist:

- `n`: the number of training points;
- `diag()`: the diagonal of $\mathbf K$, shape (n,);
- `columns(idx)`: the columns $\mathbf K_{:,S}$, shape (n, len(idx));
- `matmat(v)`: $\mathbf Kv$ for v of shape (n,) or (n, k);
- optional `kernel` and `x` (a kernel function and the training inputs), for predictions at new
  inputs.

`DenseKernel` wraps a stored Gram matrix; `BlockKernel` evaluates a kernel function in tiles of
at most `tile` entries, so its memory is O(n + tile) whatever n is. The torch operator in
`sdtheory.lm.krr_scale` has the same members and runs the tiles on an accelerator.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..core._checks import check_positive_int
from ._krr_spectral import check_gram

__all__ = ["RBF", "Laplace", "DenseKernel", "BlockKernel"]


def _check_gamma(gamma) -> float:
    g = float(gamma)
    if not (g > 0.0 and np.isfinite(g)):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
    return g


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """$\\|a_i-b_j\\|^2$ by one matrix product, clipped at 0 (rounding of the expansion)."""
    out = a @ b.T
    out *= -2.0
    out += np.einsum("ij,ij->i", a, a)[:, None]
    out += np.einsum("ij,ij->i", b, b)[None, :]
    np.maximum(out, 0.0, out=out)
    return out


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """$\\|a_i-b_j\\|$ from the differences (the expansion would lose $\\sqrt\\epsilon$ near 0)."""
    out = np.empty((a.shape[0], b.shape[0]))
    rows = max(1, 2**22 // max(1, b.shape[0] * a.shape[1]))
    for i in range(0, a.shape[0], rows):
        diff = a[i : i + rows, None, :] - b[None, :, :]
        out[i : i + rows] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    return out


def _inputs(x, name: str = "x") -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, p) with n >= 1, got shape {np.shape(x)}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite, got NaN or inf entries")
    return a


@dataclasses.dataclass(frozen=True)
class RBF:
    r"""Gaussian kernel $k(a,b)=\exp(-\gamma\|a-b\|^2)$ (numpy, float64).

    Example:
      >>> k = RBF(0.5)
      >>> bool(np.isclose(k(np.zeros((1, 2)), np.ones((1, 2)))[0, 0], np.exp(-1.0)))
      True
    """

    gamma: float

    def __post_init__(self):
        _check_gamma(self.gamma)

    def __call__(self, a, b) -> np.ndarray:
        out = _sq_dist(_inputs(a, "a"), _inputs(b, "b"))
        out *= -self.gamma
        return np.exp(out, out=out)

    def diag(self, a) -> np.ndarray:
        return np.ones(_inputs(a, "a").shape[0])


@dataclasses.dataclass(frozen=True)
class Laplace:
    r"""Laplace kernel $k(a,b)=\exp(-\gamma\|a-b\|)$: eigenvalues decay polynomially, the hard
    case for low-rank approximations (numpy, float64)."""

    gamma: float

    def __post_init__(self):
        _check_gamma(self.gamma)

    def __call__(self, a, b) -> np.ndarray:
        out = _dist(_inputs(a, "a"), _inputs(b, "b"))
        out *= -self.gamma
        return np.exp(out, out=out)

    def diag(self, a) -> np.ndarray:
        return np.ones(_inputs(a, "a").shape[0])


def _as_block(v: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
    v = np.asarray(v, dtype=np.float64)
    if v.ndim not in (1, 2) or v.shape[0] != n:
        raise ValueError(f"v must have shape ({n},) or ({n}, k), got shape {v.shape}")
    return (v[:, None], True) if v.ndim == 1 else (v, False)


class DenseKernel:
    """A stored n x n Gram matrix as a kernel operator (symmetric, finite; not copied)."""

    def __init__(self, kernel):
        k = check_gram(kernel)
        self.k = k
        self.n = k.shape[0]

    def diag(self) -> np.ndarray:
        return np.diagonal(self.k).copy()

    def columns(self, idx) -> np.ndarray:
        return self.k[:, np.asarray(idx, dtype=np.intp)]

    def matmat(self, v) -> np.ndarray:
        b, vec = _as_block(v, self.n)
        out = self.k @ b
        return out[:, 0] if vec else out


class BlockKernel:
    r"""The Gram matrix of `kernel` on inputs `x`, never stored: products in tiles.

    `matmat` evaluates $\mathbf K$ in tiles of at most `tile` entries (default $2^{21}$, 16 MiB)
    and accumulates $\mathbf K_{IJ}v_J$; memory is O(n k + tile) and time O(n^2 (p + k)).
    The inputs are centred once (distances do not change; the expansion
    $\|a\|^2+\|b\|^2-2a\cdot b$ loses less to rounding near the origin).

    Args:
      kernel: a function `kernel(a, b) -> (len(a), len(b))` with a `diag(a)` method (`RBF`,
        `Laplace`, or your own).
      x: training inputs, shape (n, p) (or (n,)).
      tile: the largest tile, in entries.
    """

    def __init__(self, kernel, x, *, tile: int = 2**21):
        if not callable(kernel) or not hasattr(kernel, "diag"):
            raise ValueError(f"kernel must be callable with a diag method, got {kernel!r}")
        xa = _inputs(x)
        self.shift = xa.mean(axis=0)
        self.x = xa - self.shift
        self.kernel = kernel
        self.n = xa.shape[0]
        self.tile = check_positive_int(tile, "tile")
        if type(kernel) is RBF:  # gamma * ||x_i||^2 for the tiles
            self._gsq = kernel.gamma * np.einsum("ij,ij->i", self.x, self.x)

    def _tile(self, xi: np.ndarray, i: int, j: int, side: int) -> np.ndarray:
        """$\\mathbf K_{IJ}$; for `RBF`, from cached squared norms in fewer passes."""
        xj = self.x[j : j + side]
        if type(self.kernel) is not RBF:
            return self.kernel(xi, xj)
        t = xi @ xj.T
        t *= 2.0 * self.kernel.gamma
        t -= self._gsq[i : i + side, None]
        t -= self._gsq[None, j : j + side]
        np.minimum(t, 0.0, out=t)
        return np.exp(t, out=t)

    def inputs(self, x_new) -> np.ndarray:
        """New inputs in the operator's (centred) coordinates."""
        xa = _inputs(x_new, "x_eval")
        if xa.shape[1] != self.x.shape[1]:
            raise ValueError(f"x_eval must have {self.x.shape[1]} columns, got shape {xa.shape}")
        return xa - self.shift

    def diag(self) -> np.ndarray:
        return np.asarray(self.kernel.diag(self.x), dtype=np.float64)

    def columns(self, idx) -> np.ndarray:
        return self.kernel(self.x, self.x[np.asarray(idx, dtype=np.intp)])

    def cross(self, x_new, idx=None) -> np.ndarray:
        """$k(x_{new}, X_S)$ for the training points `idx` (all when None)."""
        xs = self.x if idx is None else self.x[np.asarray(idx, dtype=np.intp)]
        return self.kernel(self.inputs(x_new), xs)

    def diag_at(self, x_new) -> np.ndarray:
        return np.asarray(self.kernel.diag(self.inputs(x_new)), dtype=np.float64)

    def matmat(self, v) -> np.ndarray:
        r"""$\mathbf Kv$ in square tiles of the upper triangle, each used twice (symmetry)."""
        b, vec = _as_block(v, self.n)
        n, side = self.n, max(1, int(np.sqrt(self.tile)))
        out = np.zeros((n, b.shape[1]))
        for i in range(0, n, side):
            xi = self.x[i : i + side]
            for j in range(i, n, side):
                t = self._tile(xi, i, j, side)
                out[i : i + side] += t @ b[j : j + side]
                if j != i:
                    out[j : j + side] += t.T @ b[i : i + side]
        return out[:, 0] if vec else out
