r"""Experiment 2: recursive meta-distillation anchored at SmolLM2.

$p_0$ is SmolLM2-135M-Instruct's next-token distribution at every position of a fixed set of real
texts (champ-dataset problems with their solutions). Generation $n+1$ is trained on the training
texts towards the meta-teacher $m_n=\lambda p_0+(1-\lambda)q_n$ (full distributions, forward KL
$\mathrm{KL}(m_n\|q)$), with $q_n$ the frozen previous generation; we record the held-out
$\mathrm{KL}(p_0\|q_n)$ per generation and compare it with the arithmetic contraction bound
$(1-\lambda)^n\,\mathrm{KL}(p_0\|q_0)$ (`sdtheory.theory.meta.kl_contraction_bound`).

Three students:

* **representable**: SmolLM2 itself with only the final RMSNorm gain trainable (576 parameters,
  the cheap CPU subset), started from a perturbed gain $g_0=g^\star e^{\sigma\varepsilon}$, so the
  family contains $p_0$ ($g=g^\star$). The body is frozen, so its pre-norm hidden states are
  computed once.
* **tiny**: a randomly initialised SmolLM2-architecture model far too small to represent $p_0$;
  its floor $\min_q\mathrm{KL}(p_0\|q)$ is estimated by training the same model directly on
  $p_0$ for all the steps of all generations.
* **drift control** ($\lambda=0$): the representable student retrained each generation on
  tokens *sampled* from its predecessor (finite-sample self-training, no anchor).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch

from ... import claims, simio
from ...runner import Budget
from ...theory.meta import kl_contraction_bound
from . import _common as C
from . import _distill as D

NAME = "meta"
TITLE = "2. Recursive meta-distillation anchored at SmolLM2"

C_BOUND = claims.claim(
    "validate.meta.kl-contraction-representable",
    "For a student family that contains p0, held-out KL(p0||q_n) after n generations of "
    "distillation towards lam*p0 + (1-lam)*q_n stays below (1-lam)^n KL(p0||q_0) (up to the "
    "stated optimisation slack).",
    ("derived", "docs/theory/meta.md §2 (joint convexity of KL; realizability assumed)"),
    "sdtheory.theory.meta.kl_contraction_bound",
    paper="flouro2026",
)
C_TINY = claims.claim(
    "validate.meta.unrealisable-floor",
    "A student that cannot represent p0 does not follow the bound to 0: its held-out "
    "KL(p0||q_N) stays at or above its capacity floor min_q KL(p0||q) and above (1-lam)^N KL0.",
    ("derived", "docs/theory/meta.md (projected iterates; realizability is needed)"),
    "sdtheory.theory.meta.projected_fixed_point",
    paper="flouro2026",
)
C_DRIFT = claims.claim(
    "validate.meta.no-anchor-drift",
    "Without the anchor (lam = 0) finite-sample generations do not contract towards p0: "
    "held-out KL(p0||q_N) >= KL(p0||q_0).",
    ("derived", "docs/theory/meta.md (lam = 0 is the identity; finite-sample drift)"),
    "sdtheory.theory.meta.finite_sample_generations",
    paper="flouro2026",
)


CLAIMS = (C_BOUND, C_TINY, C_DRIFT)
WEIGHT = 0.5  # share of a time budget, relative to the other experiments (docs/lm/gpu.md)
KNOB = "steps"  # size knob (docs/lm/gpu.md): optimiser steps per generation


@dataclasses.dataclass(frozen=True)
class Config:
    n_train: int = 24
    n_test: int = 8
    max_tokens: int = 48
    lam: float = 0.3
    generations: int = 5
    steps: int = 20  # optimiser steps per generation
    batch: int = 4  # sequences per step
    lr_norm: float = 0.05  # Adam on the log-gain of the final norm
    lr_tiny: float = 3e-3
    perturb: float = 0.3  # sigma of the log-gain perturbation of q_0
    tiny: tuple[int, int] = (32, 1)
    samples: int = 1  # sampled target tokens per position for the drift control
    slack_rel: float = 0.1  # bound slack: slack_rel * KL0 + slack_abs
    slack_abs: float = 0.005
    seed: int = 1


CONFIGS = {
    "fast": Config(n_train=6, n_test=3, max_tokens=24, generations=2, steps=3, batch=3),
    "cpu": Config(),
    "gpu": Config(n_train=128, n_test=32, max_tokens=128, generations=8, steps=60, batch=16),
}


class NormStudent(torch.nn.Module):
    """SmolLM2 with only its final RMSNorm gain trainable: logits = ((g0 e^s) * u) W^T."""

    def __init__(self, g0: torch.Tensor, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("g0", g0.clone())
        self.register_buffer("weight", weight)
        self.s = torch.nn.Parameter(torch.zeros_like(g0))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return (u * (self.g0 * self.s.exp())) @ self.weight.T


@torch.no_grad()
def normalised_hidden(model, ids, mask, batch=8):
    """u = h / rms(h): the input of the final norm divided by its RMS (body frozen)."""
    norm = model.model.norm
    cap = []
    hook = norm.register_forward_hook(lambda mod, inp, out: cap.append(inp[0].float()))
    try:
        for i in range(0, ids.shape[0], batch):
            model.model(
                input_ids=ids[i : i + batch].to(C.device()),
                attention_mask=mask[i : i + batch].to(C.device()),
            )
    finally:
        hook.remove()
    h = torch.cat(cap)
    return h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)


def _kl_held_out(student, u_te, m_te, lp_te) -> float:
    with torch.no_grad():
        lq = torch.log_softmax(student(u_te).float(), -1)
        return float(D.masked_mean(D.forward_kl(lp_te.float(), lq), m_te))


def _log_target(lp0, lq_prev, lam):
    if lam >= 1.0:
        return lp0
    if lam <= 0.0:
        return lq_prev
    return torch.logaddexp(math.log(lam) + lp0, math.log1p(-lam) + lq_prev)


def _generations_norm(
    cfg, lam, u, m, lp, u_te, m_te, lp_te, g0, weight, sampled: bool, kls=None, budget=None
):
    """Generations of the norm-gain student; held-out KL per generation (0..N), appended to
    `kls` as each generation finishes (a `budget` may stop them early)."""
    dev = C.device()
    budget = budget or Budget()
    gen = torch.Generator().manual_seed(cfg.seed + 17)
    rng = np.random.default_rng(cfg.seed)
    student = NormStudent(g0, weight).to(dev)
    kls = [] if kls is None else kls
    kls.append(_kl_held_out(student, u_te, m_te, lp_te))
    for _ in range(cfg.generations):
        budget.check("generation")
        prev = NormStudent(g0, weight).to(dev)
        prev.load_state_dict(student.state_dict())
        with torch.no_grad():
            lq_prev = torch.cat(
                [
                    torch.log_softmax(prev(u[i : i + 4]).float(), -1).cpu()
                    for i in range(0, u.shape[0], 4)
                ]
            )
        if sampled:  # empirical target: `samples` tokens drawn per position from q_n
            draws = torch.multinomial(
                lq_prev.exp().reshape(-1, lq_prev.shape[-1]),
                cfg.samples,
                replacement=True,
                generator=gen,
            )
            tgt = torch.zeros_like(lq_prev).reshape(-1, lq_prev.shape[-1])
            tgt.scatter_add_(1, draws, torch.full(draws.shape, 1.0 / cfg.samples))
            target_p = tgt.reshape(lq_prev.shape)
        else:
            target_p = None
        opt = torch.optim.Adam(student.parameters(), lr=cfg.lr_norm)
        for _ in range(cfg.steps):
            idx = torch.from_numpy(
                rng.choice(u.shape[0], min(cfg.batch, u.shape[0]), replace=False)
            )
            lq = torch.log_softmax(student(u[idx]).float(), -1)
            if target_p is None:
                lt = _log_target(lp[idx].float().to(dev), lq_prev[idx].to(dev), lam)
                loss = D.masked_mean(D.forward_kl(lt, lq), m[idx])
            else:  # cross-entropy to the sampled tokens
                loss = D.masked_mean(-(target_p[idx].to(dev) * lq).sum(-1), m[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        kls.append(_kl_held_out(student, u_te, m_te, lp_te))
    return kls


def _tiny_model(cfg, tok):
    from ..models import small_model

    h, layers = cfg.tiny
    return small_model(
        tok, seed=cfg.seed, hidden_size=h, num_layers=layers, num_heads=2, num_kv_heads=1
    ).to(C.device())


def _tiny_train(
    cfg, tok, lam, ids, mask, lp, ids_te, mask_te, lp_te, generations, steps, kls=None, budget=None
):
    dev = C.device()
    budget = budget or Budget()
    rng = np.random.default_rng(cfg.seed)
    student = _tiny_model(cfg, tok)
    kls = [] if kls is None else kls
    kls.append(D.evaluate(student, ids_te, mask_te, lp_te)["kl_pq"])
    for _ in range(generations):
        budget.check("tiny generation" if generations > 1 else "tiny floor")
        prev = _tiny_model(cfg, tok)
        prev.load_state_dict(student.state_dict())
        prev.eval()
        student.train()
        opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr_tiny, weight_decay=0.0)
        for _ in range(steps):
            idx = torch.from_numpy(
                rng.choice(ids.shape[0], min(cfg.batch, ids.shape[0]), replace=False)
            )
            mm = mask[idx].to(dev)
            x = ids[idx].to(dev)
            lq = torch.log_softmax(student(input_ids=x, attention_mask=mm).logits.float(), -1)
            with torch.no_grad():
                lqp = torch.log_softmax(prev(input_ids=x, attention_mask=mm).logits.float(), -1)
            lt = _log_target(lp[idx].float().to(dev), lqp, lam)
            loss = D.masked_mean(D.forward_kl(lt, lq), mm)
            opt.zero_grad()
            loss.backward()
            opt.step()
        student.eval()
        kls.append(D.evaluate(student, ids_te, mask_te, lp_te)["kl_pq"])
    return kls


def _measure(cfg, st: dict, units, budget):
    model, tok = C.smollm2()
    texts = C.real_texts(cfg.n_train + cfg.n_test, seed=cfg.seed, task="champ")
    ids_all, mask_all = C.encode_batch(tok, texts, cfg.max_tokens)
    budget.check("p0")
    with C.Timer() as tp:
        lp_all = D.teacher_log_probs(model, ids_all, mask_all, dtype=torch.float16)
        u_all = normalised_hidden(model, ids_all, mask_all)
    st["seconds"]["p0"] = tp.seconds
    C.log(NAME, f"p0 and hidden states {tuple(u_all.shape)} in {tp.seconds:.1f}s")
    n = cfg.n_train
    dev = C.device()
    u, u_te = u_all[:n].to(dev), u_all[n:].to(dev)
    m, m_te = mask_all[:n].to(dev), mask_all[n:].to(dev)
    lp, lp_te = lp_all[:n], lp_all[n:].to(dev)
    g_star = model.model.norm.weight.detach().float()
    eps = torch.randn(g_star.shape, generator=torch.Generator().manual_seed(cfg.seed))
    g0 = (g_star * torch.exp(cfg.perturb * eps)).to(dev)
    weight = model.lm_head.weight.detach().float().to(dev)
    args = (u, m, lp, u_te, m_te, lp_te, g0, weight)
    for key, lam, sampled in (("representable", cfg.lam, False), ("drift", 0.0, True)):
        with C.Timer() as t:
            _generations_norm(cfg, lam, *args, sampled, kls=st[key], budget=budget)
        st["seconds"][key] = t.seconds
        units.write(kind=key, lam=lam, kl_per_generation=st[key])
        C.log(NAME, f"{key} lam={lam}: {np.round(st[key], 4).tolist()} ({t.seconds:.0f}s)")
    ids, mask, ids_te, mask_te = ids_all[:n], mask_all[:n], ids_all[n:], mask_all[n:]
    data = (ids, mask, lp, ids_te, mask_te, lp_te)
    with C.Timer() as t3:
        _tiny_train(
            cfg, tok, cfg.lam, *data, cfg.generations, cfg.steps, kls=st["tiny"], budget=budget
        )
        units.write(kind="tiny", lam=cfg.lam, kl_per_generation=st["tiny"])
        floor = _tiny_train(
            cfg, tok, 1.0, *data, 1, cfg.generations * cfg.steps, kls=[], budget=budget
        )
        st["floor"] = floor[-1] if len(floor) == 2 else None
        units.write(kind="tiny floor", kl=st["floor"])
    st["seconds"]["tiny"] = t3.seconds
    C.log(NAME, f"tiny lam={cfg.lam}: {np.round(st['tiny'], 3).tolist()}, floor {st['floor']:.3f}")


def run(cfg: Config, out: Path, budget: Budget | None = None) -> list[claims.CheckResult]:
    out = Path(out)
    budget = budget or Budget()
    units = C.Units(out / "units.jsonl")
    st = dict(representable=[], drift=[], tiny=[], floor=None, seconds={})
    with budget.measuring():
        _measure(cfg, st, units, budget)
    kl_rep, kl_drift, kl_tiny = (np.array(st[k]) for k in ("representable", "drift", "tiny"))
    if len(kl_rep) < 2:  # not even one generation of the representable student
        C.save_run(out, cfg, dict(stopped=budget.stopped, **st))
        return [budget.undecided(c, details="No generation was completed.") for c in CLAIMS]
    return _decide(cfg, out, budget, kl_rep, kl_drift, kl_tiny, st)


def _decide(cfg, out, budget, kl_rep, kl_drift, kl_tiny, st):
    floor = st["floor"]
    done = len(kl_rep) - 1
    gens = np.arange(done + 1)
    bound_rep = kl_contraction_bound(kl_rep[0], cfg.lam, gens)
    tiny_ok = len(kl_tiny) == cfg.generations + 1 and floor is not None
    bound_tiny = (
        kl_contraction_bound(kl_tiny[0], cfg.lam, np.arange(len(kl_tiny)))
        if len(kl_tiny)
        else np.array([])
    )
    slack = cfg.slack_rel * kl_rep[0] + cfg.slack_abs
    excess = np.array(kl_rep) - bound_rep
    # the generation closest to (or furthest over) the bound, n >= 1 (n = 0 is equality)
    worst = 1 + int(np.argmax((np.array(kl_rep) / bound_rep)[1:])) if done else 0
    with simio.style() as plt:
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
        ax[0].semilogy(gens, kl_rep, "o-", label=f"representable, lam={cfg.lam}")
        ax[0].semilogy(gens, bound_rep, "k--", label="(1-lam)^n KL0")
        ax[0].semilogy(
            np.arange(len(kl_drift)), kl_drift, "s-", label="lam=0, sampled targets (drift)"
        )
        ax[0].set(
            xlabel="generation n",
            ylabel="held-out KL(p0||q_n)",
            title="student that can represent p0",
        )
        ax[0].legend(fontsize=7)
        if len(kl_tiny):
            g_t = np.arange(len(kl_tiny))
            ax[1].semilogy(g_t, kl_tiny, "o-", label=f"tiny, lam={cfg.lam}")
            ax[1].semilogy(g_t, bound_tiny, "k--", label="(1-lam)^n KL0")
        if floor is not None:
            ax[1].axhline(floor, color="r", ls=":", label="floor: tiny trained on p0")
        ax[1].set(xlabel="generation n", ylabel="held-out KL(p0||q_n)", title="student that cannot")
        ax[1].legend(fontsize=7)
        fig_path = simio.save_figure(fig, out / "meta_kl_per_generation")
    fig = fig_path.name
    of = f"{done} of {cfg.generations} generations"
    res = [
        C.verdict(
            C_BOUND,
            float(bound_rep[worst]),
            float(kl_rep[worst]),
            f"<= bound + {slack:.3g}",
            bool(np.all(excess <= slack)),
            details=f"lam={cfg.lam}, {of} x {cfg.steps} steps; worst "
            f"generation (largest KL/bound) n={worst}; KL per generation "
            f"{np.round(kl_rep, 4).tolist()}, bound {np.round(bound_rep, 4).tolist()}.",
            figure=fig,
        )
    ]
    if tiny_ok:
        res.append(
            C.verdict(
                C_TINY,
                f">= floor {floor:.3f} and > bound {bound_tiny[-1]:.3f}",
                float(kl_tiny[-1]),
                "floor within 2%",
                bool(kl_tiny[-1] >= 0.98 * floor and kl_tiny[-1] > bound_tiny[-1]),
                details=f"tiny student h={cfg.tiny[0]}, {cfg.tiny[1]} layer(s); KL per "
                f"generation {np.round(kl_tiny, 3).tolist()}.",
                figure=fig,
            )
        )
    else:
        res.append(
            budget.undecided(
                C_TINY,
                details=f"tiny student: {max(len(kl_tiny) - 1, 0)} of {cfg.generations} "
                f"generations, floor {'measured' if floor is not None else 'not measured'}.",
            )
        )
    if len(kl_drift) >= 2:
        res.append(
            C.verdict(
                C_DRIFT,
                f">= KL0 = {kl_drift[0]:.4f}",
                float(kl_drift[-1]),
                ">= KL0",
                bool(kl_drift[-1] >= kl_drift[0]),
                details=f"{cfg.samples} sampled token(s) per position and generation; "
                f"{len(kl_drift) - 1} of {cfg.generations} generations; KL per generation "
                f"{np.round(kl_drift, 4).tolist()}.",
                figure=fig,
            )
        )
    else:
        res.append(budget.undecided(C_DRIFT, details="No generation of the drift control."))

    def at(a, g):
        return float(a[g]) if g < len(a) else None

    rows = [
        dict(
            generation=int(g),
            kl_representable=at(kl_rep, g),
            bound_representable=at(bound_rep, g),
            kl_drift_lam0=at(kl_drift, g),
            kl_tiny=at(kl_tiny, g),
            bound_tiny=at(bound_tiny, g),
            tiny_floor=floor,
        )
        for g in range(max(len(kl_rep), len(kl_drift), len(kl_tiny)))
    ]
    C.save_run(
        out,
        cfg,
        dict(
            rows=rows,
            seconds=st["seconds"],
            stopped=budget.stopped,
        ),
        rows,
    )
    return res
