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

    def rollouts(self, problems, g, k, seed):
        prompts = [chat_prompt_ids(self.tok, self.task.student_messages(p)) for p in problems]
        with gain(self.model, g), torch.no_grad():
            ro = sample(
                self.model,
                prompts,
                max_new_tokens=self.cfg.max_new_tokens,
                stop_token_ids=self.stops,
                pad_id=self.pad,
                temperature=self.cfg.temperature,
                seed=seed,
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
        return torch.cat(out).double().numpy()


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


def _train(st, cfg, train_set, weighting: str):
    g = torch.nn.Parameter(st.g_star.clone())
    s = torch.nn.Parameter(torch.zeros_like(g))
    opt = torch.optim.Adam([s], lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed + 1)
    for step in range(cfg.train_steps):
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
        wr = torch.tensor(w, dtype=per.dtype)[ro.group]
        loss = (wr * per).sum() / wr.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    del g
    return st.g_star * s.detach().exp()


def run(cfg: Config, out: Path) -> list[claims.CheckResult]:
    out = Path(out)
    st = Setup(cfg)
    problems, held = st.task.split(cfg.n_problems, cfg.n_eval, seed=cfg.seed)
    with C.Timer() as t1:
        ro, rew = st.rollouts(problems, st.g_star, cfg.k, seed=cfg.seed)
        p_hat = pass_rates(rew, ro.group.cpu(), len(problems)).numpy()
        u_s = st.normalised(problems, ro, teacher=False)
        u_t = st.normalised(problems, ro, teacher=True)
        g = st.grads(u_s, u_t, ro.completion_mask, st.g_star)
    C.log(
        NAME,
        f"{len(problems)} problems x {cfg.k} rollouts, mean pass rate "
        f"{p_hat.mean():.3f}, gradients {g.shape} in {t1.seconds:.0f}s",
    )
    grp = ro.group.cpu().numpy()
    prob_grad = np.stack([g[grp == i].mean(0) for i in range(len(problems))])
    prob_snr = np.array(
        [
            gradient_snr(g[grp == i]) if (grp == i).sum() >= 2 else np.nan
            for i in range(len(problems))
        ]
    )
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

    with C.Timer() as t2:
        acc0 = _accuracy(st, held, st.g_star, cfg, seed=cfg.seed + 99)
        accs = {}
        for wname in ("p(1-p)", "uniform"):
            g_fin = _train(st, cfg, problems, wname)
            accs[wname] = _accuracy(st, held, g_fin, cfg, seed=cfg.seed + 99)
    C.log(NAME, f"accuracy before {acc0}, after {accs} ({t2.seconds:.0f}s)")

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
        names = ["before", "p(1-p)", "uniform"]
        vals = [acc0, accs["p(1-p)"], accs["uniform"]]
        ax[1].bar(names, [v[0] for v in vals], yerr=[2 * v[1] for v in vals], capsize=4)
        ax[1].set(ylabel="held-out accuracy (±2 SE)", title=f"{cfg.train_steps} steps each")
        fig_path = simio.save_figure(fig, out / "paced_snr")
    fig = fig_path.name
    bins_txt = "; ".join(
        f"{r['bin']}: n={r['n_problems']}, SNR={r['mean_problem_snr']:.3g}" for r in rows
    )

    def end_check(c, val, label):
        if not (math.isfinite(val) and math.isfinite(peak)):
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
            details=f"{bins_txt}.",
            figure=fig,
        )

    res = [end_check(C_LOW, snr0, "0"), end_check(C_HIGH, snr1, "1")]
    if fit is None:
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
                details=f"lsq fit on {int(mid.sum())} problems; implied "
                f"misspecification delta={fit.delta:.3f}.",
                figure=fig,
            )
        )
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
    C.save_run(
        out,
        cfg,
        dict(
            bins=rows,
            pass_rates=p_hat,
            problem_snr=prob_snr,
            beta_fit=None if fit is None else dict(alpha=fit.alpha, beta=fit.beta, delta=fit.delta),
            accuracy_before=acc0,
            accuracy_after=accs,
            seconds=dict(snr=t1.seconds, training=t2.seconds),
        ),
        [dict(problem=i, pass_rate=p_hat[i], snr=prob_snr[i]) for i in range(len(problems))],
    )
    return res
