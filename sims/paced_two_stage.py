"""Forward KL, reverse KL and forward-then-reverse on a multimodal teacher with a unimodal student.

Claims: paced.fkl-covers, paced.rkl-seeks (derived), paced.two-stage-consolidates (our toy
prediction for the PACED v1 abstract's "mode-coverage-then-consolidation" schedule: the
two-stage student ends on a heavier teacher mode than reverse KL alone from the same start).
Every comparison is paired over the random starts. Quick default ~10 s.
Larger run:  python sims/paced_two_stage.py --starts 256 --steps 6000

Teacher: a mixture of discretised Gaussians on a grid in [-1, 1]; student: one discretised
Gaussian (mu, log sigma), Adam. Arms, from the same random starts: forward KL only; reverse KL
only; forward KL for the first `switch` fraction of the steps then reverse KL. Metrics at the
switch point and at the end: coverage (teacher weight of modes within mu +- 2 sigma), precision
(student mass on the teacher's high-density set), both KLs, and the spread of the final mu over
starts (consolidation onto one solution).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from sdtheory import claims, simio
from sdtheory.claims.catalog.paced import CONSOLIDATES, COVERS, SEEKS


@dataclasses.dataclass(frozen=True)
class Config:
    grid: int = dataclasses.field(default=201, metadata={"help": "grid points on [-1, 1]"})
    centres: tuple[float, ...] = (-0.6, 0.05, 0.6)
    weights: tuple[float, ...] = (0.3, 0.2, 0.5)
    width: float = dataclasses.field(default=0.08, metadata={"help": "teacher mode width"})
    starts: int = dataclasses.field(default=24, metadata={"help": "random student starts"})
    steps: int = dataclasses.field(default=6000, metadata={"help": "Adam steps per arm"})
    switch: float = dataclasses.field(default=0.5, metadata={"help": "fraction of steps in FKL"})
    lr: float = 0.05
    seed: int = 0


def run(cfg: Config) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    from sdtheory.nets import paced_modes as modes

    rng = np.random.default_rng(cfg.seed)
    starts = np.column_stack(
        [rng.uniform(-0.9, 0.9, cfg.starts), np.log(rng.uniform(0.05, 0.2, cfg.starts))]
    )
    lpt = modes.teacher_log_probs(cfg.grid, cfg.centres, cfg.weights, cfg.width)
    sw = int(round(cfg.switch * cfg.steps))
    rows = []
    for arm, switch in (("forward", cfg.steps), ("reverse", 0), ("forward_then_reverse", sw)):
        traj = np.asarray(modes.train(starts, lpt, cfg.steps, switch, cfg.lr))
        for i in range(cfg.starts):
            for when, t in (("switch", sw), ("end", cfg.steps)):
                m = modes.mode_metrics(traj[i, t], lpt, cfg.centres, cfg.weights)
                rows.append({"arm": arm, "start": i, "when": when, "step": t, **m})
    return {"rows": rows, "teacher": np.exp(np.asarray(lpt))}


def _mean(rows, arm, when, key):
    return float(np.mean(_per_start(rows, arm, when, key)))


def _per_start(rows, arm, when, key) -> np.ndarray:
    sel = sorted(
        (r for r in rows if r["arm"] == arm and r["when"] == when), key=lambda r: r["start"]
    )
    return np.array([r[key] for r in sel])


def check(res: dict, cfg: Config) -> list[claims.CheckResult]:
    r = res["rows"]
    two = "forward_then_reverse"
    summary = ", ".join(
        f"{arm}: coverage {_mean(r, arm, 'end', 'coverage'):.2f}, precision "
        f"{_mean(r, arm, 'end', 'precision'):.2f}, FKL {_mean(r, arm, 'end', 'forward_kl'):.2f}, "
        f"RKL {_mean(r, arm, 'end', 'reverse_kl'):.2f}, mode weight "
        f"{_mean(r, arm, 'end', 'mode_weight'):.2f}"
        for arm in ("forward", "reverse", two)
    )
    end = lambda arm, key: _per_start(r, arm, "end", key)  # noqa: E731
    return [
        claims.check_paired(
            COVERS,
            end("forward", "coverage"),
            end("reverse", "coverage"),
            side=">",
            details=f"teacher weight of the modes within mu +- 2 sigma, FKL minus RKL per start "
            f"({cfg.starts} starts). {summary}",
            figure="two_stage.png",
        ),
        claims.check_paired(
            SEEKS,
            end("reverse", "precision"),
            end("forward", "precision"),
            side=">",
            details="student mass on the teacher's high-density set, RKL minus FKL per start",
        ),
        claims.check_paired(
            CONSOLIDATES,
            end(two, "mode_weight"),
            end("reverse", "mode_weight"),
            side=">",
            details="teacher weight of the mode nearest the final mu, forward-then-reverse minus "
            f"reverse only per start; at the switch (step {int(round(cfg.switch * cfg.steps))}) "
            f"the two-stage student has precision {_mean(r, two, 'switch', 'precision'):.2f}, "
            f"at the end {_mean(r, two, 'end', 'precision'):.2f} (reverse only "
            f"{_mean(r, 'reverse', 'end', 'precision'):.2f}); final reverse KL "
            f"{_mean(r, two, 'end', 'reverse_kl'):.3f} vs {_mean(r, 'reverse', 'end', 'reverse_kl'):.3f}",
            figure="two_stage.png",
        ),
    ]


def plot(res: dict, cfg: Config):
    with simio.style() as plt:
        from sdtheory.nets import paced_modes as modes

        x = np.linspace(-1, 1, cfg.grid)
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), sharey=True)
        for ax, arm in zip(axes, ("forward", "reverse", "forward_then_reverse"), strict=True):
            ax.fill_between(x, res["teacher"], color="0.85", label="teacher")
            for row in [r for r in res["rows"] if r["arm"] == arm and r["when"] == "end"][:8]:
                q = np.exp(
                    np.asarray(
                        modes.student_log_probs(
                            np.array([row["mu"], np.log(row["sigma"])]), cfg.grid
                        )
                    )
                )
                ax.plot(x, q, lw=0.8)
            ax.set(title=arm.replace("_", " "), xlabel="x")
        axes[0].legend(fontsize=7)
        return fig


def main(argv: list[str] | None = None) -> Path:
    cfg, out = simio.parse(Config, argv, name="paced_two_stage", doc=__doc__)
    res = run(cfg)
    simio.save_table(out / "results.csv", res["rows"])
    simio.save_figure(plot(res, cfg), out / "two_stage")
    simio.save_checks(out, check(res, cfg))
    return out


if __name__ == "__main__":
    main()
