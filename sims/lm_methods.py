"""The self-distillation method family at CPU scale: accuracy curves at fixed rollout compute.

Claims: methods.all-complete (derived), methods.paced-vs-opsd (PACED abstract), methods.srpo-vs-grpo
(SRPO abstract), methods.atesd-vs-opsd (third-party review of ATESD), methods.avsd-vs-opsd and
methods.opsd-vs-grpo (our hypotheses). Quick default ~20 s on 2 CPU cores (1 seed, 3 steps: the
comparisons are inconclusive by construction there).
Larger run (the table in docs/lm/methods.md, ~9 min on 2 busy cores):
    python sims/lm_methods.py --seeds 3 --steps 30 --sft-steps 300 --sft-lr 1e-2 \
        --eval-every 10 --n-eval 48 --eval-k 4

Setting. A tiny Llama (tiny byte-BPE tokenizer, `--hidden-size` x `--num-layers`) on 2-term,
1-digit `chain_sum` (a +/- b). It is warm-started by supervised fine-tuning (`--sft-steps`) on
the worked solutions, half of the examples behind the student prompt and half behind the
privileged-teacher prompt (so that the self-teacher has learned to read its privileged context:
ours; a random-init model has no teacher worth distilling). Every method then starts from the
same warm-started weights and gets the same budget: `--steps` optimiser steps of
`--batch-problems` x `--k` rollouts of at most `--max-new-tokens` tokens, the same learning
rate, and the same evaluation (avg@`--eval-k` on `--n-eval` held-out problems, identical
sampling seeds). Methods: GRPO, OPSD (fixed self-teacher, full solution, JSD 0.5), PACED-OPSD
(p(1-p) weights), SRPO (EMA self-teacher), AVSD (3 views, sampled reverse KL), ATESD (learned
prefix exposure); `--methods` adds `sdpo`. Besides held-out accuracy, the table reports the
mean reward of the training rollouts over the last quarter of the steps (progress on the
training problems themselves). Paired differences over seeds (same seed = same
warm start, data order and evaluation) give the mean +- standard error; a comparison claim is
held when the mean difference exceeds t_0.975(n-1) SE (4.30 SE at 3 seeds), failed below minus
that, inconclusive otherwise (always with one seed).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from sdtheory import claims, simio

_SRC_OURS = ("derived", "our hypothesis; the papers' comparisons are at far larger scale")
ALL = claims.claim(
    "methods.all-complete",
    "Every method of the family runs to the end of the fixed budget on the CPU setting, with "
    "finite losses and its method-specific quantities logged.",
    ("derived", "implementation check of sdtheory.lm.methods"),
    "sdtheory.lm.methods",
)
COMPARISONS = {
    ("paced", "opsd"): claims.claim(
        "methods.paced-vs-opsd",
        "At equal rollout compute, PACED pass-rate weighting of OPSD reaches a higher held-out "
        "accuracy than unweighted OPSD.",
        ("paper", "arXiv:2603.11178 v3 abstract: up to +8.2 over unweighted distillation"),
        "sdtheory.lm.methods",
        paper="paced2026",
    ),
    ("srpo", "grpo"): claims.claim(
        "methods.srpo-vs-grpo",
        "At equal rollout compute, SRPO (correct -> GRPO, failed -> self-distillation) reaches "
        "a higher held-out accuracy than GRPO.",
        ("paper", "arXiv:2604.02288 abstract (methods spec 1.5): SRPO improves over GRPO"),
        "sdtheory.lm.methods",
        paper="srpo2026",
    ),
    ("atesd", "opsd"): claims.claim(
        "methods.atesd-vs-opsd",
        "At equal rollout compute, a learned reveal ratio (ATESD) reaches a higher held-out "
        "accuracy than OPSD with the full solution.",
        ("secondary", "third-party review of arXiv:2605.11458: +1.97 AIME24 over OPSD, 1.7B"),
        "sdtheory.lm.methods",
        paper="atesd2026",
    ),
    ("avsd", "opsd"): claims.claim(
        "methods.avsd-vs-opsd",
        "At equal rollout compute, the AVSD multi-view target reaches a higher held-out accuracy "
        "than single-view OPSD (hypothesis: the paper's numbers were not retrieved).",
        _SRC_OURS,
        "sdtheory.lm.methods",
        paper="avsd2026",
    ),
    ("opsd", "grpo"): claims.claim(
        "methods.opsd-vs-grpo",
        "At equal rollout compute, OPSD reaches a higher held-out accuracy than GRPO "
        "(hypothesis: dense token-level targets vs one binary reward per rollout).",
        _SRC_OURS,
        "sdtheory.lm.methods",
        paper="opsd2026",
    ),
}

# per-method flags on top of the shared budget (see docs/lm/methods.md)
METHOD_FLAGS = {
    "grpo": {},
    "opsd": dict(teacher_mode="fixed", view="solution", divergence="jsd", beta=0.5),
    "paced": dict(teacher_mode="fixed", view="solution", divergence="jsd", beta=0.5),
    "srpo": dict(teacher_mode="ema", divergence="jsd", beta=0.5),
    "sdpo": dict(teacher_mode="ema", divergence="jsd", beta=0.5),
    "avsd": dict(teacher_mode="fixed"),
    "atesd": dict(teacher_mode="fixed", divergence="jsd", beta=0.5, atesd_hold=2),
}
_LOGGED = {
    "paced": "paced_weight_mean",
    "srpo": "srpo_frac_distill",
    "sdpo": "sdpo_frac_with_teacher",
    "avsd": "avsd_gate",
    "atesd": "atesd_rho",
}


@dataclasses.dataclass(frozen=True)
class Config:
    methods: tuple[str, ...] = dataclasses.field(
        default=("grpo", "opsd", "paced", "srpo", "avsd", "atesd"),
        metadata={"help": "methods to compare (any of grpo opsd paced srpo sdpo avsd atesd)"},
    )
    seeds: int = dataclasses.field(default=1, metadata={"help": "independent repetitions"})
    steps: int = dataclasses.field(default=3, metadata={"help": "optimiser steps per method"})
    batch_problems: int = dataclasses.field(default=4, metadata={"help": "problems per step"})
    k: int = dataclasses.field(default=4, metadata={"help": "rollouts per problem"})
    max_new_tokens: int = dataclasses.field(default=12, metadata={"help": "completion length"})
    lr: float = dataclasses.field(default=2e-3, metadata={"help": "AdamW learning rate"})
    hidden_size: int = dataclasses.field(default=64, metadata={"help": "tiny model width"})
    num_layers: int = dataclasses.field(default=2, metadata={"help": "tiny model depth"})
    sft_steps: int = dataclasses.field(default=40, metadata={"help": "warm-start SFT steps"})
    sft_batch: int = dataclasses.field(default=16, metadata={"help": "warm-start batch"})
    sft_lr: float = dataclasses.field(default=3e-3, metadata={"help": "warm-start lr"})
    n_train: int = dataclasses.field(default=112, metadata={"help": "training problems"})
    n_eval: int = dataclasses.field(default=16, metadata={"help": "held-out problems"})
    eval_k: int = dataclasses.field(default=2, metadata={"help": "samples per held-out problem"})
    eval_every: int = dataclasses.field(default=3, metadata={"help": "steps between evals"})
    seed: int = 0


def _task():
    from sdtheory.lm.tasks import make_task

    return make_task("chain_sum", min_digits=1, max_digits=1)


def warm_start(cfg: Config, seed: int):
    """A tiny model SFT'd on worked solutions behind both prompts; returns (model, tok, task)."""
    import torch

    from sdtheory.lm.models import build_model
    from sdtheory.lm.rollout import completion_logits
    from sdtheory.lm.tasks import chat_prompt_ids
    from sdtheory.lm.teachers import privileged_messages

    torch.manual_seed(seed)
    model, tok = build_model(
        "tiny", hidden_size=cfg.hidden_size, num_layers=cfg.num_layers, seed=seed
    )
    task = _task()
    train, _ = task.split(cfg.n_train, cfg.n_eval, seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.sft_lr)
    rng = np.random.default_rng([seed, 99])
    model.train()
    for _ in range(cfg.sft_steps):
        batch = [train[i] for i in rng.integers(0, len(train), cfg.sft_batch)]
        prompts, rows = [], []
        for j, p in enumerate(batch):
            msgs = (
                task.student_messages(p)
                if j % 2 == 0
                else privileged_messages(p, task.privileged_view(p, "solution"))
            )
            prompts.append(chat_prompt_ids(tok, msgs))
            text = f"{p.solution}\nThe answer is {p.answer}."
            rows.append(list(tok(text, add_special_tokens=False)["input_ids"]) + [tok.eos_token_id])
        width = max(map(len, rows))
        comp = torch.full((len(rows), width), tok.pad_token_id)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, r in enumerate(rows):
            comp[i, : len(r)], mask[i, : len(r)] = torch.tensor(r), True
        logits = completion_logits(model, prompts, comp, mask)
        lp = torch.log_softmax(logits.float(), -1).gather(-1, comp.unsqueeze(-1)).squeeze(-1)
        loss = -(lp * mask).sum() / mask.sum()
        loss.backward()
        opt.step()
        opt.zero_grad()
    return model, tok, task


