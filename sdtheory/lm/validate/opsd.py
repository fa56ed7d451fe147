r"""Experiment 5: OPSD vs GRPO (and PACED-OPSD) at equal compute with the on-policy trainer.

Both methods run `sdtheory.lm.trainers.Trainer` (used as is) from SmolLM2-135M-Instruct on
reasoning-gym `chain_sum` with the same steps, problems per step, samples per problem, completion
length, learning rate, seed and held-out set, so they see the same number of rollouts (equal
generation compute; OPSD additionally scores the completions with the privileged-context
self-teacher, one forward pass). Held-out accuracy (avg@k) at the start and the end.

The family's representative is PACED-OPSD (`--method paced`: OPSD with per-problem weights
p(1-p) from the step's own rollouts), the only family member that beat OPSD at equal compute in
the CPU comparison of `sims/lm_methods.py` (weakly; see docs/lm/methods.md).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from ... import claims, simio
from . import _common as C

NAME = "opsd"
TITLE = "5. OPSD vs GRPO at equal compute"
METHODS = ("opsd", "grpo", "paced")

C_VS = claims.claim(
    "validate.opsd.opsd-vs-grpo",
    "At equal steps and rollouts, OPSD's held-out accuracy is at least GRPO's (inconclusive "
    "when the difference is within 2 standard errors).",
    (
        "secondary",
        "Zhao et al. 2026 (OPSD, arXiv 2601.18734) comparison with GRPO; recalled, a hypothesis",
    ),
    "sdtheory.lm.trainers.Trainer",
)
C_BEST = claims.claim(
    "validate.opsd.family-best-vs-grpo",
    "At equal steps and rollouts, PACED-OPSD (the family's best in the CPU method comparison) "
    "reaches at least GRPO's held-out accuracy (inconclusive within 2 standard errors).",
    ("secondary", "PACED v3 abstract (arXiv 2603.11178) and OPSD; a hypothesis at this scale"),
    "sdtheory.lm.methods",
)
C_GAIN = claims.claim(
    "validate.opsd.opsd-improves",
    "OPSD raises held-out accuracy over the initial model (inconclusive within 2 standard errors).",
    ("secondary", "Zhao et al. 2026 (OPSD), recalled; a hypothesis at this scale"),
    "sdtheory.lm.trainers.Trainer",
)


@dataclasses.dataclass(frozen=True)
class Config:
    model: str = "smollm2"
    steps: int = 6
    batch_problems: int = 2
    k: int = 4
    max_new_tokens: int = 32
    lr: float = 1e-5
    n_train: int = 64
    n_eval: int = 24
    eval_k: int = 2
    seed: int = 0


CONFIGS = {
    "fast": Config(
        model="tiny",
        steps=1,
        batch_problems=2,
        k=2,
        max_new_tokens=6,
        n_train=4,
        n_eval=2,
        eval_k=1,
    ),
    "cpu": Config(),
    "gpu": Config(
        steps=20, batch_problems=8, k=8, max_new_tokens=64, n_train=512, n_eval=64, eval_k=4
    ),
}


def _se(acc: float, n: int) -> float:
    return math.sqrt(max(acc * (1 - acc), 1e-12) / n) if n > 0 else float("nan")


def run(cfg: Config, out: Path) -> list[claims.CheckResult]:
    from ..trainers import TrainConfig, Trainer

    out = Path(out)
    evals, rows, secs = {}, [], {}
    base = TrainConfig(
        model=cfg.model,
        task="chain_sum",
        steps=cfg.steps,
        batch_problems=cfg.batch_problems,
        k=cfg.k,
        max_new_tokens=cfg.max_new_tokens,
        lr=cfg.lr,
        n_train=cfg.n_train,
        n_eval=cfg.n_eval,
        eval_k=cfg.eval_k,
        eval_every=0,
        seed=cfg.seed,
        progress=False,
    )
    for method in METHODS:
        tc = base.replace(method=method, out=str(out / method))
        with C.Timer() as tm:
            hist = Trainer(tc).train()
        secs[method] = tm.seconds
        ev = [h for h in hist if h.get("kind") == "eval"]
        evals[method] = (ev[0], ev[-1])
        for h in hist:
            rows.append(
                {
                    "method": method,
                    **{
                        k: v
                        for k, v in h.items()
                        if isinstance(v, (int, float, str)) and k != "example"
                    },
                }
            )
        C.log(
            NAME,
            f"{method}: accuracy {ev[0]['accuracy']:.3f} -> {ev[-1]['accuracy']:.3f} "
            f"in {tm.seconds:.0f}s",
        )
    n = cfg.n_eval * cfg.eval_k
    a0 = evals["opsd"][0]["accuracy"]
    ao, ag = evals["opsd"][1]["accuracy"], evals["grpo"][1]["accuracy"]
    ap = evals["paced"][1]["accuracy"]
    so, sg, s0, sp = _se(ao, n), _se(ag, n), _se(a0, n), _se(ap, n)
    with simio.style() as plt:
        fig, ax = plt.subplots(figsize=(4.5, 3.4))
        ax.bar(
            ["initial", "OPSD", "GRPO", "PACED-OPSD"],
            [a0, ao, ag, ap],
            yerr=[2 * s0, 2 * so, 2 * sg, 2 * sp],
            capsize=4,
        )
        ax.set(
            ylabel=f"held-out avg@{cfg.eval_k} (±2 SE)",
            title=f"{cfg.model}, {cfg.steps} steps x {cfg.batch_problems}x{cfg.k} rollouts",
        )
        fig_path = simio.save_figure(fig, out / "opsd_vs_grpo")
    fig = fig_path.name

    def three_way(c, a, b, se, what):
        d = a - b
        ok = None if abs(d) < 2 * se else d > 0
        return C.verdict(
            c,
            what,
            f"{a:.3f} vs {b:.3f}",
            f"2 SE = {2 * se:.3f}",
            ok,
            details=f"{cfg.n_eval} held-out problems x {cfg.eval_k} samples; "
            f"{cfg.steps} steps x {cfg.batch_problems} problems x {cfg.k} samples; "
            f"lr {cfg.lr}; run time OPSD {secs['opsd']:.0f} s, GRPO "
            f"{secs['grpo']:.0f} s, PACED-OPSD {secs['paced']:.0f} s.",
            figure=fig,
        )

    res = [
        three_way(C_VS, ao, ag, math.sqrt(so**2 + sg**2), "OPSD >= GRPO"),
        three_way(C_BEST, ap, ag, math.sqrt(sp**2 + sg**2), "PACED-OPSD >= GRPO"),
        three_way(C_GAIN, ao, a0, math.sqrt(so**2 + s0**2), "OPSD > initial"),
    ]
    C.save_run(
        out,
        cfg,
        json.loads(
            json.dumps(
                dict(evals={m: list(v) for m, v in evals.items()}, seconds=secs), default=str
            )
        ),
        rows,
    )
    return res
