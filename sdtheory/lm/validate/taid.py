r"""TAID against forward and reverse KL: SmolLM2 -> tiny students, paired seeds, several sizes.

Real text: champ-dataset competition problems with their step solutions (truncated), split into
training and held-out sequences. The teacher's log-probabilities at every position are computed
once. Randomly initialised students of SmolLM2's architecture and tokenizer at several sizes
(capacity gaps) are trained for the same number of AdamW steps on the same batches with three
token-level losses: forward KL $\mathrm{KL}(p\|q)$, reverse KL $\mathrm{KL}(q\|p)$, and TAID
$\mathrm{KL}(p_t\|q)$ (`sdtheory.lm.methods.taid.taid_loss`) with the adaptive schedule
`sdtheory.theory.taid.TAIDSchedule` (official defaults). A seed fixes the initialisation and the
batches, shared by the three methods (the pairing unit).

**Predictions** (stated in `sdtheory.claims.catalog.validate` before the run):

- `validate.taid-beats-fkl-rkl`: for each size, held-out KL(p||q) of TAID < the better baseline's
  (paired t band over seeds; Bonferroni over sizes);
- `validate.taid-capacity-gap`: TAID's edge $e=(\mathrm{KL}_{\rm best\,baseline}-
  \mathrm{KL}_{\rm TAID})/\mathrm{KL}_{\rm best\,baseline}$ has a negative slope in
  $\log(\text{student parameters})$ (per seed, least squares over sizes; t band);
- `taid.kl-directions`: the reverse-KL student has lower entropy and a larger forward KL than the
  forward-KL student (two paired tests per size);
- `taid.schedule-in-training`: $t$ is monotone, on or above the linear floor and at most
  $t_{\rm end}$ in every run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from ... import claims, simio
from ...claims.catalog import validate as V
from ...runner import Budget
from ...theory.taid import TAIDSchedule
from ..methods.taid import taid_loss
from . import _common as C
from . import _distill as D
from . import _stats as S

NAME = "taid"
TITLE = "4. TAID vs forward/reverse KL: SmolLM2 -> tiny students"
CLAIMS = (V.TAID_BEATS, V.TAID_GAP, V.TAID_DIRECTIONS, V.TAID_SCHEDULE)
WEIGHT = 1.5  # share of a time budget, relative to the other experiments (docs/lm/gpu.md)
KNOB = "steps"  # size knob (docs/lm/gpu.md): training steps per student and loss
METHODS = ("forward_kl", "reverse_kl", "taid")


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: int = 3  # the scale's size (SIZES): paired seeds
    students: tuple[tuple[int, int], ...] = ((32, 1), (128, 2))  # (hidden, layers)
    n_train: int = 48
    n_test: int = 16
    max_tokens: int = 32
    steps: int = 40
    batch: int = 6
    lr: float = 3e-3
    t_start: float = 0.4
    t_end: float = 1.0
    data_seed: int = 0


SIZES = {"cpu": 2, "cpu-long": 3, "gpu": 10}
CONFIGS = {
    "fast": Config(
        seeds=2, students=((16, 1), (32, 1)), n_train=8, n_test=4, max_tokens=16, steps=4, batch=4
    ),
    **{s: Config(seeds=n) for s, n in SIZES.items()},
}
CONFIGS["gpu"] = dataclasses.replace(
    CONFIGS["gpu"],
    students=((32, 1), (64, 1), (128, 2), (256, 4)),
    n_train=206,  # champ v0 has 270 problems: 206 + 64 texts
    n_test=64,
    max_tokens=128,
    steps=600,
    batch=16,
)


def _student(tok, hidden: int, layers: int, seed: int):
    from ..models import small_model

    heads = 4 if hidden >= 64 else 2
    return small_model(
        tok,
        seed=seed,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=max(1, heads // 2),
    ).to(C.device())


def train_one(cfg, method, hidden, layers, seed, tok, data) -> dict:
    """One student: final held-out metrics and the t trajectory (TAID)."""
    ids, mask, lp, ids_te, mask_te, lp_te = data
    model = _student(tok, hidden, layers, seed)
    n_params = sum(p.numel() for p in model.parameters())
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = TAIDSchedule(t_start=cfg.t_start, t_end=cfg.t_end)
    rng = np.random.default_rng(1_000 + seed)  # the batches: shared by the three methods
    ts = []
    for step in range(cfg.steps):
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
    model.eval()
    ev = D.evaluate(model, ids_te, mask_te, lp_te)
    return dict(n_params=n_params, t=ts, **ev)


def measure(cfg: Config, out: Path, budget: Budget | None = None) -> Path:
    budget = budget or Budget()
    teacher, tok = C.smollm2()
    texts = C.real_texts(cfg.n_train + cfg.n_test, seed=cfg.data_seed, task="champ")
    ids_all, mask_all = C.encode_batch(tok, texts, cfg.max_tokens)
    budget.check("teacher log-probs")
    with C.Timer() as tt:
        lp_all = D.teacher_log_probs(teacher, ids_all, mask_all, dtype=torch.float16)
    C.log(NAME, f"teacher log-probs {tuple(lp_all.shape)} in {tt.seconds:.0f}s")
    n = cfg.n_train
    data = (ids_all[:n], mask_all[:n], lp_all[:n], ids_all[n:], mask_all[n:], lp_all[n:])
    units = C.Units(out / "units.jsonl")
    for seed in range(cfg.seeds):  # seeds outermost: a stopped run keeps whole seeds
        for hidden, layers in cfg.students:
            for method in METHODS:
                budget.check("student")
                with C.Timer() as tm:
                    r = train_one(cfg, method, hidden, layers, seed, tok, data)
                units.write(
                    seed=seed, hidden=hidden, layers=layers, method=method, seconds=tm.seconds, **r
                )
                C.log(
                    NAME,
                    f"seed {seed} h={hidden} {method}: KL(p||q)={r['kl_pq']:.4f} "
                    f"H={r['entropy_student']:.3f} ({tm.seconds:.0f}s)",
                )
    return units.path


def decide(rows: list[dict], cfg: Config, out: Path) -> list[claims.CheckResult]:
    by = {(r["seed"], r["hidden"], r["method"]): r for r in rows}
    sizes = [h for h, _ in cfg.students]
    seeds = sorted({r["seed"] for r in rows})
    full = [s for s in seeds if all((s, h, m) in by for h in sizes for m in METHODS)]
    fig = "taid_edges.png"
    res = []
    level = claims.bonferroni(len(sizes))
    table = []
    for s in full:
        for h in sizes:
            kl = {m: by[(s, h, m)]["kl_pq"] for m in METHODS}
            best = min(kl["forward_kl"], kl["reverse_kl"])
            table.append(
                dict(
                    seed=s,
                    hidden=h,
                    n_params=by[(s, h, "taid")]["n_params"],
                    best_baseline=best,
                    taid=kl["taid"],
                    edge=(best - kl["taid"]) / best,
                    **{f"kl_{m}": kl[m] for m in METHODS},
                    h_forward=by[(s, h, "forward_kl")]["entropy_student"],
                    h_reverse=by[(s, h, "reverse_kl")]["entropy_student"],
                )
            )
    col = lambda h, k: np.array([r[k] for r in table if r["hidden"] == h])  # noqa: E731
    summary = (
        "; ".join(
            f"h={h}: FKL {col(h, 'kl_forward_kl').mean():.4f}, RKL {col(h, 'kl_reverse_kl').mean():.4f}, "
            f"TAID {col(h, 'kl_taid').mean():.4f}"
            for h in sizes
        )
        if table
        else "no complete seed"
    )
    setting = (
        f"{len(full)} paired seeds; {cfg.steps} AdamW steps x {cfg.batch} champ texts of "
        f"{cfg.max_tokens} tokens; held-out {cfg.n_test} texts; mean held-out KL(p||q) {summary}"
    )
    for h in sizes:
        res.append(
            claims.check_paired(
                V.TAID_BEATS,
                col(h, "best_baseline"),
                col(h, "taid"),
                side=">",
                level=level,
                details=f"student hidden {h}: best baseline minus TAID held-out KL(p||q), per "
                f"seed (the better of FKL/RKL of that seed); Bonferroni over {len(sizes)} sizes. "
                f"{setting}.",
                figure=fig,
            )
        )
    slopes = []
    for s in full:
        rs = [r for r in table if r["seed"] == s]
        slopes.append(S.ols_slope(np.log([r["n_params"] for r in rs]), [r["edge"] for r in rs]))
    edges = (
        "; ".join(
            f"h={h} ({col(h, 'n_params')[0] / 1e6:.2f}M params): edge {col(h, 'edge').mean():.4f}"
            for h in sizes
        )
        if table
        else ""
    )
    res.append(
        claims.check_mean(
            V.TAID_GAP,
            slopes,
            side="<",
            null=0.0,
            details=f"slope of TAID's edge on log(student parameters) per seed over sizes {sizes}: "
            f"{edges}. {setting}.",
            figure=fig,
        )
    )
    # taid.kl-directions has two measurable parts here, each its own paired test per size:
    # the reverse-KL student has lower entropy and larger forward KL than the forward-KL student
    for h in sizes:
        res.append(
            claims.check_paired(
                V.TAID_DIRECTIONS,
                col(h, "h_forward"),
                col(h, "h_reverse"),
                side=">",
                level=claims.bonferroni(2 * len(sizes)),
                details=f"student hidden {h}: entropy of the forward-KL student minus the "
                f"reverse-KL student's, held out (teacher {rows[0]['entropy_teacher']:.3f} nats); "
                f"family of {2 * len(sizes)} (entropy and forward KL per size, Bonferroni).",
                figure=fig,
            )
        )
        res.append(
            claims.check_paired(
                V.TAID_DIRECTIONS,
                col(h, "kl_reverse_kl"),
                col(h, "kl_forward_kl"),
                side=">",
                level=claims.bonferroni(2 * len(sizes)),
                details=f"student hidden {h}: held-out forward KL(p||q) of the reverse-KL student "
                f"minus the forward-KL student's; family of {2 * len(sizes)} (Bonferroni).",
                figure=fig,
            )
        )
    ok, traj = True, []
    for r in rows:
        if r["method"] != "taid" or not r["t"]:
            continue
        ts = np.array(r["t"])
        prev = np.maximum(np.arange(len(ts)) - 1, 0)
        floor = cfg.t_start + (cfg.t_end - cfg.t_start) * prev / cfg.steps
        ok &= bool(
            np.all(np.diff(ts) >= 0) and np.all(ts >= floor - 1e-12) and ts.max() <= cfg.t_end
        )
        traj.append((r["hidden"], ts[0], ts[-1]))
    res.append(
        claims.check_true(
            V.TAID_SCHEDULE,
            ok,
            predicted="monotone, >= linear floor, <= t_end",
            measured=f"{len(traj)} trajectories, t {min(t[1] for t in traj):.3f} -> "
            f"{max(t[2] for t in traj):.3f}"
            if traj
            else "none",
            details="every TAID run of every seed and size.",
            figure=fig,
        )
    )
    plot(table, rows, cfg, out / fig)
    C.save_run(out, cfg, dict(table=table, slopes=slopes), table)
    return res


def plot(table, rows, cfg, path: Path) -> Path:
    with simio.style() as plt:
        fig, ax = plt.subplots(1, 3, figsize=(12, 3.6))
        sizes = sorted({r["hidden"] for r in table})
        if table:
            params = [np.mean([r["n_params"] for r in table if r["hidden"] == h]) for h in sizes]
            for s in sorted({r["seed"] for r in table}):
                e = [
                    next(r["edge"] for r in table if r["seed"] == s and r["hidden"] == h)
                    for h in sizes
                ]
                ax[0].plot(params, e, "o-", color="0.7", lw=0.8)
            m = [np.mean([r["edge"] for r in table if r["hidden"] == h]) for h in sizes]
            ax[0].plot(params, m, "ko-", lw=2, label="mean over seeds")
            ax[0].set_xscale("log")
            ax[0].axhline(0, color="k", lw=0.6)
            ax[0].set(
                xlabel="student parameters",
                ylabel="TAID edge (relative KL reduction)",
                title="edge vs capacity gap",
            )
            ax[0].legend(fontsize=7)
            for i, meth in enumerate(METHODS):
                ax[1].plot(
                    params,
                    [np.mean([r[f"kl_{meth}"] for r in table if r["hidden"] == h]) for h in sizes],
                    "o-",
                    label=meth,
                    color=f"C{i}",
                )
            ax[1].set_xscale("log")
            ax[1].set(
                xlabel="student parameters", ylabel="held-out KL(p||q)", title="final held-out KL"
            )
            ax[1].legend(fontsize=7)
        for r in rows:
            if r["method"] == "taid" and r["t"] and r["seed"] == 0:
                ax[2].plot(np.arange(1, len(r["t"]) + 1), r["t"], label=f"h={r['hidden']}")
        lin = [cfg.t_start + (cfg.t_end - cfg.t_start) * s / cfg.steps for s in range(cfg.steps)]
        ax[2].plot(np.arange(1, cfg.steps + 1), lin, "k:", label="linear floor")
        ax[2].set(xlabel="step", ylabel="t", title="TAID t, seed 0")
        ax[2].legend(fontsize=7)
        return simio.save_figure(fig, path.with_suffix(""))


def run(cfg: Config, out: Path, budget: Budget | None = None) -> list[claims.CheckResult]:
    """Measure (units written as they finish; a budget stops between units), then decide from
    what was measured: a claim the units cannot decide is reported as needing a larger scale."""
    return C.measure_then_decide(cfg, out, budget or Budget(), measure, decide, CLAIMS)
