r"""Kernel theory against trained networks on real data: when does the closed form predict training?

The Borup & Andersen setting with a network instead of a kernel: a network on scikit-learn's
bundled handwritten digits (8x8, offline; target $\pm1$ for digits 5–9 vs 0–4, 20 % of the
training labels flipped) is self-distilled by gradient descent: step 1 fits the labels, step
$\tau$ fits $\alpha y+(1-\alpha)\hat y^{(\tau-1)}$, every fit restarting from the same
initialisation with a ridge penalty towards it (`sdtheory.nets.regimes`).

**Prediction before training.** For each initialisation, the held-out error of every
$(\alpha, \text{step})$ is computed from the empirical NTK at initialisation with the closed form
(`sdtheory.theory.krr.KernelSelfDistillation`) and written to `units.jsonl` *before* the network
is trained. Then the network is trained and its surface recorded beside it.

**Regimes.** Lazy: the NTK parametrisation, output scale $\kappa=1$, over a width sweep. Rich:
the mean-field scaling $\kappa=m^{-1/2}$ at the same widths; the closed form is the same (it does
not depend on $\kappa$), the trained networks are not. A small CNN (two 3x3 convolutions) in the
lazy regime at the largest scales.

**Checks** (units: initialisation seeds; t bands): at the largest lazy width the mean relative
deviation of the trained surface from the prediction is below 5 %, the Spearman correlation of
the two surfaces above 0.9, and the predicted best cell's trained error within 2 % of the best
trained error; the deviation falls with width (slope of log deviation on log width below 0); in
the rich regime at the largest width the deviation exceeds 5 %.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from ... import claims, simio
from ...claims.catalog import validate as V
from ...runner import Budget
from . import _common as C
from . import _stats as S

NAME = "kernel"
TITLE = "2. Kernel theory against trained networks (digits): lazy and rich"
CLAIMS = (
    V.KRR_NETWORK_DEVIATION,
    V.KERNEL_LAZY_AGREEMENT,
    V.KERNEL_RANK,
    V.KERNEL_BEST_CELL,
    V.KERNEL_RICH,
)
WEIGHT = 1.0  # share of a time budget, relative to the other experiments (docs/lm/gpu.md)
KNOB = "seeds"  # size knob (docs/lm/gpu.md): initialisations per (regime, width)
TOL_DEV = 0.05  # mean relative deviation of the trained surface (lazy agreement)
TOL_RHO = 0.9
TOL_REGRET = 0.02


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: int = 3  # the scale's size (SIZES): initialisations per (regime, width)
    widths: tuple[int, ...] = (64, 256, 1024)
    # the CNN runs at the gpu scale: on the shared 2-core machine its eNTK alone took 632 s
    cnn_channels: tuple[int, ...] = ()
    n_train: int = 200
    n_eval: int = 600
    noise: float = 0.2
    lam_rel: float = 0.05  # lambda = lam_rel * mean eigenvalue of the empirical NTK
    alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
    steps: int = 4
    iters: int = 400
    data_seed: int = 0


SIZES = {"cpu": 2, "cpu-long": 3, "gpu": 12}
CONFIGS: dict[str, Config] = {
    "fast": Config(
        seeds=2, widths=(8, 16), cnn_channels=(2,), n_train=24, n_eval=24, steps=2, iters=10
    ),
    **{s: Config(seeds=n) for s, n in SIZES.items()},
}
CONFIGS["gpu"] = dataclasses.replace(
    CONFIGS["gpu"], widths=(64, 256, 1024, 4096), cnn_channels=(32, 128)
)


def _runs(cfg: Config):
    """(regime, kind, width) in the order they run: lazy MLP sweep, rich sweep, lazy CNN."""
    out = [("lazy", "mlp", w) for w in cfg.widths]
    out += [("rich", "mlp", w) for w in cfg.widths]
    out += [("lazy", "cnn", c) for c in cfg.cnn_channels]
    return out


def measure(cfg: Config, out: Path, budget: Budget | None = None) -> Path:
    """Predict, then train, every (regime, net, width, seed); one line per stage in units.jsonl."""
    budget = budget or Budget()
    from ...nets import regimes as R

    R.enable_x64()
    x, y, xe, ye, _ = R.digits_binary(cfg.n_train, cfg.n_eval, noise=cfg.noise, seed=cfg.data_seed)
    units = C.Units(out / "units.jsonl")
    for seed in range(cfg.seeds):  # seeds outermost: a stopped run has whole seeds
        for regime, kind, width in _runs(cfg):
            budget.check("fit")
            net = R.Net(kind, width, 1 if kind == "mlp" else 2)
            params = R.init_net(1000 * seed + width, net, x.shape[1])
            with C.Timer() as tk:
                k = R.empirical_ntk(params, x, x, net)
                ke = R.empirical_ntk(params, xe, x, net)
            eig = np.linalg.eigvalsh(0.5 * (k + k.T))
            lam = cfg.lam_rel * float(eig.mean())
            pred = R.predicted_surface(k, ke, y, ye, lam, cfg.alphas, cfg.steps)
            key = dict(regime=regime, kind=kind, width=width, seed=seed)
            units.write(stage="predicted", **key, lam=lam, mse=pred, ntk_seconds=tk.seconds)
            big, cond = float(eig[-1]) + lam, (float(eig[-1]) + lam) / lam
            kappa = 1.0 if regime == "lazy" else 1.0 / math.sqrt(width)
            with C.Timer() as tt:
                fit = R.self_distill_surface(
                    params,
                    x,
                    y,
                    xe,
                    ye,
                    net,
                    kappa=kappa,
                    lam=lam,
                    alphas=cfg.alphas,
                    steps=cfg.steps,
                    lr=1.0 / big,
                    momentum=(math.sqrt(cond) - 1) / (math.sqrt(cond) + 1),
                    iters=cfg.iters,
                )
            units.write(
                stage="trained",
                **key,
                kappa=kappa,
                mse=fit["mse"],
                grad_rel=fit["grad_rel"],
                seconds=tt.seconds,
            )
            dev = float(np.mean(np.abs(fit["mse"] - pred) / pred))
            C.log(
                NAME,
                f"seed {seed} {regime} {kind} width {width}: mean rel. deviation {dev:.3f} "
                f"({tk.seconds + tt.seconds:.0f}s)",
            )
    return units.path


def _pairs(rows: list[dict]) -> dict:
    """{(regime, kind, width): [(predicted, trained, grad_rel), ... per seed]} (complete pairs)."""
    pred = {
        (r["regime"], r["kind"], r["width"], r["seed"]): np.array(r["mse"])
        for r in rows
        if r["stage"] == "predicted"
    }
    out: dict = {}
    for r in rows:
        if r["stage"] != "trained":
            continue
        key = (r["regime"], r["kind"], r["width"], r["seed"])
        out.setdefault(key[:3], []).append((pred[key], np.array(r["mse"]), r["grad_rel"]))
    return out


def metrics(pred: np.ndarray, trained: np.ndarray) -> dict:
    """Deviation, rank correlation and best-cell regret of a trained surface against its prediction.

    Step 1 is one fit shared by every alpha, so its cell enters once.
    """
    from scipy.stats import spearmanr

    cells = lambda s: np.concatenate([s[:1, 0], s[:, 1:].ravel()])  # noqa: E731
    p, t = cells(pred), cells(trained)
    best = int(np.argmin(p))
    return dict(
        deviation=float(np.mean(np.abs(t - p) / p)),
        rho=float(spearmanr(p, t).statistic) if p.size >= 3 else math.nan,
        regret=float((t[best] - t.min()) / t.min()),
        best_predicted=best,
        best_trained=int(np.argmin(t)),
    )


def decide(rows: list[dict], cfg: Config, out: Path) -> list[claims.CheckResult]:
    pairs = _pairs(rows)
    table = []
    for (regime, kind, width), lst in sorted(pairs.items()):
        for seed, (p, t, g) in enumerate(lst):
            table.append(
                dict(
                    regime=regime,
                    kind=kind,
                    width=width,
                    seed=seed,
                    **metrics(p, t),
                    max_grad_rel=float(np.max(g)),
                )
            )

    def col(regime, kind, width, key):
        return np.array(
            [r[key] for r in table if (r["regime"], r["kind"], r["width"]) == (regime, kind, width)]
        )

    fig = "kernel_surfaces.png"
    res = []
    lazy_w = sorted({r["width"] for r in table if r["regime"] == "lazy" and r["kind"] == "mlp"})
    rich_w = sorted({r["width"] for r in table if r["regime"] == "rich"})
    if not lazy_w:
        return [
            claims.needs_scale(c, "cpu", details="no trained network was recorded", scale="lm")
            for c in (V.KERNEL_LAZY_AGREEMENT, V.KERNEL_RANK, V.KERNEL_BEST_CELL)
        ]
    top = lazy_w[-1]
    bands = {w: claims.t_band(col("lazy", "mlp", w, "deviation")) for w in lazy_w}
    agree = [w for w in lazy_w if bands[w].finite and bands[w].hi < TOL_DEV]
    sweep = "; ".join(
        f"width {w}: {bands[w].estimate:.3g} [{bands[w].lo:.3g}, {bands[w].hi:.3g}]" for w in lazy_w
    )
    setting = (
        f"digits, n={cfg.n_train} (noise {cfg.noise}), {cfg.n_eval} held out; alphas "
        f"{list(cfg.alphas)} x steps 1..{cfg.steps}; lambda = {cfg.lam_rel} x mean NTK eigenvalue; "
        f"{cfg.iters} Nesterov iterations per fit"
    )
    res.append(
        claims.check_mean(
            V.KERNEL_LAZY_AGREEMENT,
            col("lazy", "mlp", top, "deviation"),
            side="<",
            null=TOL_DEV,
            details=f"two-layer MLP, NTK parametrisation, width {top}; mean relative deviation "
            f"per width (t band over seeds): {sweep}. Smallest width whose band is below "
            f"{TOL_DEV}: {agree[0] if agree else 'none'}. {setting}.",
            figure=fig,
        )
    )
    res.append(
        claims.check_mean(
            V.KERNEL_RANK,
            col("lazy", "mlp", top, "rho"),
            side=">",
            null=TOL_RHO,
            details=f"two-layer MLP, width {top}; Spearman over the distinct (alpha, step) cells. "
            f"{setting}.",
            figure=fig,
        )
    )
    res.append(
        claims.check_mean(
            V.KERNEL_BEST_CELL,
            col("lazy", "mlp", top, "regret"),
            side="<",
            null=TOL_REGRET,
            details=f"two-layer MLP, width {top}; relative regret of the predicted best cell; "
            f"predicted best cells {col('lazy', 'mlp', top, 'best_predicted').tolist()}, trained "
            f"{col('lazy', 'mlp', top, 'best_trained').tolist()} (cell index: step 1, then "
            f"(alpha, step>=2) row-major). {setting}.",
            figure=fig,
        )
    )
    if len(lazy_w) >= 2:
        seeds = sorted({r["seed"] for r in table if r["regime"] == "lazy"})
        slopes = []
        for s in seeds:
            rows_s = [
                r for r in table if r["regime"] == "lazy" and r["kind"] == "mlp" and r["seed"] == s
            ]
            if len(rows_s) == len(lazy_w):
                slopes.append(
                    S.ols_slope(
                        np.log([r["width"] for r in rows_s]),
                        np.log([r["deviation"] for r in rows_s]),
                    )
                )
        res.append(
            claims.check_mean(
                V.KRR_NETWORK_DEVIATION,
                slopes,
                side="<",
                null=0.0,
                details=f"slope of log(mean relative deviation) on log(width) per seed over "
                f"widths {lazy_w} (lazy MLP on digits); the kernel-regime order is -1/2.",
                figure=fig,
            )
        )
    if rich_w:
        w = rich_w[-1]
        res.append(
            claims.check_mean(
                V.KERNEL_RICH,
                col("rich", "mlp", w, "deviation"),
                side=">",
                null=TOL_DEV,
                details=f"two-layer MLP, kappa = width^-1/2, width {w}; rich-regime deviation per "
                "width: "
                + "; ".join(
                    f"{ww}: {col('rich', 'mlp', ww, 'deviation').mean():.3g}" for ww in rich_w
                )
                + f". {setting}.",
                figure=fig,
            )
        )
    cnn_w = sorted({r["width"] for r in table if r["kind"] == "cnn"})
    if cnn_w:
        c = cnn_w[-1]
        res.append(
            claims.check_mean(
                V.KERNEL_LAZY_AGREEMENT,
                col("lazy", "cnn", c, "deviation"),
                side="<",
                null=TOL_DEV,
                details=f"CNN (two 3x3 convolutions of {c} channels, mean pooling), NTK "
                f"parametrisation; per channel count: "
                + "; ".join(
                    f"{cc}: {col('lazy', 'cnn', cc, 'deviation').mean():.3g}" for cc in cnn_w
                )
                + f". {setting}.",
                figure=fig,
            )
        )
    plot(pairs, table, cfg, out / fig)
    C.save_run(out, cfg, dict(table=table), table)
    return res


def plot(pairs: dict, table: list[dict], cfg: Config, path: Path) -> Path:
    with simio.style() as plt:
        fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
        lazy = sorted(k for k in pairs if k[0] == "lazy" and k[1] == "mlp")
        if lazy:
            p, t, _ = pairs[lazy[-1]][0]
            for i, a in enumerate(cfg.alphas):
                steps = np.arange(1, cfg.steps + 1)
                ax[0].plot(steps, p[i], "-", color=f"C{i}", label=f"closed form, alpha={a}")
                ax[0].plot(steps, t[i], "o", color=f"C{i}")
            ax[0].set(
                xlabel="self-distillation step",
                ylabel="held-out MSE",
                title=f"lazy MLP width {lazy[-1][2]}, seed 0 (dots: trained)",
            )
            ax[0].legend(fontsize=6)
        for regime, kind, style in (
            ("lazy", "mlp", "o-"),
            ("rich", "mlp", "s--"),
            ("lazy", "cnn", "^:"),
        ):
            ws = sorted({r["width"] for r in table if (r["regime"], r["kind"]) == (regime, kind)})
            if not ws:
                continue
            m = [
                np.mean(
                    [
                        r["deviation"]
                        for r in table
                        if (r["regime"], r["kind"], r["width"]) == (regime, kind, w)
                    ]
                )
                for w in ws
            ]
            ax[1].loglog(ws, m, style, label=f"{regime} {kind}")
        ax[1].axhline(TOL_DEV, color="k", lw=0.8, ls=":")
        ax[1].set(
            xlabel="width (units / channels)",
            ylabel="mean relative deviation",
            title="trained vs predicted surface",
        )
        ax[1].legend(fontsize=7)
        for regime, kind, mk in (("lazy", "mlp", "o"), ("rich", "mlp", "s")):
            keys = sorted(k for k in pairs if k[:2] == (regime, kind))
            if keys:
                p, t, _ = pairs[keys[-1]][0]
                ax[2].plot(p.ravel(), t.ravel(), mk, ms=4, label=f"{regime}, width {keys[-1][2]}")
        lim = ax[2].get_xlim()
        ax[2].plot(lim, lim, "k:", lw=0.8)
        ax[2].set(
            xlabel="predicted held-out MSE",
            ylabel="trained held-out MSE",
            title="every (alpha, step), seed 0",
        )
        ax[2].legend(fontsize=7)
        return simio.save_figure(fig, path.with_suffix(""))


def run(cfg: Config, out: Path, budget: Budget | None = None) -> list[claims.CheckResult]:
    """Measure (units written as they finish; a budget stops between units), then decide from
    what was measured: a claim the units cannot decide is reported as needing a larger scale."""
    return C.measure_then_decide(cfg, out, budget or Budget(), measure, decide, CLAIMS)
