r"""Experiment 4: TAID vs forward and reverse KL, SmolLM2-135M-Instruct -> tiny students.

Real text: champ-dataset competition problems with their step solutions (truncated), split into
training and held-out sequences. The teacher's log-probabilities at every position are computed
once. Two randomly initialised students of SmolLM2's architecture and tokenizer (a small and a
smaller one, i.e. two capacity gaps) are trained for the same number of AdamW steps on the same
batches with three token-level losses: forward KL $\mathrm{KL}(p\|q)$, reverse KL
$\mathrm{KL}(q\|p)$, and TAID $\mathrm{KL}(p_t\|q)$ (`sdtheory.lm.methods.taid.taid_loss`) with the
adaptive schedule `sdtheory.theory.taid.TAIDSchedule` (official defaults). Held-out: KL both
ways, entropy, and the $t$ trajectory.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from ... import claims, simio
from ...runner import Budget
from ...theory.taid import TAIDSchedule
from ..methods.taid import taid_loss
from . import _common as C
from . import _distill as D

NAME = "taid"
TITLE = "4. TAID vs forward/reverse KL: SmolLM2 -> tiny students"
METHODS = ("forward_kl", "reverse_kl", "taid")

C_BEATS = claims.claim(
    "validate.taid.beats-fkl-rkl",
    "At equal steps TAID's student has a held-out KL(teacher||student) no larger than the "
    "better of the forward-KL and reverse-KL students (TAID outperforms both; our metric).",
    ("paper", "Shing et al. 2025 (taid2025), abstract and Sec. 6; metric and setting ours"),
    "sdtheory.lm.methods.taid.taid_loss",
    paper="taid2025",
)
C_GAP = claims.claim(
    "validate.taid.capacity-gap",
    "TAID's relative advantage in held-out KL(teacher||student) over the better baseline is "
    "larger for the smaller student (larger capacity gap).",
    ("secondary", "papers/taid2025 capacity-gap experiment (figure not retrieved; hypothesis)"),
    "sdtheory.lm.methods.taid.taid_loss",
    paper="taid2025",
)
C_MODES = claims.claim(
    "validate.taid.kl-directions",
    "Reverse-KL students are mode-seeking: their held-out entropy is below the forward-KL "
    "students' (each student size).",
    ("derived", "classical; papers/taid2025 claim taid.toy-kl-directions"),
    "sdtheory.lm.validate.taid",
)
C_T = claims.claim(
    "validate.taid.t-schedule",
    "In training t never decreases, stays on or above the linear floor of its last update and "
    "never exceeds t_end.",
    ("code", "SakanaAI/TAID a062892 update_t; sdtheory.theory.taid.TAIDSchedule"),
    "sdtheory.theory.taid.TAIDSchedule",
    paper="taid2025",
)


CLAIMS = (C_BEATS, C_GAP, C_MODES, C_T)
WEIGHT = 1.5  # share of a time budget, relative to the other experiments (docs/lm/gpu.md)
KNOB = "steps"  # size knob (docs/lm/gpu.md): training steps per student and loss


@dataclasses.dataclass(frozen=True)
class Config:
    n_train: int = 48
    n_test: int = 16
    max_tokens: int = 64
    steps: int = 100
    batch: int = 6
    lr: float = 3e-3
    students: tuple[tuple[int, int], ...] = ((32, 1), (128, 2))  # (hidden, layers)
    t_start: float = 0.4
    t_end: float = 1.0
    eval_every: int = 25
    seed: int = 0
    gap_margin: float = 0.0  # advantage(small) - advantage(large) must exceed this


CONFIGS = {
    "fast": Config(n_train=8, n_test=4, max_tokens=24, steps=6, batch=4, eval_every=3),
    "cpu": Config(),
    # champ v0 has 270 problems: 206 + 64 texts (256 + 64 asked for more than there are)
    "gpu": Config(n_train=206, n_test=64, max_tokens=128, steps=600, batch=16, eval_every=50),
}


def _train(cfg, method, hidden, layers, tok, ids, mask, lp, ids_te, mask_te, lp_te, budget=None):
    from ..models import small_model

    budget = budget or Budget()
    heads = 4 if hidden >= 64 else 2
    model = small_model(
        tok,
        seed=cfg.seed,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=max(1, heads // 2),
    ).to(C.device())
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = TAIDSchedule(t_start=cfg.t_start, t_end=cfg.t_end)
    rng = np.random.default_rng(cfg.seed)
    hist, ts = [], []
    for step in range(cfg.steps):
        budget.check("step", tokens=cfg.batch * ids.shape[1])
        idx = torch.from_numpy(rng.choice(ids.shape[0], cfg.batch, replace=False))
        m = mask[idx].to(C.device())
        z = model(input_ids=ids[idx].to(C.device()), attention_mask=m).logits.float()
        lpt = lp[idx].to(C.device()).float()
        if method == "forward_kl":
            loss = D.masked_mean(D.forward_kl(lpt, torch.log_softmax(z, -1)), m)
        elif method == "reverse_kl":
            loss = D.masked_mean(D.reverse_kl(lpt, torch.log_softmax(z, -1)), m)
        else:
            ts.append(sched.t)
            loss = taid_loss(z, lpt, sched.t, m)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if method == "taid":
            sched.update(float(loss.detach()), step=step + 1, total_steps=cfg.steps)
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            model.eval()
            ev = D.evaluate(model, ids_te, mask_te, lp_te)
            model.train()
            hist.append(
                dict(
                    method=method,
                    hidden=hidden,
                    layers=layers,
                    step=step + 1,
                    train_loss=float(loss.detach()),
                    **ev,
                )
            )
    return hist, ts


def _measure(cfg, st, units, budget):
    teacher, tok = C.smollm2()
    texts = C.real_texts(cfg.n_train + cfg.n_test, seed=cfg.seed, task="champ")
    ids_all, mask_all = C.encode_batch(tok, texts, cfg.max_tokens)
    budget.check("teacher log-probs")
    with C.Timer() as tt, C.autocast():
        lp_all = D.teacher_log_probs(teacher, ids_all, mask_all, dtype=torch.float16)
    st["teacher_seconds"] = tt.seconds
    C.log(NAME, f"teacher log-probs {tuple(lp_all.shape)} in {tt.seconds:.1f}s")
    ids, mask, lp = ids_all[: cfg.n_train], mask_all[: cfg.n_train], lp_all[: cfg.n_train]
    ids_te, mask_te, lp_te = (a[cfg.n_train :] for a in (ids_all, mask_all, lp_all))
    for hidden, layers in cfg.students:
        for method in METHODS:
            budget.check("run")
            with C.Timer() as tm:
                hist, ts = _train(
                    cfg, method, hidden, layers, tok, ids, mask, lp, ids_te, mask_te, lp_te, budget
                )
            st["rows"] += hist
            st["final"][(hidden, method)] = hist[-1]
            if ts:
                st["t_traj"][hidden] = ts
            units.write(**hist[-1], seconds=tm.seconds)
            C.log(
                NAME,
                f"h={hidden} {method}: KL(p||q)={hist[-1]['kl_pq']:.3f} "
                f"KL(q||p)={hist[-1]['kl_qp']:.3f} in {tm.seconds:.1f}s",
            )


def run(cfg: Config, out: Path, budget: Budget | None = None) -> list[claims.CheckResult]:
    out = Path(out)
    budget = budget or Budget()
    units = C.Units(out / "units.jsonl")
    st = dict(rows=[], final={}, t_traj={}, teacher_seconds=float("nan"))
    with budget.measuring():
        _measure(cfg, st, units, budget)
    if not st["rows"]:
        C.save_run(out, cfg, dict(stopped=budget.stopped))
        return [budget.undecided(c, details="No student was trained.") for c in CLAIMS]
    return _decide(cfg, out, budget, st)


def _decide(cfg, out, budget, st):
    rows, final, t_traj = st["rows"], st["final"], st["t_traj"]
    sizes = [h for h, _ in cfg.students]
    small, large = min(sizes), max(sizes)

    def adv(h):
        best = min(final[(h, "forward_kl")]["kl_pq"], final[(h, "reverse_kl")]["kl_pq"])
        return (best - final[(h, "taid")]["kl_pq"]) / best

    with simio.style() as plt:
        fig, ax = plt.subplots(1, 3, figsize=(12, 3.4))
        for h in sizes:
            for method in METHODS:
                r = [x for x in rows if x["hidden"] == h and x["method"] == method]
                ls = "-" if h == small else "--"
                ax[0].plot(
                    [x["step"] for x in r], [x["kl_pq"] for x in r], ls, label=f"{method}, h={h}"
                )
                ax[1].plot(
                    [x["step"] for x in r],
                    [x["entropy_student"] for x in r],
                    ls,
                    label=f"{method}, h={h}",
                )
        ax[1].axhline(rows[-1]["entropy_teacher"], color="k", lw=0.8, label="teacher")
        ax[0].set(xlabel="step", ylabel="held-out KL(p||q)", title="forward KL, held out")
        ax[1].set(xlabel="step", ylabel="entropy (nats)", title="student entropy, held out")
        ax[0].legend(fontsize=6)
        ax[1].legend(fontsize=6)
        for h, ts in t_traj.items():
            ax[2].plot(np.arange(1, len(ts) + 1), ts, label=f"TAID t, h={h}")
        lin = [cfg.t_start + (cfg.t_end - cfg.t_start) * s / cfg.steps for s in range(cfg.steps)]
        ax[2].plot(np.arange(1, cfg.steps + 1), lin, "k:", label="linear floor")
        ax[2].set(xlabel="step", ylabel="t", title="TAID t trajectory")
        ax[2].legend(fontsize=7)
        fig_path = simio.save_figure(fig, out / "taid_kl_entropy_t")

    fig = fig_path.name
    res = []
    complete = [h for h in sizes if all((h, m) in final for m in METHODS)]
    per_size = "; ".join(
        f"h={h}: " + ", ".join(f"{m} {final[(h, m)]['kl_pq']:.3f}" for m in METHODS)
        for h in complete
    )
    for h in sizes:
        if h not in complete:
            done = [m for m in METHODS if (h, m) in final]
            res.append(budget.undecided(C_BEATS, details=f"student h={h}: trained {done} only."))
            continue
        best = min(final[(h, m)]["kl_pq"] for m in ("forward_kl", "reverse_kl"))
        res.append(
            C.verdict(
                C_BEATS,
                f"<= {best:.4g}",
                final[(h, "taid")]["kl_pq"],
                "<= best baseline",
                final[(h, "taid")]["kl_pq"] <= best,
                details=f"student h={h}; held-out KL(p||q) after {cfg.steps} steps: {per_size}.",
                figure=fig,
            )
        )
    advantage = {}
    if small in complete and large in complete:
        a_s, a_l = adv(small), adv(large)
        advantage = {str(small): a_s, str(large): a_l}
        res.append(
            C.verdict(
                C_GAP,
                f"adv(h={small}) > adv(h={large})",
                f"{a_s:.4f} vs {a_l:.4f}",
                f"margin {cfg.gap_margin}",
                a_s - a_l > cfg.gap_margin,
                details="advantage = (best baseline KL - TAID KL) / best baseline KL, held out; "
                "one seed.",
                figure=fig,
            )
        )
    else:
        res.append(budget.undecided(C_GAP, details=f"complete student sizes: {complete}."))
    both = [h for h in sizes if (h, "forward_kl") in final and (h, "reverse_kl") in final]
    if both == sizes:
        ent_ok = all(
            final[(h, "reverse_kl")]["entropy_student"]
            < final[(h, "forward_kl")]["entropy_student"]
            for h in sizes
        )
        res.append(
            C.verdict(
                C_MODES,
                "H(RKL) < H(FKL)",
                "; ".join(
                    f"h={h}: {final[(h, 'reverse_kl')]['entropy_student']:.3f} vs "
                    f"{final[(h, 'forward_kl')]['entropy_student']:.3f}"
                    for h in sizes
                ),
                "strict",
                ent_ok,
                figure=fig,
                details=f"teacher entropy {rows[-1]['entropy_teacher']:.3f} nats.",
            )
        )
    else:
        res.append(budget.undecided(C_MODES, details=f"sizes with both baselines: {both}."))
    if t_traj:
        t_ok = True
        for ts in t_traj.values():
            ts = np.array(ts)
            # the first update only records the loss, so t at step i sits on the floor of step i-1
            prev = np.maximum(np.arange(len(ts)) - 1, 0)
            floor = cfg.t_start + (cfg.t_end - cfg.t_start) * prev / cfg.steps
            t_ok &= bool(
                np.all(np.diff(ts) >= 0) and np.all(ts >= floor - 1e-12) and ts.max() <= cfg.t_end
            )
        res.append(
            C.verdict(
                C_T,
                "monotone, >= floor, <= t_end",
                ", ".join(f"h={h}: t {ts[0]:.3f} -> {ts[-1]:.3f}" for h, ts in t_traj.items()),
                "exact",
                t_ok,
                figure=fig,
            )
        )
    else:
        res.append(budget.undecided(C_T, details="No TAID run finished."))
    C.save_run(
        out,
        cfg,
        dict(
            final={f"{h}/{m}": v for (h, m), v in final.items()},
            advantage=advantage,
            t_trajectory={str(h): ts for h, ts in t_traj.items()},
            teacher_seconds=st["teacher_seconds"],
            stopped=budget.stopped,
        ),
        rows,
    )
    return res
