"""Uniform vs Beta-weighted distillation at equal compute: progress per step and forgetting (JAX).

Claims: paced.weighted-progress, paced.weighted-forgetting (PACED abstract, tested on a toy).
Quick default ~25 s on 2 CPU cores.
Larger run:  python sims/paced_training.py --steps 1500 --seeds 5 --pool 8000

The problem population and teacher of `sims/paced_snr.py` (a teacher that also sees features
hidden from the student, so some problems are out of reach). A student is pre-distilled briefly,
then distillation continues from the same start with (a) uniform weights and (b) the Beta kernel
w(p_hat) = p_hat^alpha (1-p_hat)^beta, p_hat from K student rollouts refreshed every `refresh`
steps. Same steps, batch and learning rate (equal gradient compute). Measured on held-out
problems: forward KL to the teacher and pass rate (progress), and the pass rate on the *easy*
held-out problems (initial p > `easy`): its drop is forgetting.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from sdtheory import claims, simio
from sdtheory.claims.catalog.paced import FORGET, PROGRESS
from sdtheory.theory import paced


@dataclasses.dataclass(frozen=True)
class Config:
    pool: int = dataclasses.field(default=3000, metadata={"help": "training problems"})
    heldout: int = dataclasses.field(default=2000, metadata={"help": "held-out problems"})
    dim: int = 16
    hidden_dim: int = 16
    hidden_max: float = dataclasses.field(default=1.0, metadata={"help": "out-of-reach strength"})
    classes: int = 10
    teacher_width: int = 64
    teacher_scale: float = 15.0
    student_width: int = 16
    pretrain_steps: int = dataclasses.field(default=300, metadata={"help": "uniform warm-up"})
    steps: int = dataclasses.field(default=600, metadata={"help": "steps per arm"})
    batch: int = 64
    lr: float = 3e-3
    rollouts: int = dataclasses.field(default=8, metadata={"help": "K rollouts per problem"})
    refresh: int = dataclasses.field(default=50, metadata={"help": "steps between p_hat updates"})
    alpha: float = 1.0
    beta: float = 1.0
    n_ref: int = dataclasses.field(default=1, metadata={"help": "teacher samples per loss term"})
    easy: float = dataclasses.field(default=0.9, metadata={"help": "easy = initial p above"})
    eval_every: int = 100
    seeds: int = dataclasses.field(
        default=3, metadata={"help": "independent repetitions (paired over seeds by the rule)"}
    )
    seed: int = 0


def run(cfg: Config) -> list[dict]:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    from sdtheory.nets import paced as nets

    rows = []
    t0 = time.perf_counter()
    for rep in range(cfg.seeds):
        kt, ks, kp, kh, kq, kr = jax.random.split(jax.random.PRNGKey(cfg.seed * 1000 + rep), 6)
        teacher = nets.init_mlp(
            kt, cfg.dim + cfg.hidden_dim, cfg.teacher_width, cfg.classes, scale=cfg.teacher_scale
        )
        pool = nets.make_population(
            kp, teacher, cfg.pool, cfg.dim, 1.0, cfg.hidden_dim, cfg.hidden_max
        )
        held = nets.make_population(
            kh, teacher, cfg.heldout, cfg.dim, 1.0, cfg.hidden_dim, cfg.hidden_max
        )
        start = nets.train_student(
            kq, nets.init_mlp(ks, cfg.dim, cfg.student_width, cfg.classes), pool, cfg.pretrain_steps
        )
        p0 = np.asarray(nets.pass_rates(start, held))
        easy = jnp.asarray(p0 > cfg.easy)

        def evaluate(params, easy=easy, held=held):
            p = nets.pass_rates(params, held)
            klv = nets.forward_kl_loss(params, held.x, held.teacher_log_probs)
            return {
                "heldout_pass": float(p.mean()),
                "heldout_kl": float(klv.mean()),
                "easy_pass": float(jnp.sum(jnp.where(easy, p, 0)) / jnp.sum(easy)),
            }

        arms = {
            "uniform": None,
            "beta": lambda ph: jnp.asarray(
                paced.beta_kernel_weight(np.asarray(ph), cfg.alpha, cfg.beta)
            ),
        }
        for arm, fn in arms.items():
            _, hist = nets.weighted_distillation(
                kr,
                start,
                pool,
                cfg.steps,
                fn,
                batch=cfg.batch,
                lr=cfg.lr,
                rollouts=cfg.rollouts,
                refresh=cfg.refresh,
                n_ref=cfg.n_ref,
                eval_every=cfg.eval_every,
                evaluate=evaluate,
            )
            for h in hist:
                rows.append({"seed": rep, "arm": arm, "easy_count": int(easy.sum()), **h})
            print(
                f"  seed {rep} {arm}: held-out pass {hist[0]['heldout_pass']:.3f} -> "
                f"{hist[-1]['heldout_pass']:.3f}, easy {hist[0]['easy_pass']:.3f} -> "
                f"{hist[-1]['easy_pass']:.3f} ({time.perf_counter() - t0:.1f}s)",
                flush=True,
            )
    return rows


def _final(rows, arm, key):
    last = max(r["step"] for r in rows)
    return np.array([r[key] for r in rows if r["arm"] == arm and r["step"] == last])


def _first(rows, arm, key):
    return np.array([r[key] for r in rows if r["arm"] == arm and r["step"] == 0])


def check(rows: list[dict], cfg: Config) -> list[claims.CheckResult]:
    beta, unif = _final(rows, "beta", "heldout_pass"), _final(rows, "uniform", "heldout_pass")
    kl_gain = _final(rows, "uniform", "heldout_kl") - _final(rows, "beta", "heldout_kl")
    forget_u = _first(rows, "uniform", "easy_pass") - _final(rows, "uniform", "easy_pass")
    forget_b = _first(rows, "beta", "easy_pass") - _final(rows, "beta", "easy_pass")
    return [
        claims.check_paired(
            PROGRESS,
            beta,
            unif,
            side=">",
            details=f"held-out pass rate after {cfg.steps} steps, Beta minus uniform per seed "
            f"(same start, data and evaluation): {np.round(beta - unif, 4).tolist()}; held-out "
            f"KL uniform minus Beta {np.round(kl_gain, 4).tolist()}",
            figure="training.png",
        ),
        claims.check_paired(
            FORGET,
            forget_b,
            forget_u,
            side="<",
            margin=0.01,
            details=f"easy-set pass-rate drop (positive = forgetting) per seed: uniform "
            f"{np.round(forget_u, 4).tolist()}, Beta {np.round(forget_b, 4).tolist()}",
        ),
    ]


def plot(rows: list[dict], cfg: Config):
    with simio.style() as plt:
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
        for arm, c in (("uniform", "C0"), ("beta", "C1")):
            for key, ax in zip(("heldout_pass", "heldout_kl", "easy_pass"), axes, strict=True):
                steps = sorted({r["step"] for r in rows})
                y = np.array(
                    [[r[key] for r in rows if r["arm"] == arm and r["step"] == s] for s in steps]
                )
                ax.plot(steps, y.mean(1), color=c, label=arm)
                ax.set(xlabel="step", title=key.replace("_", " "))
        axes[0].legend(fontsize=7)
        return fig


def main(argv: list[str] | None = None) -> Path:
    cfg, out = simio.parse(Config, argv, name="paced_training", doc=__doc__)
    rows = run(cfg)
    simio.save_table(out / "results.csv", rows)
    simio.save_figure(plot(rows, cfg), out / "training")
    simio.save_checks(out, check(rows, cfg))
    return out


if __name__ == "__main__":
    main()
