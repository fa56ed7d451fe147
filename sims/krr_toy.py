"""Borup & Andersen's public toy: loss table, fitted curves, shrinkage bars, consecutive ratios.

Setting of the official notebook (`Kennethborup/self_distillation`, `toy_example.ipynb`, commit
`cb20d6c`): x = 0, 0.1, ..., 1; Mobahi's y values; RBF kernel exp(-80 (x - x')^2); lambda = 0.2;
test MSE against sin(2 pi x) on 101 points; steps 1-6 and the limit for alpha in {0, 0.25, 0.35}.
Every number is computed twice: closed form (`KernelSelfDistillation`) and brute-force refits by
linear solves.

Claims: krr.closed-form-equals-refits, krr.limit-amplified-ridge, krr.sparsification-alpha0,
krr.sparsification-bounded, krr.ground-truth-dampens. Quick default ~4 s on 2 busy CPU cores
(this is also the full-size run).
Run:  python sims/krr_toy.py
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from sdtheory import claims, simio
from sdtheory.theory.krr import KernelSelfDistillation, iterative_refits, ridge_predict

# Mobahi et al. (2020) toy targets as reused by Borup's notebook (spec 1.2.6, [CODE]).
TOY_Y = np.array(
    [
        0.38476636465198066,
        1.2333967683416893,
        1.33232242218057,
        0.69201594888895180,
        -0.29756145531871736,
        -0.24189291901377769,
        -0.7964485769175675,
        -0.9616480167034174,
        -0.49672509509916934,
        -0.3469066003991437,
        0.5589512650600734,
    ]
)
NB = "Kennethborup/self_distillation@cb20d6c toy_example.ipynb"

CLOSED = claims.claim(
    "krr.closed-form-equals-refits",
    "Predictions after any number of steps (constant or per-step alpha, training or new points) "
    "equal explicit iterative ridge refits; computed from one eigendecomposition.",
    (
        "derived",
        "closed sum: docs/theory/krr.md, proof sdtheory.symbolic.krr; recursion from the code, "
        + NB,
    ),
    "sdtheory.theory.krr.KernelSelfDistillation.predict",
    paper="borup2021",
)
LIMIT = claims.claim(
    "krr.limit-amplified-ridge",
    "The infinite-step self-distilled predictor equals ridge regression with lambda/alpha.",
    ("code", NB + " (B_lim, Y_lim); proof derived in docs/theory/krr.md"),
    "sdtheory.theory.krr.KernelSelfDistillation.predict",
    paper="borup2021",
)
SPARSE0 = claims.claim(
    "krr.sparsification-alpha0",
    "For alpha = 0 every consecutive shrinkage ratio b_k/b_{k+1} (eigenvalues descending) grows "
    "without bound with the step: (a_k/a_{k+1})^tau.",
    ("derived", "docs/theory/krr.md; notebook plots Rk_no_GT (code: " + NB + ")"),
    "sdtheory.theory.krr.KernelSelfDistillation.shrinkage",
    paper="borup2021",
)
SPARSE_A = claims.claim(
    "krr.sparsification-bounded",
    "For alpha > 0 the consecutive shrinkage ratios converge to the finite ratios of "
    "alpha d/(alpha d + lambda) (sparsification is bounded; not necessarily monotone).",
    ("derived", "docs/theory/krr.md; README 'extended to all alpha in [0,1]' (code: " + NB + ")"),
    "sdtheory.theory.krr.KernelSelfDistillation.shrinkage",
    paper="borup2021",
)
DAMPEN = claims.claim(
    "krr.ground-truth-dampens",
    "On the toy, pure self-distillation (alpha = 0) first lowers the test loss and then "
    "over-regularises (limit: the zero function), while alpha > 0 keeps the loss of every later "
    "step and of the limit below the loss of the first fit.",
    (
        "paper",
        "Borup & Andersen 2021, abstract (arXiv:2102.13088): ground-truth targets dampen "
        "the regularisation imposed by self-distillation; toy numbers computed here",
    ),
    "sdtheory.theory.krr.KernelSelfDistillation.predict",
    paper="borup2021",
)


@dataclasses.dataclass(frozen=True)
class Config:
    gamma: float = dataclasses.field(
        default=80.0, metadata={"help": "RBF kernel exp(-gamma (x-x')^2)"}
    )
    lam: float = dataclasses.field(default=0.2, metadata={"help": "ridge penalty lambda"})
    alphas: tuple[float, ...] = dataclasses.field(
        default=(0.0, 0.25, 0.35), metadata={"help": "ground-truth weights alpha"}
    )
    steps: int = dataclasses.field(default=6, metadata={"help": "distillation steps in the table"})
    far_step: int = dataclasses.field(
        default=200, metadata={"help": "a step far out, to check convergence to the limit"}
    )


def rbf(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    return np.exp(-gamma * (a[:, None] - b[None, :]) ** 2)


def toy_problem(cfg: Config) -> dict:
    """The toy's data, kernels and ground truth."""
    x = np.linspace(0.0, 1.0, 11)
    x_test = np.arange(0, 1.01, 0.01)  # the notebook's evaluation grid (101 points)
    return {
        "x": x,
        "y": TOY_Y.copy(),
        "x_test": x_test,
        "kernel": rbf(x, x, cfg.gamma),
        "kernel_test": rbf(x_test, x, cfg.gamma),
        "lam": cfg.lam,
        "f_train": np.sin(2 * np.pi * x),
        "f_test": np.sin(2 * np.pi * x_test),
    }


