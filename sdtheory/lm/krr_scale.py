r"""Torch backend for `sdtheory.theory.krr_scale`: kernel products and feature Grams on a device.

`TorchKernel` is a kernel operator with the members of `BlockKernel` (`n`, `diag`, `columns`,
`matmat`, `cross`, `diag_at`). Pass it wherever `krr_scale` takes a kernel:
`NystromSelfDistillation(TorchKernel(RBF(g), x), y, lam, rank, rng=0)`,
`pcg_self_distillation(TorchKernel(...), ...)`. The $O(n^2)$ work then runs on the
accelerator: the residual certificate's pass over the kernel and every CG product. So does the
$O(nm)$ kernel-column work of the Nyström factor. The $O(nm^2)$ algebra stays in numpy float64.
`features_gram` computes $\Phi^\top\Phi$ on the device for
`KernelSelfDistillation.from_features(phi, y, lam, gram=...)`.

**Precision.** float64 is the default on CPU. float32 is the default on CUDA. Results come back
as float64 numpy arrays. Tiles are summed in float64 across tiles. In the standard rounding
model with $u=2^{-24}$, and with inputs centred, a float32 product satisfies, elementwise,
$|\mathrm{fl}(\mathbf Kv)-\mathbf Kv|\le\varepsilon_{32}\,\mathbf K|v|$ to first order in u,
with $\varepsilon_{32}=(s+4+4\gamma(p+5)R^2)\,u$ for the RBF kernel. Here s is the tile side
(the length of each float32 sum), p is the input dimension and $R=\max_i\|x_i\|$. The
$\gamma$ term covers rounding of the inputs and of the expanded squared distance. For the
Laplace kernel, whose distances come from differences, the term is $\gamma(2p+8)R$.
`TorchKernel.float32_error` gives $\varepsilon_{32}$.
`tests/lm/test_krr_scale_torch.py` checks the bound on CPU in float32. Likewise
$|\mathrm{fl}(\Phi^\top\Phi)-\Phi^\top\Phi|\le(c+2)\,u\,|\Phi|^\top|\Phi|$ for `features_gram`,
with row chunks of c summed in float64. A certificate computed with float32 products holds up
to these product errors, which it does not include.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..core._checks import check_positive_int
from ..theory._kernel_ops import RBF, Laplace, _as_block, _inputs

__all__ = ["TorchKernel", "features_gram"]

_U32 = 2.0**-24


def _device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _dtype(dtype, device: torch.device) -> torch.dtype:
    if dtype is None:
        return torch.float32 if device.type == "cuda" else torch.float64
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


class TorchKernel:
    r"""The Gram matrix of an `RBF` or `Laplace` kernel on `x`, in tiles on a torch device.

    Args:
      kernel: `krr_scale.RBF` or `krr_scale.Laplace`.
      x: training inputs (n, p); centred once, as in `BlockKernel`.
      device: torch device (default: CUDA when available, else CPU).
      dtype: `torch.float64` or `torch.float32` (default: float32 on CUDA, float64 on CPU).
      tile: the largest tile in entries (square tiles of side $\sqrt{\text{tile}}$).
    """

    def __init__(self, kernel, x, *, device=None, dtype=None, tile: int = 2**24):
        if not isinstance(kernel, (RBF, Laplace)):
            raise ValueError(f"kernel must be krr_scale.RBF or krr_scale.Laplace, got {kernel!r}")
        xa = _inputs(x)
        self.shift = xa.mean(axis=0)
        self.x = xa - self.shift  # float64 numpy, as in BlockKernel
        self.kernel = kernel
        self.n = xa.shape[0]
        self.device = _device(device)
        self.dtype = _dtype(dtype, self.device)
        self.side = max(1, int(math.sqrt(check_positive_int(tile, "tile"))))
        self._xt = torch.as_tensor(self.x, dtype=self.dtype, device=self.device)

    @property
    def float32_error(self) -> float:
        r"""$\varepsilon_{32}$ of the module docstring (relative to $\mathbf K|v|$)."""
        r = float(np.sqrt(np.max(np.einsum("ij,ij->i", self.x, self.x))))
        p, g = self.x.shape[1], self.kernel.gamma
        spread = 4 * g * (p + 5) * r * r if isinstance(self.kernel, RBF) else g * (2 * p + 8) * r
        return (min(self.side, self.n) + 4 + spread) * _U32

    def _tile(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if isinstance(self.kernel, RBF):
            sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
            return torch.exp(sq.clamp_min_(0.0).mul_(-self.kernel.gamma))
        dist = torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")
        return torch.exp(dist.mul_(-self.kernel.gamma))

    def _new(self, x_new) -> torch.Tensor:
        xa = _inputs(x_new, "x_eval")
        if xa.shape[1] != self.x.shape[1]:
            raise ValueError(f"x_eval must have {self.x.shape[1]} columns, got shape {xa.shape}")
        return torch.as_tensor(xa - self.shift, dtype=self.dtype, device=self.device)

    def _np(self, t: torch.Tensor) -> np.ndarray:
        return t.to(torch.float64).cpu().numpy()

    def diag(self) -> np.ndarray:
        return np.ones(self.n)

    def diag_at(self, x_new) -> np.ndarray:
        return np.ones(_inputs(x_new, "x_eval").shape[0])

    def columns(self, idx) -> np.ndarray:
        i = torch.as_tensor(np.asarray(idx, dtype=np.int64), device=self.device)
        return self._np(self._tile(self._xt, self._xt[i]))

    def cross(self, x_new, idx=None) -> np.ndarray:
        xs = self._xt
        if idx is not None:
            xs = xs[torch.as_tensor(np.asarray(idx, dtype=np.int64), device=self.device)]
        return self._np(self._tile(self._new(x_new), xs))

    @torch.no_grad()
    def matmat(self, v) -> np.ndarray:
        r"""$\mathbf Kv$: square tiles of the upper triangle, each used twice; sums across tiles
        in float64."""
        b, vec = _as_block(v, self.n)
        bt = torch.as_tensor(b, dtype=self.dtype, device=self.device)
        out = torch.zeros(b.shape, dtype=torch.float64, device=self.device)
        n, side = self.n, self.side
        for i in range(0, n, side):
            xi = self._xt[i : i + side]
            for j in range(i, n, side):
                t = self._tile(xi, self._xt[j : j + side])
                out[i : i + side] += (t @ bt[j : j + side]).to(torch.float64)
                if j != i:
                    out[j : j + side] += (t.T @ bt[i : i + side]).to(torch.float64)
        res = out.cpu().numpy()
        return res[:, 0] if vec else res


@torch.no_grad()
def features_gram(phi, *, device=None, dtype=None, chunk: int = 65536) -> np.ndarray:
    r"""$\Phi^\top\Phi$ (float64 numpy), computed in row chunks on a torch device.

    `phi` is a numpy array or a torch tensor (then its device is the default). The error bound
    for float32 is in the module docstring. Pass the result as `gram=` to
    `KernelSelfDistillation.from_features`.
    """
    f = phi if isinstance(phi, torch.Tensor) else np.asarray(phi)
    dev = _device(device if device is not None or not isinstance(f, torch.Tensor) else f.device)
    dt = _dtype(dtype, dev)
    if f.ndim != 2 or f.shape[0] == 0:
        raise ValueError(f"phi must have shape (n, d), got shape {tuple(f.shape)}")
    chunk = check_positive_int(chunk, "chunk")
    out = torch.zeros((f.shape[1], f.shape[1]), dtype=torch.float64, device=dev)
    for i in range(0, f.shape[0], chunk):
        part = f[i : i + chunk]
        c = part if isinstance(part, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(part))
        c = c.to(device=dev, dtype=dt)
        out += (c.T @ c).to(torch.float64)
    return out.cpu().numpy()
