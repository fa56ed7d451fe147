"""Sampled KL estimators k1, k2, k3: bias and spread against the exact KL(q||p).

Claims: core.k1-unbiased, core.k3-unbiased-nonnegative, core.k2-second-order
(source: Schulman 2020, "Approximating KL Divergence"). Quick default ~1 s on CPU.
Larger run:  python sims/kl_estimators.py --samples 200000 --pairs 40
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from sdtheory import claims, simio
from sdtheory.core import k1, k2, k3, kl, log_softmax

K1 = claims.claim(
    "core.k1-unbiased",
    "The sample mean of k1 = log q(x) - log p(x), x ~ q, is unbiased for KL(q||p).",
    ("paper", "Schulman 2020, Approximating KL Divergence (blog), k1"),
    "sdtheory.core.k1",
)
K3 = claims.claim(
    "core.k3-unbiased-nonnegative",
    "k3 = (p/q - 1) - log(p/q) is unbiased for KL(q||p), non-negative per sample, and has "
    "lower variance than k1 when p and q are close.",
    ("paper", "Schulman 2020, Approximating KL Divergence (blog), k3"),
    "sdtheory.core.k3",
)
K2 = claims.claim(
    "core.k2-second-order",
    "E_q[k2] = KL(q||p) + O(KL^{3/2}): its relative bias vanishes as p -> q.",
    ("paper", "Schulman 2020, Approximating KL Divergence (blog), k2"),
    "sdtheory.core.k2",
)


@dataclasses.dataclass(frozen=True)
class Config:
    vocab: int = dataclasses.field(default=50, metadata={"help": "outcomes per distribution"})
    pairs: int = dataclasses.field(default=12, metadata={"help": "random (q, p) pairs"})
    samples: int = dataclasses.field(default=20000, metadata={"help": "samples from q per pair"})
    scales: tuple[float, ...] = dataclasses.field(
        default=(0.1, 0.3, 1.0), metadata={"help": "logit perturbation scales (p vs q)"}
    )
    seed: int = 0


def run(cfg: Config) -> list[dict]:
    """For each scale and pair: exact KL(q||p) and mean/SE of each estimator."""
    rng = np.random.default_rng(cfg.seed)
    rows = []
    for scale in cfg.scales:
        for pair in range(cfg.pairs):
            z = rng.standard_normal(cfg.vocab)
            log_q = log_softmax(z)
            log_p = log_softmax(z + scale * rng.standard_normal(cfg.vocab))
            x = rng.choice(cfg.vocab, size=cfg.samples, p=np.exp(log_q))
            exact = float(kl(log_q, log_p))
            row = {"scale": scale, "pair": pair, "kl_theory": exact}
            for name, est in (("k1", k1), ("k2", k2), ("k3", k3)):
                v = est(log_q[x], log_p[x])
                row[f"{name}_sim"] = float(v.mean())
                row[f"{name}_se"] = float(v.std(ddof=1) / np.sqrt(cfg.samples))
                row[f"{name}_min"] = float(v.min())
            rows.append(row)
    return rows


def check(rows: list[dict], cfg: Config) -> list[claims.CheckResult]:
    z1 = np.array([(r["k1_sim"] - r["kl_theory"]) / r["k1_se"] for r in rows])
    z3 = np.array([(r["k3_sim"] - r["kl_theory"]) / r["k3_se"] for r in rows])
    n = len(rows)
    small = [r for r in rows if r["scale"] == min(cfg.scales)]
    large = [r for r in rows if r["scale"] == max(cfg.scales)]
    rel_bias2 = lambda rs: float(np.mean([abs(r["k2_sim"] / r["kl_theory"] - 1) for r in rs]))
    var_ratio = float(np.mean([r["k3_se"] / r["k1_se"] for r in small]))
    # Mean of n standard z-scores has SE 1/sqrt(n); 4 SE is the tolerance.
    return [
        claims.check_close(
            K1,
            0.0,
            float(z1.mean()),
            atol=4 / np.sqrt(n),
            details=f"mean z-score of k1 over {n} pairs x {cfg.samples} samples",
            figure="estimators.png",
        ),
        claims.check_close(
            K3,
            0.0,
            float(z3.mean()),
            atol=4 / np.sqrt(n),
            details=f"mean z-score of k3; min per-sample k3 "
            f"{min(r['k3_min'] for r in rows):.2e}; SE(k3)/SE(k1) at scale "
            f"{min(cfg.scales)} = {var_ratio:.3f}",
        ),
        claims.check_true(
            K2,
            rel_bias2(small) < rel_bias2(large),
            predicted="relative bias shrinks as p -> q",
            measured=f"{rel_bias2(small):.3g} (scale {min(cfg.scales)}) vs "
            f"{rel_bias2(large):.3g} (scale {max(cfg.scales)})",
        ),
    ]


def plot(rows: list[dict], cfg: Config):
    with simio.style() as plt:
        fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), sharex=True, sharey=True)
        for ax, name in zip(axes, ("k1", "k2", "k3"), strict=True):
            t = np.array([r["kl_theory"] for r in rows])
            m = np.array([r[f"{name}_sim"] for r in rows])
            e = np.array([r[f"{name}_se"] for r in rows])
            ax.errorbar(t, m, yerr=2 * e, fmt="o", ms=3)
            ax.plot([0, t.max()], [0, t.max()], "k--", lw=1)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{name}: estimate vs exact KL(q||p)")
            ax.set_xlabel("exact KL")
        axes[0].set_ylabel("mean estimate (±2 SE)")
        return fig


def main(argv: list[str] | None = None) -> Path:
    cfg, out = simio.parse(Config, argv, name="kl_estimators", doc=__doc__)
    rows = run(cfg)
    simio.save_table(out / "results.csv", rows)
    simio.save_figure(plot(rows, cfg), out / "estimators")
    simio.save_checks(out, check(rows, cfg))
    return out


if __name__ == "__main__":
    main()
