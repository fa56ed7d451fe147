"""TAID schedule and loss: parity with the official update rule, loss end points, and when the
adaptive term matters at all.

1. Parity: `TAIDSchedule` against a float64 numpy transcription of the logic of the official
   `update_t` (SakanaAI/TAID a062892) on several loss sequences; max |difference| of the t,
   momentum and delta_t trajectories.
2. Loss: `sdtheory.lm.methods.taid.taid_loss` at t = 1 against the forward KL of `sdtheory.core.kl`,
   at t = 0 against 0, and its gradient against q - p_t.
3. Threshold (derived): starting from t_start, every step gives delta_t <= alpha (1 - t_start)
   while the floor rises by (t_end - t_start) / S, so alpha * S <= (t_end - t_start) /
   (1 - t_start) makes the adaptive schedule identical to the linear one. The sim sweeps
   alpha x S and records how far t gets above the floor.

Claims: taid.schedule-parity (code), taid.loss-ends (derived), taid.loss-gradient (derived),
taid.schedule-linear-regime (derived). Quick default ~3 s. Larger sweep:
  python sims/taid_schedule.py --steps-grid 100 1000 10000 100000
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from sdtheory import claims, simio
from sdtheory.claims.catalog.taid import ENDS, GRADIENT, LINEAR_REGIME, PARITY
from sdtheory.core import kl, log_softmax
from sdtheory.theory.taid import TAIDSchedule


@dataclasses.dataclass(frozen=True)
class Config:
    alphas: tuple[float, ...] = dataclasses.field(
        default=(5e-4, 2e-3, 1e-2, 5e-2), metadata={"help": "alpha values of the sweep"}
    )
    steps_grid: tuple[int, ...] = dataclasses.field(
        default=(100, 1000, 10000), metadata={"help": "total optimizer steps S of the sweep"}
    )
    t_start: float = dataclasses.field(default=0.4, metadata={"help": "t_start"})
    beta: float = dataclasses.field(default=0.99, metadata={"help": "momentum coefficient"})
    parity_steps: int = dataclasses.field(default=500, metadata={"help": "parity sequence length"})
    vocab: int = dataclasses.field(default=257, metadata={"help": "vocabulary of the loss check"})
    seed: int = 0


def official_update(state: dict, loss: float, step: int, total: int) -> float | None:
    """Float64 transcription of the logic of the official `update_t` (returns delta_t)."""
    if math.isinf(state["prev_loss"]):
        state["prev_loss"] = loss
        return None
    rel = (state["prev_loss"] - loss) / (state["prev_loss"] + 1e-15)
    state["momentum"] = state["beta"] * state["momentum"] + (1 - state["beta"]) * rel
    t_target = state["t_start"] + (state["t_end"] - state["t_start"]) * (step / total)
    delta_t = state["alpha"] * (1.0 / (1.0 + np.exp(-state["momentum"]))) * (1 - state["t"])
    state["t"] = (
        min(state["t_end"], max(t_target, state["t"] + delta_t))
        if not state["disable_adaptive"]
        else t_target
    )
    state["prev_loss"] = loss
    return float(delta_t)


def loss_curve(rng, n: int, kind: str) -> np.ndarray:
    k = np.arange(n)
    if kind == "decay":
        return 2.5 * np.exp(-k / (n / 5)) + 0.3 + 0.1 * rng.random(n)
    return np.exp(rng.normal(0.0, 0.6, n))  # "rough"


def _parity(cfg: Config, rng) -> list[dict]:
    rows = []
    cases = [
        ("defaults", 5e-4, True, cfg.parity_steps),
        ("linear", 5e-4, False, cfg.parity_steps),
        ("alpha-driven", 0.05, True, 100 * cfg.parity_steps),
    ]
    for kind in ("decay", "rough"):
        losses = loss_curve(rng, cfg.parity_steps, kind)
        for name, alpha, adaptive, total in cases:
            ours = TAIDSchedule(cfg.t_start, 1.0, alpha, cfg.beta, adaptive)
            off = {
                "t_start": cfg.t_start,
                "t_end": 1.0,
                "alpha": alpha,
                "beta": cfg.beta,
                "disable_adaptive": not adaptive,
                "t": cfg.t_start,
                "prev_loss": math.inf,
                "momentum": 0.0,
            }
            diff, above = 0.0, 0
            for step, j in enumerate(losses):
                t = ours.update(float(j), step, total)
                d = official_update(off, float(j), step, total)
                diff = max(diff, abs(t - off["t"]), abs(ours.momentum - off["momentum"]))
                if d is not None:
                    diff = max(diff, abs(ours.delta_t - d))
                above += t > ours.floor(step, total) + 1e-12
            rows.append(
                {
                    "part": "parity",
                    "case": f"{name}/{kind}",
                    "max_abs_diff_sim": diff,
                    "steps_above_floor": int(above),
                    "t_final": t,
                }
            )
    return rows


def _loss_rows(cfg: Config, rng) -> list[dict]:
    import torch

    from sdtheory.lm.methods.taid import taid_loss

    s = torch.tensor(3 * rng.standard_normal((16, cfg.vocab)), requires_grad=True)
    p = torch.tensor(3 * rng.standard_normal((16, cfg.vocab)))
    fkl = kl(log_softmax(p.numpy()), log_softmax(s.detach().numpy())).mean()
    at1 = taid_loss(s, p, 1.0).item()
    at0 = taid_loss(s, p, 0.0).item()
    t = 0.55
    (g,) = torch.autograd.grad(taid_loss(s, p, t), s)
    q = torch.softmax(s.detach(), -1)
    pt = torch.softmax((1 - t) * s.detach() + t * p, -1)
    gerr = (g - (q - pt) / 16).abs().max().item()
    return [
        {
            "part": "loss",
            "case": "t=1 vs forward KL",
            "max_abs_diff_sim": abs(at1 - fkl),
            "value_theory": float(fkl),
            "value_sim": at1,
        },
        {
            "part": "loss",
            "case": "t=0 vs 0",
            "max_abs_diff_sim": abs(at0),
            "value_theory": 0.0,
            "value_sim": at0,
        },
        {"part": "loss", "case": "gradient vs (q - p_t)/n", "max_abs_diff_sim": gerr},
    ]


def _sweep(cfg: Config, rng) -> tuple[list[dict], dict]:
    rows, traj = [], {}
    for total in cfg.steps_grid:
        losses = loss_curve(rng, total, "decay")
        for alpha in cfg.alphas:
            s = TAIDSchedule(cfg.t_start, 1.0, alpha, cfg.beta, True)
            ts, gap = [], 0.0
            for step, j in enumerate(losses):
                t = s.update(float(j), step, total)
                gap = max(gap, t - s.floor(step, total))
                ts.append(t)
            traj[alpha, total] = np.array(ts)
            rows.append(
                {
                    "part": "sweep",
                    "alpha": alpha,
                    "total_steps": total,
                    "alpha_S": alpha * total,
                    "linear_regime_theory": alpha * total * (1 - cfg.t_start)
                    <= (1.0 - cfg.t_start),
                    "max_t_minus_floor_sim": gap,
                }
            )
    return rows, traj


def run(cfg: Config) -> dict:
    rng = np.random.default_rng(cfg.seed)
    parity = _parity(cfg, rng)
    loss = _loss_rows(cfg, rng)
    sweep, traj = _sweep(cfg, rng)
    return {"rows": parity + loss + sweep, "traj": traj}


def check(res: dict, cfg: Config) -> list[claims.CheckResult]:
    rows = res["rows"]
    par = [r for r in rows if r["part"] == "parity"]
    lo = {r["case"]: r for r in rows if r["part"] == "loss"}
    sw = [r for r in rows if r["part"] == "sweep"]
    lin = [r for r in sw if r["linear_regime_theory"]]
    driven = [r for r in par if r["case"].startswith("alpha-driven")]
    return [
        claims.check_close(
            PARITY,
            0.0,
            max(r["max_abs_diff_sim"] for r in par),
            atol=1e-12,
            details=f"{len(par)} sequences of {cfg.parity_steps} steps; in the alpha-driven cases "
            f"t sits above the floor on {min(r['steps_above_floor'] for r in driven)}+ "
            "steps",
        ),
        claims.check_close(
            ENDS,
            0.0,
            max(lo["t=1 vs forward KL"]["max_abs_diff_sim"], lo["t=0 vs 0"]["max_abs_diff_sim"]),
            atol=1e-12,
            details=f"float64, V = {cfg.vocab}; forward KL = "
            f"{lo['t=1 vs forward KL']['value_theory']:.4f}",
        ),
        claims.check_close(
            GRADIENT,
            0.0,
            lo["gradient vs (q - p_t)/n"]["max_abs_diff_sim"],
            atol=1e-14,
            details="autograd vs closed form, float64",
        ),
        claims.check_close(
            LINEAR_REGIME,
            0.0,
            max(r["max_t_minus_floor_sim"] for r in lin),
            atol=0.0,
            figure="schedule.png",
            details=f"{len(lin)} of {len(sw)} (alpha, S) runs in the regime; outside it the "
            f"largest lift above the floor is "
            f"{max([r['max_t_minus_floor_sim'] for r in sw if r not in lin] or [0]):.3f}",
        ),
    ]


def plot(res: dict, cfg: Config):
    with simio.style() as plt:
        fig, axes = plt.subplots(
            1, len(cfg.steps_grid), figsize=(4 * len(cfg.steps_grid), 3.2), sharey=True
        )
        for ax, total in zip(np.atleast_1d(axes), cfg.steps_grid, strict=True):
            x = np.arange(total)
            ax.plot(x, cfg.t_start + (1 - cfg.t_start) * x / total, "k--", lw=1, label="floor")
            for alpha in cfg.alphas:
                ax.plot(
                    x, res["traj"][alpha, total], lw=1, label=f"α={alpha:g} (αS={alpha * total:g})"
                )
            ax.set_title(f"S = {total} steps")
            ax.set_xlabel("step")
            ax.legend(fontsize=7)
        np.atleast_1d(axes)[0].set_ylabel("t")
        fig.tight_layout()
        return fig


def main(argv: list[str] | None = None) -> Path:
    cfg, out = simio.parse(Config, argv, name="taid_schedule", doc=__doc__)
    res = run(cfg)
    simio.save_table(out / "results.csv", res["rows"])
    simio.save_figure(plot(res, cfg), out / "schedule")
    simio.save_checks(out, check(res, cfg))
    return out


if __name__ == "__main__":
    main()