def run(cfg: Config, out: Path) -> tuple[list[dict], list[dict], list[dict]]:
    import torch

    from sdtheory.lm.trainers import TrainConfig, Trainer

    torch.set_num_threads(1)
    curves, logs, rewards = [], [], []
    t0 = time.perf_counter()
    for rep in range(cfg.seeds):
        seed = cfg.seed + rep
        base, tok, task = warm_start(cfg, seed)
        shared = TrainConfig(
            model="tiny",
            n_train=cfg.n_train,
            n_eval=cfg.n_eval,
            steps=cfg.steps,
            batch_problems=cfg.batch_problems,
            k=cfg.k,
            max_new_tokens=cfg.max_new_tokens,
            lr=cfg.lr,
            eval_every=cfg.eval_every,
            eval_k=cfg.eval_k,
            seed=seed,
            progress=False,
            threads=1,
        )
        for method in cfg.methods:
            tc = shared.replace(
                method=method, out=str(out / "runs" / f"{method}-s{seed}"), **METHOD_FLAGS[method]
            )
            hist = Trainer(tc, model=copy.deepcopy(base), tokenizer=tok, task=task).train()
            train = [r for r in hist if r["kind"] == "train"]
            rewards += [
                {"method": method, "seed": seed, "step": r["step"], "reward": r["reward"]}
                for r in train
            ]
            for r in hist:
                if r["kind"] == "eval":
                    curves.append(
                        {
                            "method": method,
                            "seed": seed,
                            "step": r["step"],
                            "accuracy": r["accuracy"],
                        }
                    )
            key = _LOGGED.get(method)
            logs.append(
                {
                    "method": method,
                    "seed": seed,
                    "steps_done": len(train),
                    "finite": all(np.isfinite(r["loss"]) for r in train),
                    "logged": key is None or all(key in r for r in train),
                    "mean_reward": float(np.mean([r["reward"] for r in train])),
                    "median_step_s": float(np.median([r["time_step"] for r in train])),
                }
            )
            acc = [c["accuracy"] for c in curves if c["method"] == method and c["seed"] == seed]
            print(
                f"  seed {seed} {method:5s}: accuracy {acc[0]:.3f} -> {acc[-1]:.3f} "
                f"({time.perf_counter() - t0:.1f}s)",
                flush=True,
            )
    return curves, logs, rewards


