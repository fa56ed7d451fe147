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
from ...runner import Budget
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


CLAIMS = (C_VS, C_BEST, C_GAIN)
WEIGHT = 3.0  # share of a time budget, relative to the other experiments (docs/lm/gpu.md)
KNOB = "steps"  # size knob (docs/lm/gpu.md): training steps per method


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


def run(cfg: Config, out: Path, budget: Budget | None = None) -> list[claims.CheckResult]:
    from ..trainers import TrainConfig, Trainer

    out = Path(out)
    budget = budget or Budget()
    settings = C.settings()
    evals, rows, secs = {}, [], {}
    base = TrainConfig(
        model="tiny" if settings.model == "tiny" else cfg.model,
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
        device=str(C.device()),
        precision=settings.precision,
    )
    units = C.Units(out / "units.jsonl")
    with budget.measuring():
        for method in METHODS:
            budget.check("method")
            tc = base.replace(method=method, out=str(out / method))
            with C.Timer() as tm:
                hist = Trainer(tc).train(before_step=lambda step: budget.check("step"))
            secs[method] = tm.seconds
            ev = [h for h in hist if h.get("kind") == "eval"]
            evals[method] = (ev[0], ev[-1])
            units.write(method=method, start=ev[0], end=ev[-1], seconds=tm.seconds)
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
    return _decide(cfg, out, evals, secs, rows, budget)


def _decide(cfg, out, evals, secs, rows, budget):
    n = cfg.n_eval * cfg.eval_k
    # every method starts from the same model, evaluated on the same samples
    acc = {"initial": next(iter(evals.values()))[0]["accuracy"]} if evals else {}
    acc.update({m: evals[m][1]["accuracy"] for m in evals})
    se = {k: _se(a, n) for k, a in acc.items()}
    label = {"initial": "initial", "opsd": "OPSD", "grpo": "GRPO", "paced": "PACED-OPSD"}
    with simio.style() as plt:
        fig, ax = plt.subplots(figsize=(4.5, 3.4))
        ax.bar(
            [label[k] for k in acc],
            list(acc.values()),
            yerr=[2 * se[k] for k in acc],
            capsize=4,
        )
        ax.set(
            ylabel=f"held-out avg@{cfg.eval_k} (±2 SE)",
            title=f"{cfg.model}, {cfg.steps} steps x {cfg.batch_problems}x{cfg.k} rollouts",
        )
        fig_path = simio.save_figure(fig, out / "opsd_vs_grpo")
    fig = fig_path.name
    times = ", ".join(f"{label[m]} {t:.0f} s" for m, t in secs.items())

    def three_way(c, a, b, what):
        if a not in acc or b not in acc:
            return budget.undecided(c, details=f"methods trained to the end: {list(evals)}.")
        d, band = acc[a] - acc[b], math.sqrt(se[a] ** 2 + se[b] ** 2)
        ok = None if abs(d) < 2 * band else d > 0
        return C.verdict(
            c,
            what,
            f"{acc[a]:.3f} vs {acc[b]:.3f}",
            f"2 SE = {2 * band:.3f}",
            ok,
            details=f"{cfg.n_eval} held-out problems x {cfg.eval_k} samples; "
            f"{cfg.steps} steps x {cfg.batch_problems} problems x {cfg.k} samples; "
            f"lr {cfg.lr}; run time {times}.",
            figure=fig,
        )

    res = [
        three_way(C_VS, "opsd", "grpo", "OPSD >= GRPO"),
        three_way(C_BEST, "paced", "grpo", "PACED-OPSD >= GRPO"),
        three_way(C_GAIN, "opsd", "initial", "OPSD > initial"),
    ]
    C.save_run(
        out,
        cfg,
        json.loads(
            json.dumps(
                dict(
                    evals={m: list(v) for m, v in evals.items()},
                    seconds=secs,
                    stopped=budget.stopped,
                ),
                default=str,
            )
        ),
        rows,
    )
    return res
