"""Finite-sample generations: support collapse without anchoring, stationary error with it.

Each generation fits a categorical student (MLE) to N samples of the meta-teacher
m_n = Phi_lam(p0, q_n). lam = 0 is the Wright-Fisher chain (model collapse); arithmetic
anchoring keeps the error stationary at a level set by N; geometric anchoring cannot bring lost
outcomes back. Exact closed forms for the arithmetic chain are in sdtheory.theory.meta.

Claims: meta.finite-sample-collapse, meta.finite-sample-stationary,
meta.geometric-no-support-recovery (all derived). Quick default ~3 s on CPU.
Larger run:  python sims/meta_finite_sample.py --vocab 500 --n-samples 1000 4000 --replicates 1000
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from sdtheory import claims, simio
from sdtheory.claims.catalog.meta import COLLAPSE, NO_RECOVERY, STATIONARY
from sdtheory.core import kl
from sdtheory.theory import meta


@dataclasses.dataclass(frozen=True)
class Config:
    vocab: int = dataclasses.field(default=50, metadata={"help": "outcomes k"})
    n_samples: tuple[int, ...] = dataclasses.field(
        default=(100, 400), metadata={"help": "samples N per generation"}
    )
    lams: tuple[float, ...] = dataclasses.field(
        default=(0.0, 0.05, 0.2), metadata={"help": "arithmetic anchoring weights"}
    )
    geometric_lam: float = dataclasses.field(
        default=0.2, metadata={"help": "lam of the geometric-anchoring arm"}
    )
    generations: int = dataclasses.field(default=100, metadata={"help": "generations"})
    replicates: int = dataclasses.field(default=200, metadata={"help": "independent chains"})
    concentration: float = dataclasses.field(default=1.0, metadata={"help": "Dirichlet of p0"})
    seed: int = 0


def _arms(cfg: Config):
    return [("arithmetic", lam) for lam in cfg.lams] + [("geometric", cfg.geometric_lam)]


def run(cfg: Config) -> dict[str, np.ndarray]:
    """Long table: per (kind, lam, N, generation) means and SEs over replicates, with theory."""
    rng = np.random.default_rng(cfg.seed)
    lp0 = np.log(rng.dirichlet(np.full(cfg.vocab, cfg.concentration)))
    p0 = np.exp(lp0)
    rows = []
    arm_rngs = rng.spawn(len(_arms(cfg)) * len(cfg.n_samples))
    for i, ((kind, lam), n_s) in enumerate((a, n) for a in _arms(cfg) for n in cfg.n_samples):
        counts = meta.finite_sample_generations(
            lp0, lam, n_s, cfg.generations, arm_rngs[i], kind=kind, replicates=cfg.replicates
        )
        q = counts / n_s
        with np.errstate(divide="ignore"):
            lq = np.log(q)
        alive = counts > 0
        returns = int((~alive[:, :-1] & alive[:, 1:]).sum())
        chi2 = ((q - p0) ** 2 / p0).sum(-1)
        sq = ((q - p0) ** 2).sum(-1)
        het = 1 - (q**2).sum(-1)
        if kind == "arithmetic":
            lm = np.logaddexp(np.log(lam) + lp0, np.log1p(-lam) + lq) if lam > 0 else lq
        else:
            lm = meta.geometric_anchor(lp0, lq, lam)
        kl_teacher = kl(lp0, lm)  # KL(p0 || m_n): what generation n+1 is trained on
        kl_rev = kl(lq, lp0)  # KL(q_n || p0): finite even after support loss
        gens = np.arange(cfg.generations + 1)
        chi2_th = meta.finite_sample_chi2(cfg.vocab, n_s, lam, gens)
        het_th = meta.finite_sample_heterozygosity(lp0, n_s, lam, gens)
        sq_th = meta.finite_sample_sq_error(lp0, n_s, lam, gens)
        half = cfg.generations // 2
        se = lambda x: x.std(0, ddof=1) / np.sqrt(cfg.replicates)
        support = alive.sum(-1).astype(float)
        for g in gens:
            rows.append(
                {
                    "kind": kind,
                    "lam": lam,
                    "n_samples": n_s,
                    "generation": int(g),
                    "support_sim": support[:, g].mean(),
                    "support_se": se(support)[g],
                    "chi2_sim": chi2[:, g].mean(),
                    "chi2_se": se(chi2)[g],
                    "chi2_theory": chi2_th[g] if kind == "arithmetic" else np.nan,
                    "het_sim": het[:, g].mean(),
                    "het_se": se(het)[g],
                    "het_theory": het_th[g] if kind == "arithmetic" else np.nan,
                    "kl_teacher_sim": float(np.mean(kl_teacher[:, g])),
                    "kl_teacher_finite_frac": float(np.mean(np.isfinite(kl_teacher[:, g]))),
                    "kl_student_rev_sim": float(np.mean(kl_rev[:, g])),
                    "returns": returns,
                    "sq_err_sim": sq[:, g].mean(),
                    "sq_err_se": se(sq)[g],
                    "sq_err_theory": sq_th[g] if kind == "arithmetic" else np.nan,
                    # per-chain averages over the second half: independent across chains
                    "late_sq_err_sim": float(sq[:, half:].mean()),
                    "late_sq_err_se": float(se(sq[:, half:].mean(1))),
                    "late_sq_err_theory": float(sq_th[half:].mean()),
                    "late_chi2_sim": float(chi2[:, half:].mean()),
                    "late_chi2_theory": float(chi2_th[half:].mean()),
                }
            )
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def check(res: dict[str, np.ndarray], cfg: Config) -> list[claims.CheckResult]:
    out = []
    kind, lam, ns, gen = res["kind"], res["lam"], res["n_samples"], res["generation"]
    last = gen == cfg.generations

    def at(k, l, n, g=None):
        sel = (kind == k) & (lam == l) & (ns == n)
        return sel if g is None else sel & (gen == g)

    # collapse at lam = 0: absorbing support (exact) and the heterozygosity law (Monte Carlo)
    if 0.0 in cfg.lams:
        details, ok = [], True
        est, pred, se, labels = [], [], [], []
        for n in cfg.n_samples:
            sel = at("arithmetic", 0.0, n)
            sup = res["support_sim"][sel]
            ret = int(res["returns"][sel][0])
            ok &= ret == 0 and bool(np.all(np.diff(sup) <= 0)) and sup[-1] < cfg.vocab
            g1 = sel & (gen >= 1)
            est += list(res["het_sim"][g1])
            pred += list(res["het_theory"][g1])
            se += list(res["het_se"][g1])
            labels += [f"N={n}, generation {g}" for g in gen[g1]]
            details.append(
                f"N={n}: mean support {sup[0]:.0f} -> {sup[1]:.1f} (gen 1) -> "
                f"{sup[-1]:.1f} (gen {cfg.generations}), returns {ret}"
            )
        setting = f"k={cfg.vocab}, {cfg.replicates} chains; " + "; ".join(details)
        if ok:
            out.append(
                claims.check_consistent(
                    COLLAPSE,
                    est,
                    pred,
                    se,
                    labels=labels,
                    details="E[1 - sum q^2] against H0 (1-1/N)^n per generation (support "
                    f"absorbing and shrinking: exact). {setting}",
                    figure="drift.png",
                )
            )
        else:
            out.append(
                claims.check_true(
                    COLLAPSE,
                    False,
                    predicted="0 returns, support shrinks",
                    measured="; ".join(details),
                    details=setting,
                    figure="drift.png",
                )
            )
    # stationary error at lam > 0: one unit per (lam, N), per-chain late averages
    est, pred, se, labels, notes = [], [], [], [], []
    for l in cfg.lams:
        if l == 0.0:
            continue
        for n in cfg.n_samples:
            sel = at("arithmetic", l, n, cfg.generations)
            est.append(float(res["late_sq_err_sim"][sel][0]))
            se.append(float(res["late_sq_err_se"][sel][0]))
            pred.append(float(res["late_sq_err_theory"][sel][0]))
            labels.append(f"lam={l}, N={n}")
            c_sim = float(res["late_chi2_sim"][sel][0])
            c_th = float(res["late_chi2_theory"][sel][0])
            notes.append(f"lam={l}, N={n}: chi2 sim {c_sim:.4g} vs theory {c_th:.4g}")
    if est:
        out.append(
            claims.check_consistent(
                STATIONARY,
                est,
                pred,
                se,
                labels=labels,
                details=f"mean ||q_n - p0||^2 over generations {cfg.generations // 2}.."
                f"{cfg.generations}, SE over {cfg.replicates} independent chains; chi2 is "
                "heavy-tailed and only reported: " + "; ".join(notes),
                figure="drift.png",
            )
        )
    # geometric anchoring loses support
    gl = cfg.geometric_lam
    details, ok = [], True
    for n in cfg.n_samples:
        g = at("geometric", gl, n)
        ret = int(res["returns"][g][0])
        sup_g = res["support_sim"][g & last][0]
        ok &= ret == 0 and bool(np.all(np.diff(res["support_sim"][g]) <= 0))
        msg = f"N={n}: geometric support {sup_g:.1f}, returns {ret}"
        if gl in cfg.lams:
            sup_a = res["support_sim"][at("arithmetic", gl, n, cfg.generations)][0]
            ok &= sup_g < sup_a
            msg += f"; arithmetic lam={gl} support {sup_a:.1f}"
        details.append(msg)
    out.append(
        claims.check_true(
            NO_RECOVERY,
            ok,
            predicted="0 returns and support below the arithmetic arm",
            measured="; ".join(details),
            details=f"after {cfg.generations} generations",
            figure="drift.png",
        )
    )
    return out


def plot(res: dict[str, np.ndarray], cfg: Config):
    with simio.style() as plt:
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        n = cfg.n_samples[0]
        for i, (kind, lam) in enumerate(_arms(cfg)):
            sel = (res["kind"] == kind) & (res["lam"] == lam) & (res["n_samples"] == n)
            sel1 = sel & (res["generation"] >= 1)  # generation 0 is p0 itself (error 0)
            g, g1 = res["generation"][sel], res["generation"][sel1]
            lab = f"{'arith' if kind == 'arithmetic' else 'geo'} λ={lam}"
            axes[0].plot(g, res["support_sim"][sel], color=f"C{i}", label=lab)
            c, se = res["sq_err_sim"][sel1], res["sq_err_se"][sel1]
            axes[1].fill_between(g1, c - 2 * se, c + 2 * se, color=f"C{i}", alpha=0.3, lw=0)
            axes[1].plot(g1, c, color=f"C{i}", label=lab)
            if kind == "arithmetic":
                axes[1].plot(g1, res["sq_err_theory"][sel1], color="k", ls="--", lw=0.8)
            kt = res["kl_teacher_sim"][sel1]
            axes[2].plot(g1[np.isfinite(kt)], kt[np.isfinite(kt)], color=f"C{i}", label=lab)
        axes[0].set_title(f"support size of q_n (N={n}, k={cfg.vocab})")
        axes[1].set_title("‖q_n − p₀‖²: sim ±2 SE, theory dashed")
        axes[1].set_yscale("log")
        axes[2].set_title("KL(p₀‖m_n), meta-teacher (∞ once support is lost)")
        axes[2].set_yscale("log")
        for ax in axes:
            ax.set_xlabel("generation n")
        axes[0].legend()
        return fig


def main(argv: list[str] | None = None) -> Path:
    cfg, out = simio.parse(Config, argv, name="meta_finite_sample", doc=__doc__)
    res = run(cfg)
    simio.save_table(out / "results.csv", res)
    simio.save_figure(plot(res, cfg), out / "drift")
    simio.save_checks(out, check(res, cfg))
    return out


if __name__ == "__main__":
    main()
