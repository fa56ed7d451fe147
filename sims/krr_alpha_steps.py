"""Test loss over alpha x steps on the toy, the limit curve, the derived optimal alpha, the rate.

Heatmap of the toy's test MSE (sin(2 pi x), 101 points) over alpha in [0, 1] x steps 1..20, with
the loss of the limit (ridge with lambda/alpha) as a curve over alpha. Beside it: the derived
per-step optimal alpha (affine-in-alpha formula) against a grid search on the same criterion, and
the measured geometric convergence slope against (1 - alpha) d_max/(d_max + lambda) on a random
kernel.

Claims: krr.convergence-rate, krr.optimal-alpha-derived, krr.heatmap-limit. Quick default ~8 s on
2 busy CPU cores. Finer figure:  python sims/krr_alpha_steps.py --n-alpha 201 --steps 50
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from sdtheory import claims, simio
from sdtheory.claims.catalog.krr import HEAT, OPT, RATE
from sdtheory.theory.krr import KernelSelfDistillation, iterative_refits
from sims.krr_toy import Config as ToyConfig
from sims.krr_toy import toy_problem


@dataclasses.dataclass(frozen=True)
class Config:
    n_alpha: int = dataclasses.field(default=51, metadata={"help": "alpha grid points in [0, 1]"})
    steps: int = dataclasses.field(default=20, metadata={"help": "steps 1..steps in the heatmap"})
    opt_steps: int = dataclasses.field(default=5, metadata={"help": "steps for the optimal alpha"})
    rate_n: int = dataclasses.field(default=40, metadata={"help": "size of the random kernel"})
    seed: int = 0


def run(cfg: Config) -> dict:
    p = toy_problem(ToyConfig())
    sd = KernelSelfDistillation(p["kernel"], p["y"], p["lam"])
    alphas = np.linspace(0.0, 1.0, cfg.n_alpha)
    heat = np.empty((cfg.steps, cfg.n_alpha))
    lim = np.empty(cfg.n_alpha)
    gap_bound = np.empty(cfg.n_alpha)
    kv = p["kernel_test"] @ sd.eigenvectors
    for j, al in enumerate(alphas):
        path = sd.predict_path(cfg.steps, al, p["kernel_test"])
        heat[:, j] = np.mean((path - p["f_test"]) ** 2, axis=1)
        f_inf = sd.predict(math.inf, al, p["kernel_test"])
        lim[j] = np.mean((f_inf - p["f_test"]) ** 2)
        # |MSE(f) - MSE(g)| <= D (2 max|g - s| + D) with D = max_x |f(x) - g(x)|, and
        # f_tau - f_inf = K_x V diag(q^(tau-1) (g_1 - g_inf)) V^T y with |q| <= rho, where
        # g_1 = 1/(d + lam), g_inf = alpha/(alpha d + lam) are the dual factors
        dd = sd.eigenvalues
        g_gap = np.abs(1.0 / (dd + p["lam"]) - al / (al * dd + p["lam"])) * np.abs(sd._z)
        rho = sd.convergence_rate(al)
        dev = rho ** (cfg.steps - 1) * float(np.max(np.abs(kv) @ g_gap))
        gap_bound[j] = dev * (2 * np.max(np.abs(f_inf - p["f_test"])) + dev)
    # derived optimal alpha vs grid search on the noiseless target at the training points
    opt = sd.optimal_alpha(p["f_train"], cfg.opt_steps)
    grid = np.linspace(-2.0, 2.0, 2001)
    grid_best = []
    for i in range(cfg.opt_steps - 1):
        losses = [
            np.sum(
                (
                    iterative_refits(p["kernel"], p["y"], p["lam"], i + 2, np.r_[opt[:i], g])[-1]
                    - p["f_train"]
                )
                ** 2
            )
            for g in grid
        ]
        grid_best.append(float(grid[int(np.argmin(losses))]))
    # convergence slope on a random kernel with a top-eigenvalue gap
    rng = np.random.default_rng(cfg.seed)
    d = np.concatenate([[4.0], rng.uniform(0.001, 0.05, cfg.rate_n - 1)])
    q, _ = np.linalg.qr(rng.standard_normal((cfg.rate_n, cfg.rate_n)))
    rk = KernelSelfDistillation((q * d) @ q.T, rng.standard_normal(cfg.rate_n), 0.5)
    rate_rows = []
    for al in (0.0, 0.2, 0.5, 0.8):
        taus = np.arange(1, 61)
        err = np.linalg.norm(rk.predict_path(60, al) - rk.predict(math.inf, al), axis=1)
        keep = (taus >= 8) & (err > 1e-11 * np.linalg.norm(rk.y))
        slope = np.polyfit(taus[keep], np.log(err[keep]), 1)[0]
        rate_rows.append(
            {
                "alpha": al,
                "rate_theory": rk.convergence_rate(al),
                "rate_sim": math.exp(slope),
                "points": int(keep.sum()),
            }
        )
    return {
        "alphas": alphas,
        "heat": heat,
        "limit": lim,
        "gap_bound": gap_bound,
        "opt": opt,
        "grid_best": np.array(grid_best),
        "grid_step": grid[1] - grid[0],
        "rate": rate_rows,
    }


def table(res: dict) -> list[dict]:
    rows = []
    for j, al in enumerate(res["alphas"]):
        for s in range(res["heat"].shape[0]):
            rows.append({"alpha": al, "step": s + 1, "mse_theory": res["heat"][s, j]})
        rows.append({"alpha": al, "step": "inf", "mse_theory": res["limit"][j]})
    return rows


def check(res: dict, cfg: Config) -> list[claims.CheckResult]:
    rr = res["rate"]
    worst = max(abs(r["rate_sim"] / r["rate_theory"] - 1) for r in rr if r["rate_theory"] > 0)
    pos = res["alphas"] > 0
    gap = np.abs(res["heat"][-1, pos] - res["limit"][pos])
    excess = float(np.max(gap - res["gap_bound"][pos]))
    opt_err = float(np.max(np.abs(res["opt"] - res["grid_best"])))
    return [
        claims.check_close(
            RATE,
            0.0,
            worst,
            atol=1e-5,
            details="max relative gap between exp(measured slope of log error) and "
            f"rho, alpha in {[r['alpha'] for r in rr]}",
            figure="rate.png",
        ),
        claims.check_close(
            OPT,
            0.0,
            opt_err,
            atol=res["grid_step"],
            details=f"formula {np.round(res['opt'], 4).tolist()} vs grid search "
            f"{np.round(res['grid_best'], 4).tolist()} (toy, target "
            "sin(2 pi x) at the training points)",
            figure="heatmap.png",
        ),
        claims.check_bound(
            HEAT,
            0.0,
            excess,
            direction="<=",
            slack=1e-12,
            details=f"max over alpha>0 of |MSE(step {cfg.steps}) - MSE(limit)| "
            "minus its rate bound (<= 0 means within the bound); largest "
            f"gap {float(gap.max()):.3g}",
            figure="heatmap.png",
        ),
    ]


def plot(res: dict, cfg: Config):
    figs = {}
    with simio.style() as plt:
        fig, (ax, ax2) = plt.subplots(
            1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1.4, 1]}, layout="constrained"
        )
        al = res["alphas"]
        im = ax.imshow(
            np.log10(res["heat"]),
            aspect="auto",
            origin="lower",
            extent=(al[0], al[-1], 0.5, cfg.steps + 0.5),
            cmap="viridis",
        )
        fig.colorbar(im, ax=ax, label="log10 test MSE")
        best = np.argmin(res["heat"], axis=0) + 1
        ax.plot(al, best, "w.", ms=3, label="best step per α")
        ax.set_xlabel("α (weight of ground truth)")
        ax.set_ylabel("step τ")
        ax.legend(fontsize=7, loc="upper right")
        ax.set_title("toy test MSE over α × steps")
        ax.grid(False)
        ax2.plot(al, res["limit"], "r-", label="limit: ridge λ/α")
        for s in (1, 2, 5, cfg.steps):
            ax2.plot(al, res["heat"][s - 1], lw=1, label=f"step {s}")
        ax2.set_yscale("log")
        ax2.set_xlabel("α")
        ax2.set_ylabel("test MSE")
        ax2.legend(fontsize=7)
        ax2.set_title("columns of the heatmap and the limit")
        figs["heatmap"] = fig

        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        r = res["rate"]
        ax.plot([x["alpha"] for x in r], [x["rate_theory"] for x in r], "k-", label="(1-α) a_max")
        ax.plot([x["alpha"] for x in r], [x["rate_sim"] for x in r], "o", label="measured slope")
        ax.set_xlabel("α")
        ax.set_ylabel("geometric rate ρ")
        ax.legend()
        figs["rate"] = fig
    return figs


def main(argv: list[str] | None = None) -> Path:
    cfg, out = simio.parse(Config, argv, name="krr_alpha_steps", doc=__doc__)
    res = run(cfg)
    simio.save_table(out / "results.csv", table(res))
    simio.save_table(out / "rate.csv", res["rate"])
    simio.save_table(
        out / "optimal_alpha.csv",
        {
            "step": np.arange(2, cfg.opt_steps + 1),
            "alpha_theory": res["opt"],
            "alpha_sim": res["grid_best"],
        },
    )
    for name, fig in plot(res, cfg).items():
        simio.save_figure(fig, out / name)
    simio.save_checks(out, check(res, cfg))
    return out


if __name__ == "__main__":
    main()