def run(cfg: Config) -> dict:
    """Loss table (theory and refits side by side), curves, shrinkage diagonals and ratios."""
    p = toy_problem(cfg)
    sd = KernelSelfDistillation(p["kernel"], p["y"], cfg.lam)
    rows, curves, shrink = [], {}, {}
    for al in cfg.alphas:
        path = sd.predict_path(cfg.steps, al, p["kernel_test"])
        ref = iterative_refits(p["kernel"], p["y"], cfg.lam, cfg.steps, al, p["kernel_test"])
        lim = sd.predict(math.inf, al, p["kernel_test"])
        lim_ref = (
            np.zeros_like(lim)
            if al == 0
            else ridge_predict(p["kernel"], p["y"], cfg.lam / al, p["kernel_test"])
        )
        for s in range(cfg.steps):
            rows.append(
                {
                    "alpha": al,
                    "step": s + 1,
                    "mse_theory": float(np.mean((path[s] - p["f_test"]) ** 2)),
                    "mse_sim": float(np.mean((ref[s] - p["f_test"]) ** 2)),
                    "max_abs_dev": float(np.max(np.abs(path[s] - ref[s]))),
                }
            )
        rows.append(
            {
                "alpha": al,
                "step": "inf",
                "mse_theory": float(np.mean((lim - p["f_test"]) ** 2)),
                "mse_sim": float(np.mean((lim_ref - p["f_test"]) ** 2)),
                "max_abs_dev": float(np.max(np.abs(lim - lim_ref))),
            }
        )
        curves[al] = (path, lim)
        shrink[al] = (sd.shrinkage_path(cfg.far_step, al), sd.shrinkage(math.inf, al))
    far = {
        al: float(
            np.max(
                np.abs(
                    sd.predict(cfg.far_step, al, p["kernel_test"])
                    - sd.predict(math.inf, al, p["kernel_test"])
                )
            )
        )
        for al in cfg.alphas
    }
    return {
        "rows": rows,
        "curves": curves,
        "shrinkage": shrink,
        "far": far,
        "problem": p,
        "eigenvalues": sd.eigenvalues,
    }


def table_markdown(rows: list[dict], alphas) -> str:
    """The loss table as markdown: one row per step, one column per alpha."""
    steps = list(dict.fromkeys(r["step"] for r in rows))
    head = "| step | " + " | ".join(f"α = {a:g}" for a in alphas) + " |"
    lines = [head, "|---" * (len(alphas) + 1) + "|"]
    for s in steps:
        vals = [
            next(r["mse_theory"] for r in rows if r["step"] == s and r["alpha"] == a)
            for a in alphas
        ]
        cells = " | ".join(f"{v:.5f}" for v in vals)
        lines.append(f"| {'∞' if s == 'inf' else s} | {cells} |")
    return "\n".join(lines)


def check(res: dict, cfg: Config) -> list[claims.CheckResult]:
    rows = res["rows"]
    fin = [r for r in rows if r["step"] != "inf"]
    lim_rows = [r for r in rows if r["step"] == "inf"]
    dev = max(r["max_abs_dev"] for r in fin)
    lim_dev = max(r["max_abs_dev"] for r in lim_rows)
    out = [
        claims.check_close(
            CLOSED,
            0.0,
            dev,
            atol=1e-10,
            details=f"max |closed form - refits| at the 101 test points over "
            f"steps 1..{cfg.steps} and alpha in {cfg.alphas}",
            figure="curves.png",
        ),
        claims.check_close(
            LIMIT,
            0.0,
            lim_dev,
            atol=1e-10,
            details=f"max |limit - ridge(lambda/alpha) by solve|; step "
            f"{cfg.far_step} is within {max(res['far'].values()):.2g} of the limit",
            figure="curves.png",
        ),
    ]
    b0 = res["shrinkage"].get(0.0)
    if b0 is not None:
        path = b0[0][:30]
        ratios = path[:, :-1] / path[:, 1:]
        incr = bool(np.all(np.diff(ratios, axis=0) > 0))
        out.append(
            claims.check_true(
                SPARSE0,
                incr,
                predicted="every ratio strictly increasing in the step",
                measured=f"increasing: {incr}; max ratio {ratios[-1].max():.3g} at step 30",
                figure="ratios.png",
            )
        )
    pos = [a for a in cfg.alphas if a > 0]
    if pos:
        errs = []
        for a in pos:
            path, binf = res["shrinkage"][a]
            r_far = path[-1, :-1] / path[-1, 1:]
            r_inf = binf[:-1] / binf[1:]
            errs.append(float(np.max(np.abs(r_far / r_inf - 1))))
        out.append(
            claims.check_close(
                SPARSE_A,
                0.0,
                max(errs),
                atol=1e-8,
                details=f"max relative gap between ratios at step {cfg.far_step} and the limit "
                f"ratios, alpha in {tuple(pos)}",
                figure="ratios.png",
            )
        )
    mse = {(r["alpha"], r["step"]): r["mse_theory"] for r in rows}
    if 0.0 in cfg.alphas and pos:
        a0 = [mse[(0.0, s)] for s in range(1, cfg.steps + 1)]
        helps_then_hurts = min(a0[1:]) < a0[0] and a0[-1] > min(a0) and mse[(0.0, "inf")] > a0[0]
        damp = all(mse[(a, s)] < a0[0] for a in pos for s in [*range(2, cfg.steps + 1), "inf"])
        out.append(
            claims.check_true(
                DAMPEN,
                helps_then_hurts and damp,
                predicted="alpha=0: dips then rises; alpha>0: every later step and the limit < step 1",
                measured=f"alpha=0 losses {[round(v, 4) for v in a0]}, limit {mse[(0.0, 'inf')]:.4f}; "
                f"alpha>0 limits {[round(mse[(a, 'inf')], 4) for a in pos]} vs step 1 "
                f"{a0[0]:.4f}",
                figure="curves.png",
            )
        )
    return out


