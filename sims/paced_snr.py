"""Measured cross-problem gradient SNR against student pass rate (JAX), with Beta-kernel fits.

Claims: paced.snr-collapse-mastered, paced.snr-collapse-unreachable (PACED v3 abstract, checked
on a trained toy student), paced.snr-binned-estimator (derived), paced.default-kernel-efficiency
(derived from the measured curve). Every check is decided on a percentile bootstrap over the
problems within each pass-rate bin (`claims.RULE.n_boot` resamples, vectorised in
`bin_bootstrap`). Quick default ~25 s on 2 CPU cores.
Larger run:  python sims/paced_snr.py --problems 20000 --bins 20 --bootstrap 200

A teacher network labels problems; the teacher also sees features hidden from the student, with
a per-problem strength c ~ U(0, hidden_max) (out-of-reach knowledge). A narrower student is
distilled briefly, so its pass rate p_i = q(y_i | x_i) spreads over (0, 1). For each problem the
gradient of the forward-KL distillation loss (to n_ref sampled teacher answers; 0 = the full
teacher distribution), and of the exact on-policy reverse KL, is taken; problems are binned by
p, and ||mean g||^2 / tr Cov g is measured per bin (numerator debiased, bootstrap SE). The same
binning is applied to gradients drawn from the SNR model g = s(p) u + xi (docs/theory/paced.md)
as a check of the estimator. `fits.json` has the Beta exponents fitted to each measured SNR curve
and to the implied optimal weight w*(p) = ||E g|| / tr Cov g per bin.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from sdtheory import claims, simio
from sdtheory.claims.catalog.paced import DEFAULT_EFF, ESTIMATOR, MASTERED, UNREACHABLE
from sdtheory.theory import paced


@dataclasses.dataclass(frozen=True)
class Config:
    problems: int = dataclasses.field(default=4000, metadata={"help": "measured problems"})
    train_problems: int = dataclasses.field(default=3000, metadata={"help": "student train set"})
    dim: int = dataclasses.field(default=16, metadata={"help": "input features seen by both"})
    hidden_dim: int = dataclasses.field(
        default=16, metadata={"help": "features only the teacher sees"}
    )
    hidden_max: tuple[float, ...] = dataclasses.field(
        default=(1.0, 0.0),
        metadata={"help": "conditions: max strength of hidden features (0 = all learnable)"},
    )
    classes: int = dataclasses.field(default=10, metadata={"help": "answers per problem"})
    teacher_width: int = dataclasses.field(default=64, metadata={"help": "teacher hidden units"})
    teacher_scale: float = dataclasses.field(default=15.0, metadata={"help": "teacher logit scale"})
    student_width: int = dataclasses.field(default=16, metadata={"help": "student hidden units"})
    train_steps: int = dataclasses.field(
        default=1500, metadata={"help": "student distillation steps"}
    )
    n_ref: tuple[int, ...] = dataclasses.field(
        default=(1, 0), metadata={"help": "sampled teacher answers per gradient (0 = exact KL)"}
    )
    reverse: bool = dataclasses.field(
        default=True, metadata={"help": "also measure the exact reverse-KL gradient"}
    )
    bins: int = dataclasses.field(default=10, metadata={"help": "equal-width pass-rate bins"})
    min_count: int = dataclasses.field(default=30, metadata={"help": "drop bins with fewer"})
    bootstrap: int = dataclasses.field(default=30, metadata={"help": "bootstrap resamples per bin"})
    model_dim: int = dataclasses.field(
        default=50, metadata={"help": "dimension of model gradients"}
    )
    seed: int = 0


def bin_bootstrap(g, p, lo_edges, bins: int, n_boot: int, seed: int):
    """Debiased numerator ||g_bar||^2 - tr/n and trace tr Cov per kept bin, with replicates.

    Problems are resampled within their pass-rate bin (multinomial weights, so one matrix product
    per bin); `lo_edges` are the left edges of the bins kept by `measure_snr_curve`. Returns
    `(num, tr, counts)`: arrays of shape (n_boot + 1, n_bins), row 0 the point estimate.
    """
    g = np.asarray(g, dtype=np.float64)
    which = np.clip(np.digitize(p, np.linspace(0.0, 1.0, bins + 1)) - 1, 0, bins - 1)
    rng = np.random.default_rng(seed)
    sq = np.einsum("ij,ij->i", g, g)
    num, tr, counts = [], [], []
    for lo in lo_edges:
        idx = np.flatnonzero(which == int(round(lo * bins)))
        n = idx.size
        w = np.vstack([np.ones(n), rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)])
        mean = w @ g[idx] / n
        m2 = np.einsum("ij,ij->i", mean, mean)
        t = (w @ sq[idx] - n * m2) / (n - 1)
        num.append(m2 - t / n)
        tr.append(t)
        counts.append(n)
    return np.array(num).T, np.array(tr).T, np.array(counts)


def _band(values: np.ndarray) -> claims.Band:
    """Point estimate (row 0) with the basic bootstrap band of the replicates (rows 1..).

    Both statistics are biased under resampling (a clipped square root, a maximum over bins): the
    plain percentile band of the efficiency does not even contain its estimate, so the band is
    the basic (reverse-percentile) one (`claims.replicate_band`).
    """
    band = claims.replicate_band(float(values[0]), values[1:], method="basic")
    return dataclasses.replace(band, method=band.method + " over problems within bins")


COLLAPSE_FRACTION = 0.5  # collapsed: the end bin's SNR below this fraction of the interior's


def collapse_statistic(num, tr, end: int) -> np.ndarray:
    """SNR of the end bin minus half the median interior SNR (< 0: collapsed), per replicate.

    The reference is the median of the interior bins, not their maximum: the maximum of eight
    noisy bins is biased upward and so noisy that the verdict hinged on the seed.
    """
    snr = num / tr
    return snr[:, end] - COLLAPSE_FRACTION * np.median(snr[:, 1:-1], axis=1)


def default_efficiency(num, tr, counts, p_mean) -> np.ndarray:
    """SNR efficiency of p(1-p) weights on the binned signal/noise, per replicate.

    Common-direction model per bin: signal sqrt(max(num, 0)), noise tr; the weight of a bin is
    p(1-p) at its mean pass rate; every problem of the bin carries the bin's values.
    """
    s, v = np.sqrt(np.maximum(num, 0.0)), tr
    w = paced.beta_kernel_weight(p_mean)
    got = (counts * w * s).sum(1) ** 2 / (counts * w * w * v).sum(1)
    return got / (counts * s * s / v).sum(1)


def run(cfg: Config) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    from sdtheory.nets import paced as nets

    rows, fits, model_rows = [], [], []
    key = jax.random.PRNGKey(cfg.seed)
    t0 = time.perf_counter()
    for ci, hm in enumerate(cfg.hidden_max):
        kt, ks, kp, kq, kg, kr = jax.random.split(jax.random.fold_in(key, ci), 6)
        teacher = nets.init_mlp(
            kt, cfg.dim + cfg.hidden_dim, cfg.teacher_width, cfg.classes, scale=cfg.teacher_scale
        )
        train = nets.make_population(
            kp, teacher, cfg.train_problems, cfg.dim, 1.0, cfg.hidden_dim, hm
        )
        pop = nets.make_population(kr, teacher, cfg.problems, cfg.dim, 1.0, cfg.hidden_dim, hm)
        student = nets.train_student(
            kq, nets.init_mlp(ks, cfg.dim, cfg.student_width, cfg.classes), train, cfg.train_steps
        )
        p = np.asarray(nets.pass_rates(student, pop))
        arms = [("forward", nr) for nr in cfg.n_ref] + ([("reverse", 0)] if cfg.reverse else [])
        for direction, nr in arms:
            g = np.asarray(
                nets.per_problem_gradients(jax.random.fold_in(kg, nr), student, pop, nr, direction)
            )
            c = nets.measure_snr_curve(g, p, cfg.bins, cfg.min_count, cfg.bootstrap, cfg.seed)
            s_b = np.sqrt(np.maximum(c.mean_norm2, 0.0))
            w_b = s_b / c.trace_cov
            for i in range(c.snr.size):
                rows.append(
                    {
                        "hidden_max": hm,
                        "loss": direction,
                        "n_ref": nr,
                        "bin_lo": c.lo[i],
                        "bin_hi": c.hi[i],
                        "p_mean": c.p_mean[i],
                        "count": int(c.count[i]),
                        "snr_sim": c.snr[i],
                        "snr_se": c.snr_se[i],
                        "mean_norm2": c.mean_norm2[i],
                        "trace_cov": c.trace_cov[i],
                        "w_star_sim": w_b[i],
                    }
                )
            fit = {
                "hidden_max": hm,
                "loss": direction,
                "n_ref": nr,
                "pass_rate_mean": float(p.mean()),
            }
            ok = c.snr > 0
            if ok.sum() >= 3:
                f = paced.fit_beta_kernel(c.p_mean[ok], c.snr[ok], method="lsq")
                fit.update(snr_alpha=f.alpha, snr_beta=f.beta, snr_delta=f.delta)
            okw = w_b > 0
            if okw.sum() >= 3:
                f = paced.fit_beta_kernel(c.p_mean[okw], w_b[okw], method="lsq")
                fm = paced.fit_beta_kernel(c.p_mean[okw], w_b[okw], method="minimax")
                sig = np.repeat(s_b[okw], c.count[okw].astype(int))
                var = np.repeat(c.trace_cov[okw], c.count[okw].astype(int))
                pp = np.repeat(c.p_mean[okw], c.count[okw].astype(int))
                fit.update(
                    w_alpha=f.alpha,
                    w_beta=f.beta,
                    w_delta=f.delta,
                    w_scale=f.scale,
                    w_minimax_alpha=fm.alpha,
                    w_minimax_beta=fm.beta,
                    w_minimax_delta=fm.delta,
                    eff_default=paced.snr_efficiency(paced.beta_kernel_weight(pp), sig, var),
                    eff_fitted=paced.snr_efficiency(f(pp), sig, var),
                    eff_minimax=paced.snr_efficiency(fm(pp), sig, var),
                    eff_uniform=paced.snr_efficiency(np.ones_like(pp), sig, var),
                )
            for end, name in ((0, "low"), (-1, "high")):
                fit[f"ratio_{name}_to_interior"] = float(c.snr[end] / np.median(c.snr[1:-1]))
                fit[f"p_{name}_bin"] = float(c.p_mean[end])
            fit["p_peak"] = float(c.p_mean[int(np.argmax(c.snr))])
            if not fits:  # the main condition: bands for the checks
                num, tr, counts = bin_bootstrap(
                    g, p, c.lo, cfg.bins, claims.RULE.n_boot, cfg.seed + 7
                )
                for end, name in ((0, "low"), (-1, "high")):
                    band = _band(collapse_statistic(num, tr, end))
                    fit[f"collapse_{name}_band"] = [band.estimate, band.lo, band.hi]
                eff = _band(default_efficiency(num, tr, counts, c.p_mean))
                fit["eff_default_band"] = [eff.estimate, eff.lo, eff.hi]
            fits.append(fit)
            print(
                f"  hidden_max={hm} {direction} n_ref={nr}: SNR per bin "
                f"{np.array2string(c.snr, precision=4)}  ({time.perf_counter() - t0:.1f}s)",
                flush=True,
            )
        if ci == 0:
            model_rows = _model_curve(cfg, p)
    return {"rows": rows, "fits": fits, "model": model_rows}


def _model_curve(cfg: Config, p: np.ndarray) -> list[dict]:
    """Gradients from the SNR model at the measured pass rates, binned the same way."""
    from sdtheory.nets import paced as nets

    rng = np.random.default_rng(cfg.seed + 1)
    s, v = paced.snr_model(np.clip(p, 1e-6, 1 - 1e-6), a0=1.0, a1=1.0, b0=0.0, b1=0.0)
    s = 0.3 * s  # signal scale: bin SNRs of order 0.01-0.1, like the measurement
    u = np.zeros(cfg.model_dim)
    u[0] = 1.0
    noise = rng.standard_normal((p.size, cfg.model_dim)) * np.sqrt(v / cfg.model_dim)[:, None]
    g = s[:, None] * u + noise
    c = nets.measure_snr_curve(g, p, cfg.bins, cfg.min_count, cfg.bootstrap, cfg.seed)
    num, tr, _ = bin_bootstrap(g, p, c.lo, cfg.bins, claims.RULE.n_boot, cfg.seed + 101)
    snr_se = (num / tr)[1:].std(axis=0, ddof=1)
    edges = np.linspace(0, 1, cfg.bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, cfg.bins - 1)
    out = []
    for i in range(c.snr.size):
        m = which == int(round(c.lo[i] * cfg.bins))
        theory = s[m].mean() ** 2 / (s[m].var(ddof=1) + v[m].mean())
        out.append(
            {
                "p_mean": c.p_mean[i],
                "count": int(c.count[i]),
                "snr_theory": theory,
                "snr_sim": c.snr[i],
                "snr_se": float(snr_se[i]),
            }
        )
    return out


def check(res: dict, cfg: Config) -> list[claims.CheckResult]:
    main = res["fits"][0]
    n_boot = claims.RULE.n_boot
    method = f"basic bootstrap over problems within bins, {n_boot} resamples"
    others = "; ".join(
        f"hidden_max={f['hidden_max']}, {f['loss']} KL, n_ref={f['n_ref']}: bottom/median "
        f"interior {f['ratio_low_to_interior']:.2f}, top/median interior "
        f"{f['ratio_high_to_interior']:.2f}, "
        f"peak at p={f['p_peak']:.2f}"
        for f in res["fits"]
    )
    cond = f"main condition hidden_max={main['hidden_max']}, n_ref={main['n_ref']}"
    out = []
    for c, name, where in ((MASTERED, "high", "top"), (UNREACHABLE, "low", "bottom")):
        est, lo, hi = main[f"collapse_{name}_band"]
        out.append(
            claims.check_band(
                c,
                claims.Band(est, lo, hi, n_boot, method),
                side="<",
                null=0.0,
                details=f"SNR({where} bin, p={main[f'p_{name}_bin']:.2f}) - {COLLAPSE_FRACTION} x "
                "median interior "
                f"SNR (< 0: collapsed); {where}/median interior = "
                f"{main[f'ratio_{name}_to_interior']:.3f}. {cond}. All conditions: {others}",
                figure="snr_curve.png",
            )
        )
    m = res["model"]
    out.append(
        claims.check_consistent(
            ESTIMATOR,
            [r["snr_sim"] for r in m],
            [r["snr_theory"] for r in m],
            [r["snr_se"] for r in m],
            labels=[f"bin at p={r['p_mean']:.2f}" for r in m],
            details=f"{len(m)} bins of model gradients; SE from {n_boot} bootstrap resamples",
        )
    )
    est, lo, hi = main["eff_default_band"]
    eff_details = (
        f"p(1-p) at each bin's mean pass rate, every bin counted ({cond})"
        if "w_alpha" not in main
        else f"Beta fit to measured w*: alpha={main['w_alpha']:.2f}, beta={main['w_beta']:.2f} "
        f"(delta {main['w_delta']:.2f}); efficiency (positive-signal bins) of the fit "
        f"{main['eff_fitted']:.3f}, minimax fit {main['eff_minimax']:.3f}, uniform "
        f"{main['eff_uniform']:.3f}, p(1-p) {main['eff_default']:.3f}"
    )
    out.append(
        claims.check_band(
            DEFAULT_EFF,
            claims.Band(est, lo, hi, n_boot, method),
            side=">",
            null=0.9,
            details=eff_details,
        )
    )
    return out


def plot(res: dict, cfg: Config):
    with simio.style() as plt:
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
        rows = res["rows"]
        for f in res["fits"]:
            sel = [
                r
                for r in rows
                if r["hidden_max"] == f["hidden_max"]
                and r["n_ref"] == f["n_ref"]
                and r["loss"] == f["loss"]
            ]
            x = np.array([r["p_mean"] for r in sel])
            y = np.array([r["snr_sim"] for r in sel])
            e = np.array([r["snr_se"] for r in sel])
            lab = f"hidden {f['hidden_max']}, {f['loss'][:3]}, n_ref {f['n_ref']}"
            axes[0].errorbar(x, y, yerr=2 * e, fmt="o-", ms=3, label=lab)
            w = np.array([r["w_star_sim"] for r in sel])
            axes[1].plot(x, w / np.nanmax(w), "o-", ms=3, label=lab)
            if "w_alpha" in f:
                grid = np.linspace(x.min(), x.max(), 97)
                k = f["w_scale"] * grid ** f["w_alpha"] * (1 - grid) ** f["w_beta"]
                axes[1].plot(
                    grid, k / np.nanmax(w), "--", lw=0.8, color=axes[1].lines[-1].get_color()
                )
        axes[0].axhline(0, color="k", lw=0.5)
        axes[0].set(
            xlabel="student pass rate p (bin mean)",
            ylabel="SNR  ||E g||² / tr Cov g",
            title="measured SNR per bin (±2 SE)",
        )
        axes[0].legend(fontsize=7)
        axes[1].set(
            xlabel="p",
            ylabel="w*(p) = ||E g|| / tr Cov (max 1)",
            title="implied w*, Beta fit (dashed)",
        )
        m = res["model"]
        axes[2].errorbar(
            [r["p_mean"] for r in m],
            [r["snr_sim"] for r in m],
            yerr=[2 * r["snr_se"] for r in m],
            fmt="o",
            ms=3,
            label="binned estimate",
        )
        axes[2].plot([r["p_mean"] for r in m], [r["snr_theory"] for r in m], "k--", label="theory")
        axes[2].set(xlabel="p", title="estimator on model gradients")
        axes[2].legend(fontsize=7)
        return fig


def main(argv: list[str] | None = None) -> Path:
    cfg, out = simio.parse(Config, argv, name="paced_snr", doc=__doc__)
    res = run(cfg)
    simio.save_table(out / "results.csv", res["rows"])
    simio.save_table(out / "model.csv", res["model"])
    simio.save_json(out / "fits.json", res["fits"])
    simio.save_figure(plot(res, cfg), out / "snr_curve")
    simio.save_checks(out, check(res, cfg))
    return out


if __name__ == "__main__":
    main()
