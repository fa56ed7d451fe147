r"""OPSD vs GRPO and PACED-OPSD vs OPSD at equal rollout tokens, over paired seeds.

Every arm runs the on-policy trainer (`sdtheory.lm.trainers.Trainer`) from SmolLM2-135M-Instruct
with the same steps, problems per step, samples per problem, completion cap, learning rate and
held-out set, so each arm generates the same number of rollouts; the tokens they actually
generate are recorded per step and reported. A seed fixes the data order and the sampling, and
is shared by the arms (the pairing unit). The task is `graded_sum_easy`
(`sdtheory.lm.tasks`), where SmolLM2 starts between 20 % and 60 % held-out accuracy
(calibration in docs/lm/validate.md).

**Predictions** (`sdtheory.claims.catalog.validate`):

- `validate.opsd-token-efficiency` (OPSD v2 abstract: "8-12x token efficiency compared to
  reinforcement learning methods such as GRPO"): at equal rollout tokens OPSD's held-out accuracy
  gain over the initial model is at least GRPO's: paired difference of final accuracies > 0;
- `methods.paced-vs-opsd` (PACED v3 abstract: "+8.2 over unweighted distillation"): PACED-OPSD
  (OPSD with per-problem weights p(1-p) from the step's own rollouts) above OPSD.

**Size.** Seeds and steps come from the power calculation in `power_seeds`: the paired SD of the
final-accuracy difference measured in a pilot, the effect to detect, and the t quantile
(docs/lm/validate.md writes the numbers down).
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

NAME = "opsd"
TITLE = "6. OPSD vs GRPO and PACED-OPSD vs OPSD at equal rollout tokens"
CLAIMS = (V.OPSD_TOKENS, V.METHODS_PACED_VS_OPSD)
WEIGHT = 3.0  # share of a time budget, relative to the other experiments (docs/lm/gpu.md)
KNOB = "steps"  # size knob (docs/lm/gpu.md): training steps per method and seed
METHODS = ("opsd", "grpo", "paced")


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: int = 2  # the scale's size (SIZES): paired seeds
    model: str = "smollm2"
    task: str = "graded_sum_easy"
    steps: int = 8
    batch_problems: int = 4
    k: int = 4
    max_new_tokens: int = 24
    temperature: float = 0.45  # rollouts and evaluation, as in `paced` (SmolLM2 starts at 20-60 %)
    lr: float = 3e-5
    n_train: int = 128
    n_eval: int = 48
    eval_k: int = 4
    eval_every: int = 4
    effect: float = 0.05  # the smallest accuracy difference the power calculation asks to detect


SIZES = {"cpu": 2, "cpu-long": 3, "gpu": 12}
CONFIGS: dict[str, Config] = {
    "fast": Config(
        seeds=2,
        model="tiny",
        steps=1,
        batch_problems=2,
        k=2,
        max_new_tokens=4,
        n_train=4,
        n_eval=2,
        eval_k=1,
        eval_every=1,
    ),
    **{s: Config(seeds=n) for s, n in SIZES.items()},
}
CONFIGS["gpu"] = dataclasses.replace(
    CONFIGS["gpu"],
    steps=40,
    batch_problems=8,
    k=8,
    max_new_tokens=48,
    n_train=160,  # n_train + n_eval: graded_sum_easy has >= 288 distinct at seeds 0-11
    n_eval=128,
)


def power_seeds(
    sd: float,
    effect: float,
    *,
    level: float = claims.RULE.level,
    power: float = 0.8,
    max_seeds: int = 100,
) -> int:
    r"""Paired seeds for a one-sided t test to detect `effect` with SD `sd` of the differences.

    The smallest $n$ with $(t_{1-a,n-1}+t_{\text{power},n-1})\,\mathrm{sd}/\sqrt n\le$ `effect`,
    $a=(1-\text{level})/2$ (the one-sided tail of the rule's two-sided band).
    """
    from scipy import stats

    if not (sd >= 0 and effect > 0):
        raise ValueError(f"sd must be >= 0 and effect > 0, got sd={sd!r}, effect={effect!r}")
    a = (1 - level) / 2
    for n in range(2, max_seeds + 1):
        q = stats.t.ppf(1 - a, n - 1) + stats.t.ppf(power, n - 1)
        if q * sd / math.sqrt(n) <= effect:
            return n
    return max_seeds


def measure(cfg: Config, out: Path, budget: Budget | None = None) -> Path:
    budget = budget or Budget()
    from ..trainers import TrainConfig, Trainer

    units = C.Units(out / "units.jsonl")
    for seed in range(cfg.seeds):  # seeds outermost: a stopped run keeps whole seeds
        for method in METHODS:
            tc = TrainConfig(
                method=method,
                model=cfg.model,
                task=cfg.task,
                steps=cfg.steps,
                batch_problems=cfg.batch_problems,
                k=cfg.k,
                max_new_tokens=cfg.max_new_tokens,
                temperature=cfg.temperature,
                eval_temperature=cfg.temperature,
                lr=cfg.lr,
                n_train=cfg.n_train,
                n_eval=cfg.n_eval,
                eval_k=cfg.eval_k,
                eval_every=cfg.eval_every,
                out=str(out / f"{method}-seed{seed}"),
                seed=seed,
                progress=False,
            )
            budget.check("method")
            with C.Timer() as tm:
                hist = Trainer(tc).train(before_step=lambda step: budget.check("step"))
            train = [h for h in hist if h.get("kind") == "train"]
            tokens = np.cumsum(
                [h["completion_tokens"] * cfg.batch_problems * cfg.k for h in train]
            ).tolist()
            evals = [
                dict(
                    step=h["step"],
                    accuracy=h["accuracy"],
                    tokens=tokens[h["step"] - 1] if h["step"] > 0 else 0.0,
                )
                for h in hist
                if h.get("kind") == "eval"
            ]
            units.write(
                seed=seed,
                method=method,
                evals=evals,
                tokens=tokens,
                reward=[h["reward"] for h in train],
                seconds=tm.seconds,
            )
            C.log(
                NAME,
                f"seed {seed} {method}: accuracy {evals[0]['accuracy']:.3f} -> "
                f"{evals[-1]['accuracy']:.3f}, {tokens[-1]:.0f} rollout tokens ({tm.seconds:.0f}s)",
            )
    return units.path


def decide(rows: list[dict], cfg: Config, out: Path) -> list[claims.CheckResult]:
    by = {(r["seed"], r["method"]): r for r in rows}
    seeds = sorted({s for s, _ in by if all((s, m) in by for m in METHODS)})
    final = {m: np.array([by[(s, m)]["evals"][-1]["accuracy"] for s in seeds]) for m in METHODS}
    start = {m: np.array([by[(s, m)]["evals"][0]["accuracy"] for s in seeds]) for m in METHODS}
    tokens = {m: np.array([by[(s, m)]["tokens"][-1] for s in seeds]) for m in METHODS}
    fig = "opsd_accuracy_tokens.png"
    if not seeds:
        return [
            claims.needs_scale(
                c,
                "cpu-long",
                predicted="> 0",
                scale="lm",
                n=0,
                details="no seed completed its three arms in this run (stopped at its time "
                "budget), so there is no paired difference and no measured SD for the power "
                f"calculation; setting: {cfg.model} on {cfg.task}, {cfg.steps} steps x "
                f"{cfg.batch_problems} problems x {cfg.k} samples, held-out {cfg.n_eval} x "
                f"{cfg.eval_k}.",
            )
            for c in (V.OPSD_TOKENS, V.METHODS_PACED_VS_OPSD)
        ]
    setting = (
        f"{len(seeds)} paired seeds; {cfg.model} on {cfg.task}; {cfg.steps} steps x "
        f"{cfg.batch_problems} problems x {cfg.k} samples (<= {cfg.max_new_tokens} tokens), lr "
        f"{cfg.lr}; held-out {cfg.n_eval} problems x {cfg.eval_k} samples; mean final accuracy "
        + ", ".join(f"{m} {final[m].mean():.3f}" for m in METHODS)
        + f" (start {start['opsd'].mean():.3f}); mean rollout tokens "
        + ", ".join(f"{m} {tokens[m].mean():.0f}" for m in METHODS)
    )
    gain_diff = (final["opsd"] - start["opsd"]) - (final["grpo"] - start["grpo"])
    paced_diff = final["paced"] - final["opsd"]

    def power(d: np.ndarray) -> str:
        sd = float(np.std(d, ddof=1)) if d.size >= 2 else math.nan
        if not math.isfinite(sd):
            return "paired SD unmeasured (fewer than 2 seeds)"
        n = power_seeds(sd, cfg.effect)
        return (
            f"paired SD {sd:.3g}; power calculation: {n} paired seeds detect a difference of "
            f"{cfg.effect} with 80 % power at this SD"
        )

    sd = float(np.std(gain_diff, ddof=1)) if gain_diff.size >= 2 else math.nan
    res = [
        claims.check_paired(
            V.OPSD_TOKENS,
            final["opsd"] - start["opsd"],
            final["grpo"] - start["grpo"],
            side=">",
            details=f"gain in held-out accuracy over the initial model, OPSD minus GRPO, per seed "
            f"({power(gain_diff)}). {setting}.",
            figure=fig,
        ),
        claims.check_paired(
            V.METHODS_PACED_VS_OPSD,
            final["paced"],
            final["opsd"],
            side=">",
            details=f"final held-out accuracy, PACED-OPSD minus OPSD, per seed "
            f"({power(paced_diff)}). {setting}.",
            figure=fig,
        ),
    ]
    with simio.style() as plt:
        f, ax = plt.subplots(figsize=(5, 3.6))
        for i, m in enumerate(METHODS):
            for s in seeds:
                ev = by[(s, m)]["evals"]
                ax.plot(
                    [e["tokens"] for e in ev],
                    [e["accuracy"] for e in ev],
                    "o-",
                    color=f"C{i}",
                    lw=0.8,
                    alpha=0.7,
                    label=m if s == seeds[0] else None,
                )
        ax.set(
            xlabel="cumulative rollout tokens",
            ylabel=f"held-out avg@{cfg.eval_k}",
            title=f"{cfg.model}: accuracy at equal rollout tokens",
        )
        ax.legend(fontsize=7)
        simio.save_figure(f, out / fig.removesuffix(".png"))
    C.save_run(
        out,
        cfg,
        dict(
            seeds=seeds,
            final={m: final[m].tolist() for m in METHODS},
            start={m: start[m].tolist() for m in METHODS},
            tokens={m: tokens[m].tolist() for m in METHODS},
            paired_sd=sd,
        ),
    )
    return res


def run(cfg: Config, out: Path, budget: Budget | None = None) -> list[claims.CheckResult]:
    """Measure (units written as they finish; a budget stops between units), then decide from
    what was measured: a claim the units cannot decide is reported as needing a larger scale."""
    return C.measure_then_decide(cfg, out, budget or Budget(), measure, decide, CLAIMS)
