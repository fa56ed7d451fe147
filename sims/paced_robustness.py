"""SNR efficiency of misspecified weights against delta, with the 1 - delta^2 floor and extremes.

Claims: paced.optimal-weights, paced.misspec-aggregate, paced.misspec-pointwise,
paced.two-point-tight, paced.beta-fit-recovers, paced.beta-fit-delta (derived), and
paced.misspec-order (PACED v1 abstract: worst-case loss O(delta^2)). Quick default ~3 s.
Larger run:  python sims/paced_robustness.py --sets 200 --trials 2000 --problems 14

For each delta: random problem sets (pass rates p ~ U(0,1), signal and noise from the SNR model
with random boundary exponents), the optimal weights s/v multiplied by (1 + eps) with
|eps| <= delta drawn at random and chosen adversarially (all 2^n sign vertices), the two-point
construction, and the pointwise one-step progress ratio. Then Beta kernels fitted to w* = Beta x h
(smooth h) and their efficiency against their implied delta.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from sdtheory import claims, simio
from sdtheory.claims.catalog.paced import AGG, FIT, OPT, ORDER, POINT
from sdtheory.claims.catalog.paced import FIT_DELTA as FITD
from sdtheory.claims.catalog.paced import TWO_POINT as TWO
from sdtheory.theory import paced


@dataclasses.dataclass(frozen=True)
class Config:
    deltas: int = dataclasses.field(default=19, metadata={"help": "delta grid on [0, 0.9]"})
    sets: int = dataclasses.field(default=40, metadata={"help": "random problem sets per delta"})
    problems: int = dataclasses.field(
        default=10, metadata={"help": "problems per set (2^n vertices)"}
    )
    trials: int = dataclasses.field(default=300, metadata={"help": "random eps draws per set"})
    fits: int = dataclasses.field(default=30, metadata={"help": "random Beta x h targets to fit"})
    seed: int = 0


def _random_set(rng, n):
    p = rng.uniform(0.02, 0.98, n)
    a0, a1 = rng.uniform(0.5, 2.0, 2)
    b0, b1 = rng.uniform(0.0, 1.0, 2)
    s, v = paced.snr_model(p, a0, a1, b0, b1)
    return s, v


def run(cfg: Config) -> dict:
    rng = np.random.default_rng(cfg.seed)
    rows = []
    max_eff_random_w, opt_dev = 0.0, 0.0
    for delta in np.linspace(0.0, 0.9, cfg.deltas):
        rand_min, adv_min = 1.0, 1.0
        for _ in range(cfg.sets):
            s, v = _random_set(rng, cfg.problems)
            w_star = paced.optimal_weights(s, v)
            opt_dev = max(opt_dev, abs(paced.snr_efficiency(w_star, s, v) - 1.0))
            w_any = rng.standard_normal(cfg.problems)
            max_eff_random_w = max(max_eff_random_w, paced.snr_efficiency(w_any, s, v))
            eps = rng.uniform(-delta, delta, (cfg.trials, cfg.problems))
            w = w_star * (1 + eps)  # vectorised snr_efficiency over the trials
            eff = (w @ s) ** 2 / ((w * w) @ v) / np.sum(s * s / v)
            rand_min = min(rand_min, float(eff.min()))
            adv_min = min(adv_min, paced.adversarial_misspecification(s, v, delta)[1])
        s2, v2, w2, _ = paced.two_point_construction(delta)
        two = paced.snr_efficiency(w2, s2, v2)
        eps_grid = np.linspace(-delta, delta, 201)
        ws = paced.pointwise_optimal_weight(0.7, 1.3, 0.1, 2.0)
        ratio = paced.pointwise_progress(
            ws * (1 + eps_grid), 0.7, 1.3, 0.1, 2.0
        ) / paced.pointwise_progress(ws, 0.7, 1.3, 0.1, 2.0)
        rows.append(
            {
                "delta": delta,
                "bound_theory": paced.misspecification_bound(delta),
                "random_min_sim": rand_min,
                "adversarial_sim": adv_min,
                "two_point_sim": two,
                "pointwise_min_sim": float(ratio.min()),
            }
        )
    fit_rows = []
    p = np.linspace(0.01, 0.99, 99)
    for i in range(cfg.fits):
        a, b = rng.uniform(0.2, 3.0, 2)
        amp = 0.0 if i < cfg.fits // 3 else rng.uniform(0.05, 0.8)
        h = np.exp(amp * np.sin(rng.uniform(1, 6) * p + rng.uniform(0, 6)))
        w_star = paced.beta_kernel_weight(p, a, b) * h
        for method in ("lsq", "boundary", "minimax"):
            f = paced.fit_beta_kernel(p, w_star, method=method)
            fit_rows.append(
                {
                    "target_alpha": a,
                    "target_beta": b,
                    "h_amplitude": amp,
                    "method": method,
                    "alpha_sim": f.alpha,
                    "beta_sim": f.beta,
                    "delta": f.delta,
                    "efficiency_sim": paced.snr_efficiency(f(p), w_star, np.ones_like(p)),
                    "efficiency_bound_theory": paced.misspecification_bound(min(f.delta, 1.0)),
                }
            )
    return {
        "rows": rows,
        "fits": fit_rows,
        "max_eff_random_w": max_eff_random_w,
        "opt_dev": opt_dev,
    }


def check(res: dict, cfg: Config) -> list[claims.CheckResult]:
    rows, fits = res["rows"], res["fits"]
    bound = np.array([r["bound_theory"] for r in rows])
    rand = np.array([r["random_min_sim"] for r in rows])
    adv = np.array([r["adversarial_sim"] for r in rows])
    two = np.array([r["two_point_sim"] for r in rows])
    point = np.array([r["pointwise_min_sim"] for r in rows])
    d = np.array([r["delta"] for r in rows])
    worst_gap = float(np.min(np.minimum(rand, adv) - bound))
    m = (d > 0.05) & (d < 0.5)
    slope = float(np.polyfit(np.log(d[m]), np.log(1 - adv[m]), 1)[0])
    exact = [f for f in fits if f["h_amplitude"] == 0.0]
    rec_err = max(
        max(abs(f["alpha_sim"] - f["target_alpha"]), abs(f["beta_sim"] - f["target_beta"]))
        for f in exact
    )
    fit_gap = min(f["efficiency_sim"] - f["efficiency_bound_theory"] for f in fits)
    n_sets = cfg.deltas * cfg.sets
    return [
        claims.check_true(
            OPT,
            res["max_eff_random_w"] <= 1 + 1e-12 and res["opt_dev"] <= 1e-12,
            predicted="max efficiency 1, attained at s/v",
            measured=f"max over {n_sets} random weightings {res['max_eff_random_w']:.6f}; "
            f"|eta(w*) - 1| <= {res['opt_dev']:.1e}",
            tolerance="1e-12",
        ),
        claims.check_bound(
            AGG,
            0.0,
            worst_gap,
            direction=">=",
            slack=1e-12,
            details=f"min over delta of (min efficiency - (1 - delta^2)); {n_sets} sets of "
            f"{cfg.problems} problems, {cfg.trials} random eps each plus all 2^{cfg.problems} "
            "sign vertices",
            figure="efficiency_vs_delta.png",
        ),
        claims.check_close(
            POINT,
            0.0,
            float(np.max(np.abs(point - bound))),
            atol=1e-12,
            details="max |min_eps progress ratio - (1 - delta^2)| over the grid",
        ),
        claims.check_close(
            TWO,
            0.0,
            float(np.max(np.abs(two - bound))),
            atol=1e-12,
            details="max |two-point efficiency - (1 - delta^2)| over the grid",
        ),
        claims.check_close(
            ORDER,
            2.0,
            slope,
            atol=0.1,
            details="slope of log(1 - worst efficiency) vs log delta on "
            f"delta in (0.05, 0.5); worst loss at delta=0.3: "
            f"{1 - adv[np.argmin(np.abs(d - 0.3))]:.4f}",
        ),
        claims.check_close(
            FIT,
            0.0,
            rec_err,
            atol=1e-8,
            details=f"max exponent error over {len(exact)} exact Beta targets x 3 methods",
        ),
        claims.check_bound(
            FITD,
            0.0,
            fit_gap,
            direction=">=",
            slack=1e-12,
            details=f"min (efficiency - (1 - delta^2)) over {len(fits)} fits; "
            "median delta by method: "
            + ", ".join(
                f"{mm} {np.median([f['delta'] for f in fits if f['method'] == mm]):.3f}"
                for mm in ("lsq", "boundary", "minimax")
            ),
        ),
    ]


def plot(res: dict, cfg: Config):
    with simio.style() as plt:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
        rows = res["rows"]
        d = np.array([r["delta"] for r in rows])
        ax.plot(d, [r["bound_theory"] for r in rows], "k-", label="bound 1-δ²")
        ax.plot(d, [r["random_min_sim"] for r in rows], "o", ms=3, label="random ε (min)")
        ax.plot(d, [r["adversarial_sim"] for r in rows], "s", ms=3, mfc="none", label="adversarial")
        ax.plot(d, [r["two_point_sim"] for r in rows], "x", ms=4, label="two-point")
        ax.set(xlabel="δ", ylabel="SNR efficiency", title="efficiency under misspecification")
        ax.legend(fontsize=7)
        f = res["fits"]
        for mm, mk in (("lsq", "o"), ("boundary", "^"), ("minimax", "s")):
            sel = [x for x in f if x["method"] == mm]
            ax2.plot(
                [x["delta"] for x in sel],
                [x["efficiency_sim"] for x in sel],
                mk,
                ms=3,
                mfc="none",
                label=mm,
            )
        dd = np.linspace(0, max(0.01, max(x["delta"] for x in f)), 50)
        ax2.plot(dd, 1 - np.minimum(dd, 1) ** 2, "k-", label="1-δ²")
        ax2.set(
            xlabel="implied δ of the Beta fit",
            ylabel="efficiency of the fit",
            title="Beta kernels fitted to Beta × h",
        )
        ax2.legend(fontsize=7)
        return fig


def main(argv: list[str] | None = None) -> Path:
    cfg, out = simio.parse(Config, argv, name="paced_robustness", doc=__doc__)
    res = run(cfg)
    simio.save_table(out / "results.csv", res["rows"])
    simio.save_table(out / "fits.csv", res["fits"])
    simio.save_figure(plot(res, cfg), out / "efficiency_vs_delta")
    simio.save_checks(out, check(res, cfg))
    return out


if __name__ == "__main__":
    main()
