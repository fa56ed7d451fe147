"""Kernel self-distillation at scale: the 20 alpha x 20 steps grid of training predictions with
explicit features (exact, `from_features`) and with a rank-m Nyström approximation (certified),
checked against the exact closed form where it fits (n <= --exact-n), in one run.

Problem: inputs uniform on [0, 1]^p, targets sin(2 pi x_0) + x_1^2 + 0.1 noise, the RBF kernel
exp(-gamma ||x - x'||^2), lam = lam_rel * n. Features are d random Fourier features of the same
kernel (their linear kernel approximates it; the features path is exact for its own kernel).

Per n, the JSON record has, for each method, the wall time of each phase and the peak memory
(tracemalloc: numpy allocations). "features" is `KernelSelfDistillation.from_features` then
`predict_path` per alpha. "nystrom" is `NystromSelfDistillation` (randomly pivoted Cholesky,
rank m), then `predict_path` and the trace certificate per alpha. The residual certificate is
timed separately: one blocked pass over the n x n kernel. Where n <= --exact-n, the exact grid
comes from `distillation_grid` (one Cholesky of the full Gram matrix). The record then lists
||error||_2 per (alpha, step) against both certificates, and the deviation of the features path
from the exact grid of its own kernel. `pcg` runs the iterative exact path at one alpha for n
<= --pcg-n.

BLAS threads: `SDTHEORY_BENCH_THREADS` (default 2) sets OPENBLAS/OMP/MKL_NUM_THREADS before
numpy loads, unless they are already set. `env` records the load averages before and after.

    python benchmarks/bench_krr_scale.py                      # n = 1e4, 1e5; 1e6 features; exact 8000
    python benchmarks/bench_krr_scale.py --n 8000 --large-n 0 --rank 500 --out scale.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import time
import tracemalloc

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, os.environ.get("SDTHEORY_BENCH_THREADS", "2"))

import numpy as np  # noqa: E402

from sdtheory import claims  # noqa: E402
from sdtheory.claims.catalog import krr_scale as cat  # noqa: E402
from sdtheory.theory.krr import KernelSelfDistillation, distillation_grid  # noqa: E402
from sdtheory.theory.krr_scale import (  # noqa: E402
    RBF,
    BlockKernel,
    NystromSelfDistillation,
    pcg_self_distillation,  # noqa: E402
)

MIB = 2.0**20


def problem(n: int, p: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (n, p))
    y = np.sin(2 * np.pi * x[:, 0]) + x[:, 1] ** 2 + 0.1 * rng.standard_normal(n)
    return x, y


def fourier_features(x: np.ndarray, d: int, gamma: float, seed: int, chunk: int = 50_000):
    """d random Fourier features of exp(-gamma ||x - x'||^2), built in row chunks."""
    rng = np.random.default_rng(seed + 1)
    w = rng.standard_normal((x.shape[1], d)) * math.sqrt(2.0 * gamma)
    b = rng.uniform(0.0, 2 * np.pi, d)
    out = np.empty((x.shape[0], d))
    for i in range(0, x.shape[0], chunk):
        np.cos(x[i : i + chunk] @ w + b, out=out[i : i + chunk])
    out *= math.sqrt(2.0 / d)
    return out


class Phase:
    """Wall time and tracemalloc peak (MiB) of a block."""

    def __enter__(self):
        tracemalloc.reset_peak()
        self.base = tracemalloc.get_traced_memory()[0]
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.peak_mib = (tracemalloc.get_traced_memory()[1] - self.base) / MIB


def grid(sd, alphas, steps, keep: bool, chunk: int = 200_000):
    """The whole grid of training predictions (`predict_grid`): returned when `keep`, else made
    in row chunks of the features (memory: 400 x chunk) and only checked to be finite."""
    if keep:
        return sd.predict_grid(alphas, steps)
    for i in range(0, sd.n, chunk):
        part = sd.predict_grid(alphas, steps, phi_eval=sd.phi[i : i + chunk])
        if not np.isfinite(part[:, :, 0]).all():
            raise FloatingPointError("non-finite predictions")
    return None


def bench_features(phi, y, lam, alphas, steps, keep):
    with Phase() as build:
        sd = KernelSelfDistillation.from_features(phi, y, lam)
    with Phase() as g:
        pred = grid(sd, alphas, steps, keep)
    rec = {
        "d": phi.shape[1],
        "build_s": build.seconds,
        "grid_s": g.seconds,
        "total_s": build.seconds + g.seconds,
        "peak_mib": max(build.peak_mib, g.peak_mib),
    }
    return rec, pred


def bench_nystrom(x, y, lam, kern, rank, alphas, steps, keep, residual, seed):
    op = BlockKernel(kern, x)
    with Phase() as build:
        ny = NystromSelfDistillation(op, y, lam, rank, rng=seed)
    with Phase() as g:
        pred = grid(ny, alphas, steps, keep)
    with Phase() as tc:
        trace = np.stack([ny.certificate_path(steps, al, kind="trace") for al in alphas])
    rec = {
        "rank": ny.rank,
        "build_s": build.seconds,
        "grid_s": g.seconds,
        "trace_certificate_s": tc.seconds,
        "total_s": build.seconds + g.seconds + tc.seconds,
        "peak_mib": max(build.peak_mib, g.peak_mib, tc.peak_mib),
        "trace_residual": ny.trace_residual,
    }
    resid = None
    if residual:
        with Phase() as rc:
            resid = np.stack([ny.certificate_path(steps, al) for al in alphas])
        rec["residual_certificate_s"] = rc.seconds
        rec["residual_certificate_peak_mib"] = rc.peak_mib
    return rec, pred, trace, resid, ny


def compare(pred, exact, trace, resid, y, scale, checks):
    err = np.linalg.norm(pred - exact, axis=2)  # (alphas, steps)
    where = f"{err.size} (alpha, step) pairs, ||.||_2 over the training points"
    checks.append(
        claims.check_bound(
            cat.CERTIFICATE,
            1.0,
            float(np.max(err / trace)),
            scale=scale,
            details="trace certificate: max error / certificate over " + where,
        )
    )
    out = {
        "max_error": float(err.max()),
        "max_error_rel_norm_y": float(err.max() / np.linalg.norm(y)),
        "trace_certificate_holds": bool(np.all(err <= trace)),
        "trace_over_error_min": float(np.min(trace / err)),
        "trace_over_error_median": float(np.median(trace / err)),
        "trace_over_error_max": float(np.max(trace / err)),
    }
    if resid is not None:
        r = resid / err
        out.update(
            residual_certificate_holds=bool(np.all(err <= resid)),
            residual_over_error_min=float(r.min()),
            residual_over_error_median=float(np.median(r)),
            residual_over_error_max=float(r.max()),
            residual_within_10x=bool(np.all(r <= 10.0)),
        )
        checks.append(
            claims.check_bound(
                cat.CERTIFICATE,
                1.0,
                float(np.max(1.0 / r)),
                scale=scale,
                details="residual certificate: max error / certificate over " + where,
            )
        )
        checks.append(
            claims.check_bound(
                cat.CERTIFICATE_TIGHT,
                10.0,
                float(r.max()),
                scale=scale,
                details="max residual certificate / error over " + where,
            )
        )
    return out


def bench(n: int, args, large: bool = False) -> dict:
    alphas = np.linspace(0.0, 1.0, args.alphas)
    x, y = problem(n, args.p, args.seed)
    lam = args.lam_rel * n
    kern = RBF(args.gamma)
    do_exact = n <= args.exact_n and not large
    rec = {"n": n, "p": args.p, "kernel": f"RBF({args.gamma})", "lam": lam}
    scale, checks = f"bench n={n}", []
    rec["grid"] = f"{args.alphas} alphas x {args.steps} steps"
    d = args.d_large if large else args.d
    with Phase() as ft:
        phi = fourier_features(x, d, args.gamma, args.seed)
    rec["features_build_s"] = ft.seconds
    rec["features"], fpred = bench_features(phi, y, lam, alphas, args.steps, do_exact)
    print(json.dumps({"n": n, "features": rec["features"]}), flush=True)
    if do_exact:  # the features path against the exact grid of its own kernel
        k_lin = phi @ phi.T
        exact_lin = distillation_grid(k_lin, y, lam, alphas, args.steps)
        del k_lin
        dev = float(np.max(np.abs(fpred - exact_lin)) / np.max(np.abs(y)))
        rec["features"]["max_rel_dev_vs_exact"] = dev
        checks.append(
            claims.check_close(
                cat.FEATURES_EXACT,
                0.0,
                dev,
                atol=1e-9,
                scale=scale,
                details="max |features - exact grid of Phi Phi^T| / max|y|",
            )
        )
        del exact_lin
    del phi, fpred
    if large:
        rec["checks"] = [c.to_json() for c in checks]
        return rec
    residual = n <= args.residual_max_n
    nrec, pred, trace, resid, ny = bench_nystrom(
        x, y, lam, kern, args.rank, alphas, args.steps, do_exact, residual, args.seed
    )
    rec["nystrom"] = nrec
    print(json.dumps({"n": n, "nystrom": nrec}), flush=True)
    if do_exact:
        with Phase() as ex:
            k = kern(x, x)
            exact = distillation_grid(k, y, lam, alphas, args.steps)
        rec["exact"] = {"grid_s": ex.seconds, "peak_mib": ex.peak_mib}
        rec["nystrom"]["vs_exact"] = compare(pred, exact, trace, resid, y, scale, checks)
        if n <= args.pcg_n:
            i = args.pcg_alpha_index
            al = float(alphas[i])
            with Phase() as pc:
                res = pcg_self_distillation(k, y, lam, args.steps, al, preconditioner=ny)
            err = np.linalg.norm(res.predictions - exact[i], axis=1)
            rec["pcg"] = {
                "alpha": al,
                "seconds": pc.seconds,
                "peak_mib": pc.peak_mib,
                "iterations": res.iterations.tolist(),
                "max_bound": float(res.bound.max()),
                "max_error": float(err.max()),
                "bound_holds": bool(np.all(err <= res.bound)),
            }
            checks.append(
                claims.check_bound(
                    cat.PCG_CERTIFIED,
                    1.0,
                    float(np.max(err / res.bound)),
                    scale=scale,
                    details="max error / bound over the steps",
                )
            )
        del k, exact
    rec["checks"] = [c.to_json() for c in checks]
    return rec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[8000, 10_000, 100_000])
    ap.add_argument("--large-n", type=int, default=1_000_000, help="features only; 0 skips")
    ap.add_argument("--d", type=int, default=2000, help="features for --n")
    ap.add_argument("--d-large", type=int, default=256, help="features for --large-n")
    ap.add_argument("--rank", type=int, default=2000)
    ap.add_argument("--p", type=int, default=5)
    ap.add_argument("--gamma", type=float, default=2.0)
    ap.add_argument("--lam-rel", type=float, default=1e-4, help="lam = lam_rel * n")
    ap.add_argument("--alphas", type=int, default=20)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--exact-n", type=int, default=8000)
    ap.add_argument("--residual-max-n", type=int, default=100_000)
    ap.add_argument("--pcg-n", type=int, default=8000)
    ap.add_argument("--pcg-alpha-index", type=int, default=6, help="which alpha of the grid")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    env = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "blas_threads": os.environ["OPENBLAS_NUM_THREADS"],
        "load_before": os.getloadavg(),
    }
    print(json.dumps({"env": env}), flush=True)
    tracemalloc.start()
    results = []
    for n in args.n:
        results.append(bench(n, args))
        print(json.dumps(results[-1]), flush=True)
    if args.large_n:
        results.append(bench(args.large_n, args, large=True))
        print(json.dumps(results[-1]), flush=True)
    env["load_after"] = os.getloadavg()
    env["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"env": env}), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"env": env, "results": results}, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