def table(curves: list[dict], rewards: list[dict], cfg: Config) -> list[dict]:
    """Per method: start and final held-out accuracy (mean, SE over seeds), gain over GRPO, and
    the mean reward of the training rollouts over the last quarter of the steps."""
    last = max(c["step"] for c in curves)

    def acc(m, step):
        return np.array(
            [
                c["accuracy"]
                for c in sorted(curves, key=lambda c: c["seed"])
                if c["method"] == m and c["step"] == step
            ]
        )

    rows = []
    for m in cfg.methods:
        fin, start = acc(m, last), acc(m, 0)
        n = len(fin)
        se = float(fin.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        row = {
            "method": m,
            "seeds": n,
            "start_accuracy": float(start.mean()),
            "final_accuracy_mean": float(fin.mean()),
            "final_accuracy_se": se,
        }
        if "grpo" in cfg.methods:
            d = fin - acc("grpo", last)
            row["minus_grpo_mean"] = float(d.mean())
            row["minus_grpo_se"] = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        late = max(1, cfg.steps // 4)
        tr = np.array(
            [
                np.mean(
                    [
                        r["reward"]
                        for r in rewards
                        if r["method"] == m and r["seed"] == s and r["step"] > cfg.steps - late
                    ]
                )
                for s in sorted({r["seed"] for r in rewards})
            ]
        )
        row["late_train_reward_mean"] = float(tr.mean())
        row["late_train_reward_se"] = (
            float(tr.std(ddof=1) / np.sqrt(len(tr))) if len(tr) > 1 else float("nan")
        )
        rows.append(row)
    return rows


def _t_crit(n: int) -> float:
    """Two-sided 95% Student-t quantile with n - 1 degrees of freedom (nan for n < 2)."""
    if n < 2:
        return float("nan")
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1))


