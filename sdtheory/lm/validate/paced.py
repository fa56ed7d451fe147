r"""Experiment 3: PACED on SmolLM2: gradient SNR against pass rate, and p(1-p) weighting.

Student: SmolLM2-135M-Instruct with only its final RMSNorm gain trainable (576 parameters; the
body is frozen, the cheap CPU subset). Teacher: the same frozen network with the original gain,
prompted with the worked solution (the privileged-context self-teacher of OPSD). Problems:
reasoning-gym `chain_sum` arithmetic.

1. For each of $N$ problems draw $K$ student rollouts; the pass rate $\hat p$ is the fraction
   verified correct. Each rollout's distillation loss is the token-mean forward KL
   $\mathrm{KL}(p_T\|q_S)$ on its completion tokens; its gradient in the gain is exact,
   $\nabla_g=\overline{((q-p)W)\odot u}$ ($u$ the normalised final hidden state, $W$ the
   output embedding). Per problem: the mean gradient and its SNR over the $K$ rollouts
   (`sdtheory.theory.paced.gradient_snr`, debiased); per pass-rate bin: the mean per-problem SNR
   and the cross-problem SNR of the problems' gradients.
2. Beta exponents: `fit_beta_kernel` of the per-problem SNR against $\hat p\in(0,1)$.
3. A short run: the same number of steps and rollouts with weights $\hat p(1-\hat p)$ (PACED's
   default kernel) and with uniform weights; held-out accuracy before and after.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from pathlib import Path

import numpy as np
import torch

from ... import claims, simio
from ...runner import Budget
from ...theory.paced import beta_kernel_weight, fit_beta_kernel, gradient_snr
from ..rollout import completion_hidden, pass_rates, sample, stop_ids
from ..tasks import chat_prompt_ids, make_task
from ..teachers import view_messages
from . import _common as C

NAME = "paced"
TITLE = "3. PACED: gradient SNR vs pass rate on SmolLM2"

C_LOW = claims.claim(
    "validate.paced.snr-vanishes-unsolved",
    "The gradient SNR of the distillation loss is small for problems the student never solves "
    "(pass rate 0): below half the largest interior-bin SNR.",
    ("paper", "PACED v3 abstract (paced2026): SNR bell curve collapsing at both extremes"),
    "sdtheory.theory.paced.gradient_snr",
    paper="paced2026",
)
C_HIGH = claims.claim(
    "validate.paced.snr-vanishes-mastered",
    "The gradient SNR is small for problems the student always solves (pass rate 1): below "
    "half the largest interior-bin SNR.",
    ("paper", "PACED v3 abstract (paced2026): SNR bell curve collapsing at both extremes"),
    "sdtheory.theory.paced.gradient_snr",
    paper="paced2026",
)
C_BETA = claims.claim(
    "validate.paced.beta-exponents",
    "A Beta kernel c p^a (1-p)^b fitted to the per-problem SNR over pass rates in (0, 1) has "
    "both exponents positive (a bell that vanishes at both ends).",
    ("paper", "PACED v1 abstract (paced2026): Beta kernel w = p^a (1-p)^b; fit is ours"),
    "sdtheory.theory.paced.fit_beta_kernel",
    paper="paced2026",
)
C_TRAIN = claims.claim(
    "validate.paced.weighted-beats-uniform",
    "At equal steps and rollouts, p(1-p)-weighted distillation reaches a held-out accuracy at "
    "least that of uniform weighting (inconclusive within 2 standard errors).",
    ("paper", "PACED v3 abstract (paced2026): Beta weighting beats uniform distillation"),
    "sdtheory.theory.paced.beta_kernel_weight",
    paper="paced2026",
)


CLAIMS = (C_LOW, C_HIGH, C_BETA, C_TRAIN)
WEIGHT = 2.0  # share of a time budget, relative to the other experiments (docs/lm/gpu.md)
KNOB = "train_steps"  # size knob (docs/lm/gpu.md): training steps per weighting


@dataclasses.dataclass(frozen=True)
class Config:
    n_problems: int = 24
    k: int = 4
    max_new_tokens: int = 20
    temperature: float = 1.0
    train_steps: int = 4
    batch_problems: int = 4
    train_k: int = 2
    lr: float = 0.02
    n_eval: int = 24
    eval_k: int = 2
    chunk: int = 16
    group: int = 16  # problems per unit of the SNR measurement (a budget stops between units)
    seed: int = 0


CONFIGS = {
    "fast": Config(
        n_problems=5,
        k=2,
        max_new_tokens=4,
        train_steps=1,
        batch_problems=2,
        train_k=2,
        n_eval=2,
        eval_k=1,
    ),
    "cpu": Config(),
    "gpu": Config(
        n_problems=128,
        k=16,
        max_new_tokens=48,
        train_steps=30,
        batch_problems=8,
        train_k=8,
        n_eval=128,
        eval_k=4,
        chunk=64,
    ),
}


@contextlib.contextmanager
def gain(model, g):
    """Temporarily set the final-norm gain of `model` to `g`."""
    w = model.model.norm.weight
    old = w.data.clone()
    w.data.copy_(g)
    try:
        yield
    finally:
        w.data.copy_(old)


class Setup:
    def __init__(self, cfg):
        self.model, self.tok = C.smollm2()
        self.task = make_task("chain_sum")
        self.g_star = self.model.model.norm.weight.detach().clone()
        self.W = self.model.lm_head.weight.detach()
        self.stops, self.pad = stop_ids(self.tok), self.tok.pad_token_id
        self.cfg = cfg

    def rollouts(self, problems, g, k, seed, row0: int = 0):
        """`k` samples per problem with gain `g`; row `i` draws from `(seed, row0 + i)`."""
        prompts = [chat_prompt_ids(self.tok, self.task.student_messages(p)) for p in problems]
        rows = range(row0, row0 + len(problems) * k)
        with gain(self.model, g), torch.no_grad(), C.autocast():
            ro = sample(
                self.model,
                prompts,
                max_new_tokens=self.cfg.max_new_tokens,
                stop_token_ids=self.stops,
                pad_id=self.pad,
                temperature=self.cfg.temperature,
                seed=seed,
                row_seeds=list(rows),
                k=k,
            )
        texts = ro.texts(self.tok)
        rewards = torch.tensor(
            [self.task.verify(t, problems[int(i)]) for t, i in zip(texts, ro.group, strict=True)]
        )
        return ro, rewards

    @torch.no_grad()
    def normalised(self, problems, ro, teacher: bool):
        """Normalised final hidden states u on the completion tokens (gain set to 1)."""
        if teacher:
            msgs = [view_messages(self.task, problems[int(i)], "solution") for i in ro.group]
        else:
            msgs = [self.task.student_messages(problems[int(i)]) for i in ro.group]
        prompts = [chat_prompt_ids(self.tok, m) for m in msgs]
        out = []
        with gain(self.model, torch.ones_like(self.g_star)):
            for a in range(0, len(prompts), self.cfg.chunk):
                b = a + self.cfg.chunk
                out.append(
                    completion_hidden(
                        self.model, prompts[a:b], ro.completions[a:b], ro.completion_mask[a:b]
                    ).float()
                )
        return torch.cat(out)

    def losses(self, u_s, u_t, mask, g):
        """Per-rollout token-mean KL(p_T || q_S) (differentiable in g)."""
        lq = torch.log_softmax((u_s * g) @ self.W.T, -1)
        lp = torch.log_softmax((u_t * self.g_star) @ self.W.T, -1)
        kl = torch.sum(lp.exp() * (lp - lq), -1)
        m = mask.float()
        return (kl * m).sum(1) / m.sum(1).clamp(min=1)

    @torch.no_grad()
    def grads(self, u_s, u_t, mask, g):
        """Exact per-rollout gradients of the token-mean KL in the gain g, (N, H)."""
        out = []
        for a in range(0, u_s.shape[0], self.cfg.chunk):
            us, ut, m = (
                u_s[a : a + self.cfg.chunk],
                u_t[a : a + self.cfg.chunk],
                mask[a : a + self.cfg.chunk].float(),
            )
            q = torch.softmax((us * g) @ self.W.T, -1)
            p = torch.softmax((ut * self.g_star) @ self.W.T, -1)
            gt = ((q - p) @ self.W) * us  # (n, T, H)
            out.append((gt * m[..., None]).sum(1) / m.sum(1).clamp(min=1)[:, None])
        return torch.cat(out).double().cpu().numpy()


def _bins(p):
    edges = [
        (0.0, 0.0, "0"),
        (1e-9, 1 / 3, "(0,1/3]"),
        (1 / 3 + 1e-9, 2 / 3 - 1e-9, "(1/3,2/3)"),
        (2 / 3 - 1e-9, 1 - 1e-9, "[2/3,1)"),
        (1.0, 1.0, "1"),
    ]
    return [(lab, (p >= lo - 1e-12) & (p <= hi + 1e-12)) for lo, hi, lab in edges]


def _accuracy(st, problems, g, cfg, seed):
    _, r = st.rollouts(problems, g, cfg.eval_k, seed)
    return float(r.mean()), float(r.std(unbiased=True) / math.sqrt(len(r))) if len(r) > 1 else 0.0


def _train(st, cfg, train_set, weighting: str, budget=None):
    budget = budget or Budget()
    g = torch.nn.Parameter(st.g_star.clone())
    s = torch.nn.Parameter(torch.zeros_like(g))
    opt = torch.optim.Adam([s], lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed + 1)
    for step in range(cfg.train_steps):
        budget.check("train step")
        idx = rng.choice(len(train_set), cfg.batch_problems, replace=False)
        probs = [train_set[int(i)] for i in idx]
        cur = st.g_star * s.detach().exp()
        ro, rew = st.rollouts(probs, cur, cfg.train_k, seed=cfg.seed + 1000 * (step + 1))
        p_hat = pass_rates(rew, ro.group.cpu(), len(probs)).numpy()
        if weighting == "p(1-p)":
            w = beta_kernel_weight(p_hat, 1.0, 1.0)
        else:
            w = np.ones(len(probs))
        if w.sum() == 0:  # every problem at 0 or 1: PACED skips the batch (same compute spent)
            continue
        u_s = st.normalised(probs, ro, teacher=False)
        u_t = st.normalised(probs, ro, teacher=True)
        per = st.losses(u_s, u_t, ro.completion_mask, st.g_star * s.exp())
        wr = torch.tensor(w, dtype=per.dtype, device=per.device)[ro.group]
        loss = (wr * per).sum() / wr.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    del g
    return st.g_star * s.detach().exp()


def _measure(cfg, st, m, units, budget):
    """The SNR over problems (in groups of `cfg.group`), then the two training arms."""
    problems, held = st.task.split(cfg.n_problems, cfg.n_eval, seed=cfg.seed)
    with C.Timer() as t1:
        for a in range(0, len(problems), cfg.group):
            budget.check("problem group")
            ps = problems[a : a + cfg.group]
            ro, rew = st.rollouts(ps, st.g_star, cfg.k, seed=cfg.seed, row0=a * cfg.k)
            p_hat = pass_rates(rew, ro.group.cpu(), len(ps)).numpy()
            u_s = st.normalised(ps, ro, teacher=False)
            u_t = st.normalised(ps, ro, teacher=True)
            g = st.grads(u_s, u_t, ro.completion_mask, st.g_star)
            grp = ro.group.cpu().numpy()
            for i in range(len(ps)):
                gi = g[grp == i]
                snr = gradient_snr(gi) if len(gi) >= 2 else np.nan
                m["p_hat"].append(float(p_hat[i]))
                m["prob_grad"].append(gi.mean(0))
                m["prob_snr"].append(float(snr))
                units.write(kind="problem", index=a + i, pass_rate=p_hat[i], snr=float(snr))
    m["seconds"]["snr"] = t1.seconds
    C.log(
        NAME,
        f"{len(m['p_hat'])} problems x {cfg.k} rollouts, mean pass rate "
        f"{np.mean(m['p_hat']):.3f} in {t1.seconds:.0f}s",
    )
    with C.Timer() as t2:
        budget.check("evaluation")
        m["acc0"] = _accuracy(st, held, st.g_star, cfg, seed=cfg.seed + 99)
        units.write(kind="accuracy", arm="before", accuracy=m["acc0"])
        for wname in ("p(1-p)", "uniform"):
            budget.check("arm")
            g_fin = _train(st, cfg, problems, wname, budget)
            budget.check("evaluation")
            m["accs"][wname] = _accuracy(st, held, g_fin, cfg, seed=cfg.seed + 99)
            units.write(kind="accuracy", arm=wname, accuracy=m["accs"][wname])
    m["seconds"]["training"] = t2.seconds
    C.log(NAME, f"accuracy before {m['acc0']}, after {m['accs']} ({t2.seconds:.0f}s)")


def run(cfg: Config, out: Path, budget: Budget | None = None) -> list[claims.CheckResult]:
    out = Path(out)
    budget = budget or Budget()
    st = Setup(cfg)
    units = C.Units(out / "units.jsonl")
    m = dict(p_hat=[], prob_grad=[], prob_snr=[], acc0=None, accs={}, seconds={})
    with budget.measuring():
        _measure(cfg, st, m, units, budget)
    if not m["p_hat"]:
        C.save_run(out, cfg, dict(stopped=budget.stopped))
        return [budget.undecided(c, details="No problem was measured.") for c in CLAIMS]
    return _decide(cfg, out, budget, m)


def _decide(cfg, out, budget, m):
    p_hat, prob_snr = np.array(m["p_hat"]), np.array(m["prob_snr"])
    prob_grad = np.stack(m["prob_grad"])
    acc0, accs = m["acc0"], m["accs"]
    trained = acc0 is not None and len(accs) == 2
    partial = f" ({len(p_hat)} of {cfg.n_problems} problems measured)" if budget.stopped else ""
    rows = []
    for lab, sel in _bins(p_hat):
        n = int(sel.sum())
        rows.append(
            dict(
                bin=lab,
                n_problems=n,
                mean_problem_snr=float(np.nanmean(prob_snr[sel])) if n else float("nan"),
                cross_problem_snr=float(gradient_snr(prob_grad[sel])) if n >= 3 else float("nan"),
                mean_grad_norm=float(np.linalg.norm(prob_grad[sel], axis=1).mean())
                if n
                else float("nan"),
            )
        )
    interior = [r["mean_problem_snr"] for r in rows[1:4] if r["n_problems"] > 0]
    peak = max(interior) if interior else float("nan")
    snr0, snr1 = rows[0]["mean_problem_snr"], rows[-1]["mean_problem_snr"]
    mid = (p_hat > 0) & (p_hat < 1) & (prob_snr > 0)
    fit = None
    if mid.sum() >= 3:
        with contextlib.suppress(ValueError):
            fit = fit_beta_kernel(p_hat[mid], prob_snr[mid], method="lsq")

    with simio.style() as plt:
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
        ax[0].scatter(
            p_hat + np.random.default_rng(0).uniform(-0.01, 0.01, p_hat.shape),
            prob_snr,
            s=12,
            label="per problem (debiased SNR over K rollouts)",
        )
        centres = [0.0, 1 / 6, 0.5, 5 / 6, 1.0]
        ax[0].plot(centres, [r["mean_problem_snr"] for r in rows], "ko-", label="bin mean")
        if fit is not None:
            pp = np.linspace(0.02, 0.98, 50)
            ax[0].plot(pp, fit(pp), "r--", label=f"Beta fit a={fit.alpha:.2f}, b={fit.beta:.2f}")
        ax[0].set(
            xlabel="pass rate p (K rollouts)",
            ylabel="gradient SNR",
            title="distillation-gradient SNR vs pass rate",
        )
        ax[0].legend(fontsize=7)
        vals = {"before": acc0, **accs} if acc0 is not None else {}
        ax[1].bar(list(vals), [v[0] for v in vals.values()], yerr=[2 * v[1] for v in vals.values()])
        ax[1].set(ylabel="held-out accuracy (±2 SE)", title=f"{cfg.train_steps} steps each")
        fig_path = simio.save_figure(fig, out / "paced_snr")
    fig = fig_path.name
    bins_txt = "; ".join(
        f"{r['bin']}: n={r['n_problems']}, SNR={r['mean_problem_snr']:.3g}" for r in rows
    )

    def end_check(c, val, label):
        if not (math.isfinite(val) and math.isfinite(peak)):
            if budget.stopped:
                return budget.undecided(
                    c, details=f"no problems at pass rate {label} or in the interior{partial}."
                )
            return C.verdict(
                c,
                "< 0.5 x peak interior SNR",
                val,
                "factor 0.5",
                None,
                details=f"no problems at pass rate {label} or in the interior; {bins_txt}.",
                figure=fig,
            )
        return C.verdict(
            c,
            f"< {0.5 * peak:.3g}",
            val,
            "factor 0.5 of the peak",
            val < 0.5 * peak,
            details=f"{bins_txt}{partial}.",
            figure=fig,
        )

    res = [end_check(C_LOW, snr0, "0"), end_check(C_HIGH, snr1, "1")]
    if fit is None and budget.stopped:
        res.append(budget.undecided(C_BETA, details=f"no Beta fit{partial}."))
    elif fit is None:
        res.append(
            C.verdict(
                C_BETA,
                "a > 0, b > 0",
                "no fit",
                "sign",
                None,
                details=f"fewer than 3 problems with 0 < p < 1 and SNR > 0 ({int(mid.sum())}).",
                figure=fig,
            )
        )
    else:
        res.append(
            C.verdict(
                C_BETA,
                "a > 0, b > 0",
                f"a={fit.alpha:.3f}, b={fit.beta:.3f}",
                "sign",
                fit.alpha > 0 and fit.beta > 0,
                details=f"lsq fit on {int(mid.sum())} problems{partial}; implied "
                f"misspecification delta={fit.delta:.3f}.",
                figure=fig,
            )
        )
    if not trained:
        res.append(budget.undecided(C_TRAIN, details=f"arms evaluated: {list(accs)}."))
        C.save_run(
            out, cfg, _metrics(rows, p_hat, prob_snr, fit, m, budget), _table(p_hat, prob_snr)
        )
        return res
    (aw, sw), (au, su) = accs["p(1-p)"], accs["uniform"]
    se = math.sqrt(sw**2 + su**2)
    diff = aw - au
    ok = None if abs(diff) < 2 * se or se == 0 else diff > 0
    res.append(
        C.verdict(
            C_TRAIN,
            ">= uniform",
            f"{aw:.3f} vs {au:.3f}",
            f"2 SE = {2 * se:.3f}",
            ok,
            details=f"before training {acc0[0]:.3f}; {cfg.train_steps} steps x "
            f"{cfg.batch_problems} problems x {cfg.train_k} rollouts per arm; "
            f"held-out {cfg.n_eval} problems x {cfg.eval_k} samples.",
            figure=fig,
        )
    )
    C.save_run(out, cfg, _metrics(rows, p_hat, prob_snr, fit, m, budget), _table(p_hat, prob_snr))
    return res


def _metrics(rows, p_hat, prob_snr, fit, m, budget) -> dict:
    return dict(
        bins=rows,
        pass_rates=p_hat,
        problem_snr=prob_snr,
        beta_fit=None if fit is None else dict(alpha=fit.alpha, beta=fit.beta, delta=fit.delta),
        accuracy_before=m["acc0"],
        accuracy_after=m["accs"],
        seconds=m["seconds"],
        stopped=budget.stopped,
    )


def _table(p_hat, prob_snr) -> list[dict]:
    return [dict(problem=i, pass_rate=p_hat[i], snr=prob_snr[i]) for i in range(len(p_hat))]