def plot(res: dict, cfg: Config):
    p = res["problem"]
    figs = {}
    with simio.style() as plt:
        fig, axes = plt.subplots(
            1,
            len(cfg.alphas),
            figsize=(4 * len(cfg.alphas), 3.2),
            layout="constrained",
            sharey=True,
            squeeze=False,
        )
        for ax, al in zip(axes[0], cfg.alphas, strict=True):
            path, lim = res["curves"][al]
            ax.plot(p["x_test"], p["f_test"], color="k", lw=1, alpha=0.4, label="sin(2πx)")
            ax.scatter(p["x"], p["y"], s=12, color="k", zorder=3, label="y")
            cmap = plt.get_cmap("viridis")
            for s in range(cfg.steps):
                ax.plot(
                    p["x_test"],
                    path[s],
                    color=cmap(s / max(cfg.steps - 1, 1)),
                    lw=1,
                    label=f"step {s + 1}",
                )
            ax.plot(p["x_test"], lim, "r--", lw=1.2, label="limit (ridge λ/α)")
            ax.set_title(f"α = {al:g}")
            ax.set_xlabel("x")
        axes[0, 0].legend(fontsize=6, ncol=2)
        figs["curves"] = fig

        fig, axes = plt.subplots(
            1,
            len(cfg.alphas),
            figsize=(4 * len(cfg.alphas), 3.0),
            layout="constrained",
            sharey=True,
            squeeze=False,
        )
        k = np.arange(1, res["eigenvalues"].shape[0] + 1)
        for ax, al in zip(axes[0], cfg.alphas, strict=True):
            path, binf = res["shrinkage"][al]
            w = 0.8 / (cfg.steps + 1)
            for s in range(cfg.steps):
                ax.bar(k + (s - cfg.steps / 2) * w, path[s], width=w, label=f"step {s + 1}")
            ax.bar(k + cfg.steps / 2 * w, binf, width=w, color="r", label="limit")
            ax.set_title(f"diag B^(τ), α = {al:g}")
            ax.set_xlabel("eigen-index k (descending d_k)")
        axes[0, 0].legend(fontsize=6, ncol=2)
        figs["shrinkage"] = fig

        fig, axes = plt.subplots(
            1,
            len(cfg.alphas),
            figsize=(4 * len(cfg.alphas), 3.0),
            layout="constrained",
            squeeze=False,
        )
        for ax, al in zip(axes[0], cfg.alphas, strict=True):
            path, binf = res["shrinkage"][al]
            for s in range(cfg.steps):
                ax.plot(k[:-1], path[s, :-1] / path[s, 1:], marker=".", lw=1, label=f"step {s + 1}")
            if al > 0:
                ax.plot(k[:-1], binf[:-1] / binf[1:], "r--", label="limit")
            ax.set_yscale("log")
            ax.set_title(f"b_k / b_(k+1), α = {al:g}")
            ax.set_xlabel("k")
        axes[0, 0].legend(fontsize=6)
        figs["ratios"] = fig
    return figs


def main(argv: list[str] | None = None) -> Path:
    cfg, out = simio.parse(Config, argv, name="krr_toy", doc=__doc__)
    res = run(cfg)
    simio.save_table(out / "results.csv", res["rows"])
    (out / "table.md").write_text(table_markdown(res["rows"], cfg.alphas) + "\n")
    for name, fig in plot(res, cfg).items():
        simio.save_figure(fig, out / name)
    simio.save_checks(out, check(res, cfg))
    print(table_markdown(res["rows"], cfg.alphas))
    return out


if __name__ == "__main__":
    main()
