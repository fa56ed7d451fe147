"""Kernel self-distillation: a 20 alpha x 20 steps grid of training predictions, closed forms vs
brute-force refits, side by side in one run.

Methods, all float64 numpy/scipy on the same kernel:
- `ridge`: one ridge fit (Cholesky solve of (K + lam I) w = y, then K w): the unit of cost.
- `brute`: iterative refits, one fresh ridge fit (same Cholesky solver) per step and alpha.
  At large n only `--brute-alphas` of the alphas are timed and the total is extrapolated
  linearly (every alpha costs the same 20 fits); the JSON says so (`brute_extrapolated`).
- `eigen`: `KernelSelfDistillation` (one `eigh`, then `predict_path` per alpha).
- `cholesky_grid`: `distillation_grid` (one Cholesky + 20 pairs of triangular solves).

BLAS threads: the benchmark sets `OPENBLAS_NUM_THREADS`, `OMP_NUM_THREADS` to
`SDTHEORY_BENCH_THREADS`
(default 1) before numpy loads, unless they are already set, so that every method runs under the
same, uncontended thread count on a shared machine.

Prints one JSON object per n; `--out FILE` also writes them as a JSON list.
    python benchmarks/bench_krr.py                       # n = 1000, 2000, 4000
    python benchmarks/bench_krr.py --n 500 --brute-alphas 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, os.environ.get("SDTHEORY_BENCH_THREADS", "1"))

import numpy as np  # noqa: E402
from scipy.linalg import solve  # noqa: E402

from sdtheory.theory.krr import KernelSelfDistillation, distillation_grid  # noqa: E402


def rbf_kernel(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(0.0, 1.0, (n, 3))
    sq = np.sum(x**2, 1)
    k = np.exp(-2.0 * np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))
    y = np.sin(4 * x[:, 0]) + 0.3 * rng.standard_normal(n)
    return k, y


def ridge_fit(k, y, lam):
    return k @ solve(k + lam * np.eye(k.shape[0]), y, assume_a="pos", check_finite=False)


def brute(k, y, lam, alphas, steps):
    out = np.empty((len(alphas), steps, k.shape[0]))
    reg = k + lam * np.eye(k.shape[0])
    for a, al in enumerate(alphas):
        prev = y
        for t in range(steps):
            tgt = y if t == 0 else al * y + (1 - al) * prev
            prev = k @ solve(reg, tgt, assume_a="pos", check_finite=False)
            out[a, t] = prev
    return out


def eigen(k, y, lam, alphas, steps):
    sd = KernelSelfDistillation(k, y, lam)
    return np.stack([sd.predict_path(steps, al) for al in alphas])


def timed(fn, *args, repeat: int = 1):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench(n: int, n_alpha: int, steps: int, brute_alphas: int, lam: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    k, y = rbf_kernel(n, rng)
    alphas = np.linspace(0.0, 1.0, n_alpha)
    t_ridge, _ = timed(ridge_fit, k, y, lam, repeat=3)
    t_grid, g = timed(distillation_grid, k, y, lam, alphas, steps, repeat=2)
    t_eig, e = timed(eigen, k, y, lam, alphas, steps)
    m = min(brute_alphas, n_alpha)
    sub = np.linspace(0, n_alpha - 1, m).round().astype(int)
    t_b_sub, b = timed(brute, k, y, lam, alphas[sub], steps)
    t_brute = t_b_sub * n_alpha / m
    scale = float(np.max(np.abs(y)))
    res = {
        "n": n,
        "grid": f"{n_alpha} alphas x {steps} steps",
        "lam": lam,
        "ridge_fit_s": t_ridge,
        "cholesky_grid_s": t_grid,
        "eigen_s": t_eig,
        "brute_s": t_brute,
        "brute_measured_s": t_b_sub,
        "brute_alphas_measured": m,
        "brute_extrapolated": m < n_alpha,
        "cholesky_grid_over_ridge": t_grid / t_ridge,
        "eigen_over_ridge": t_eig / t_ridge,
        "brute_over_cholesky_grid": t_brute / t_grid,
        "brute_over_eigen": t_brute / t_eig,
        "max_rel_dev_cholesky_grid_vs_brute": float(np.max(np.abs(g[sub] - b))) / scale,
        "max_rel_dev_eigen_vs_brute": float(np.max(np.abs(e[sub] - b))) / scale,
        "max_rel_dev_eigen_vs_cholesky_grid": float(np.max(np.abs(e - g))) / scale,
    }
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 2000, 4000])
    ap.add_argument("--alphas", type=int, default=20)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument(
        "--brute-alphas",
        type=int,
        nargs="+",
        default=[20, 5, 2],
        help="alphas timed by brute force, per n (last value repeats)",
    )
    ap.add_argument("--lam", type=float, default=1e-2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    env = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "blas_threads": os.environ["OPENBLAS_NUM_THREADS"],
    }
    print(json.dumps({"env": env}), flush=True)
    results = []
    for i, n in enumerate(args.n):
        ba = args.brute_alphas[min(i, len(args.brute_alphas) - 1)]
        r = bench(n, args.alphas, args.steps, ba, args.lam, args.seed)
        results.append(r)
        print(json.dumps(r), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"env": env, "results": results}, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