def check(curves: list[dict], logs: list[dict], cfg: Config) -> list[claims.CheckResult]:
    ok = all(r["finite"] and r["logged"] and r["steps_done"] == cfg.steps for r in logs)
    out = [
        claims.check_true(
            ALL,
            ok,
            details=f"{len(logs)} runs ({len(cfg.methods)} methods x {cfg.seeds} seeds), "
            f"{cfg.steps} steps each",
        )
    ]
    last = max(c["step"] for c in curves)
    for (a, b), c in COMPARISONS.items():
        if a not in cfg.methods or b not in cfg.methods:
            continue

        def fin(m):
            return np.array(
                [
                    x["accuracy"]
                    for x in sorted(curves, key=lambda x: x["seed"])
                    if x["method"] == m and x["step"] == last
                ]
            )

        d = fin(a) - fin(b)
        n = len(d)
        se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        crit = _t_crit(n) * se
        verdict = (
            None
            if not np.isfinite(se)
            else (True if d.mean() > crit else (False if d.mean() < -crit else None))
        )
        res = claims.check_true(
            c,
            bool(verdict),
            predicted="> 0 beyond the two-sided 95% t band",
            measured=float(d.mean()),
            tolerance=f"t_0.975(n-1) SE = {crit:.3g} (n = {n} paired seeds)",
            details=f"final held-out accuracy {a} minus {b} after {cfg.steps} steps: "
            f"{d.mean():+.3f} +- {se:.3f} (SE over {n} paired seeds)",
            figure="curves.png",
        )
        if verdict is None:
            res = dataclasses.replace(res, verdict="inconclusive")
        out.append(res)
    return out


def plot(curves: list[dict], rewards: list[dict], cfg: Config):
    with simio.style() as plt:
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.4))
        for i, m in enumerate(cfg.methods):
            steps = sorted({c["step"] for c in curves if c["method"] == m})
            y = [
                [c["accuracy"] for c in curves if c["method"] == m and c["step"] == s]
                for s in steps
            ]
            mean = np.array([np.mean(v) for v in y])
            se = np.array([np.std(v, ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0 for v in y])
            ax.errorbar(steps, mean, yerr=se, label=m.upper(), color=f"C{i}", capsize=2, marker="o")
        ax.set(
            xlabel="optimiser step",
            ylabel="held-out accuracy (avg@k)",
            title=f"tiny model, 1-digit chain_sum, {cfg.seeds} seed(s)",
        )
        ax.legend(fontsize=7, ncol=2)
        w = max(1, cfg.steps // 6)  # moving average of the rollout reward
        for i, m in enumerate(cfg.methods):
            seeds = sorted({r["seed"] for r in rewards})
            y = np.array(
                [
                    [r["reward"] for r in rewards if r["method"] == m and r["seed"] == s]
                    for s in seeds
                ]
            )
            k = np.ones(w) / w
            sm = np.array([np.convolve(v, k, mode="valid") for v in y])
            x = np.arange(w, cfg.steps + 1)
            bx.plot(x, sm.mean(0), color=f"C{i}", label=m.upper())
        bx.set(
            xlabel="optimiser step",
            ylabel=f"training-rollout reward ({w}-step mean)",
            title="training problems",
        )
        return fig


def main(argv: list[str] | None = None) -> Path:
    cfg, out = simio.parse(Config, argv, name="lm_methods", doc=__doc__)
    bad = set(cfg.methods) - set(METHOD_FLAGS)
    if bad:
        raise ValueError(f"methods must be among {sorted(METHOD_FLAGS)}, got {sorted(bad)}")
    curves, logs, rewards = run(cfg, out)
    simio.save_table(out / "curves.csv", curves)
    simio.save_table(out / "runs.csv", logs)
    simio.save_table(out / "rewards.csv", rewards)
    rows = table(curves, rewards, cfg)
    simio.save_table(out / "table.csv", rows)
    (out / "table.json").write_text(json.dumps(rows, indent=1))
    for r in rows:
        print(
            f"  {r['method']:5s} final accuracy {r['final_accuracy_mean']:.3f} +- "
            f"{r['final_accuracy_se']:.3f} (start {r['start_accuracy']:.3f}); late training "
            f"reward {r['late_train_reward_mean']:.3f} +- {r['late_train_reward_se']:.3f}"
        )
    simio.save_figure(plot(curves, rewards, cfg), out / "curves")
    simio.save_checks(out, check(curves, logs, cfg))
    return out


if __name__ == "__main__":
    main()
