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
  it cannot follow the bound to 0.
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
from ...claims.catalog import validate as V
from ...runner import Budget
from ...theory.meta import kl_contraction_bound
from . import _common as C
from . import _distill as D

NAME = "meta"
TITLE = "5. Recursive meta-distillation anchored at SmolLM2"
CLAIMS = (V.META_CONTRACTION, V.META_FLOOR, V.META_DRIFT)
WEIGHT = 0.5  # share of a time budget, relative to the other experiments (docs/lm/gpu.md)
KNOB = "steps"  # size knob (docs/lm/gpu.md): optimiser steps per generation


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: int = 2  # the scale's size (SIZES): perturbation, batches, tiny init, samples
    n_train: int = 24
    n_test: int = 8
    max_tokens: int = 48
    lam: float = 0.3
    generations: int = 4
    steps: int = 10  # optimiser steps per generation
    batch: int = 4  # sequences per step
    lr_norm: float = 0.05  # Adam on the log-gain of the final norm
    lr_tiny: float = 3e-3
    perturb: float = 0.3  # sigma of the log-gain perturbation of q_0
    tiny: tuple[int, int] = (32, 1)
    samples: int = 1  # sampled target tokens per position for the drift control
    data_seed: int = 1


SIZES = {"cpu": 2, "cpu-long": 3, "gpu": 8}
CONFIGS = {
    "fast": Config(n_train=4, n_test=2, max_tokens=16, generations=2, steps=2, batch=2),
    **{s: Config(seeds=n) for s, n in SIZES.items()},
}
CONFIGS["gpu"] = dataclasses.replace(
    CONFIGS["gpu"], n_train=128, n_test=32, max_tokens=128, generations=8, steps=60, batch=16
)


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


def _generations_norm(cfg, seed, lam, u, m, lp, u_te, m_te, lp_te, g0, weight, sampled: bool):
    """Generations of the norm-gain student; returns held-out KL per generation (0..N)."""
    dev = C.device()
    gen = torch.Generator().manual_seed(1_000 * seed + 17)
    rng = np.random.default_rng(1_000 * seed)
    student = NormStudent(g0, weight).to(dev)
    kls = [_kl_held_out(student, u_te, m_te, lp_te)]
    for _ in range(cfg.generations):
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


def _tiny_model(cfg, tok, seed):
    from ..models import small_model

    h, layers = cfg.tiny
    return small_model(
        tok, seed=seed, hidden_size=h, num_layers=layers, num_heads=2, num_kv_heads=1
    ).to(C.device())


def _tiny_train(cfg, tok, seed, lam, ids, mask, lp, ids_te, mask_te, lp_te, generations, steps):
    dev = C.device()
    rng = np.random.default_rng(1_000 * seed + 1)
    student = _tiny_model(cfg, tok, seed)
    kls = [D.evaluate(student, ids_te, mask_te, lp_te)["kl_pq"]]
    for _ in range(generations):
        prev = _tiny_model(cfg, tok, seed)
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


def measure(cfg: Config, out: Path, budget: Budget | None = None) -> Path:
    budget = budget or Budget()
    model, tok = C.smollm2()
    texts = C.real_texts(cfg.n_train + cfg.n_test, seed=cfg.data_seed, task="champ")
    ids_all, mask_all = C.encode_batch(tok, texts, cfg.max_tokens)
    budget.check("teacher passes")
    with C.Timer() as tp:
        lp_all = D.teacher_log_probs(model, ids_all, mask_all, dtype=torch.float16)
        u_all = normalised_hidden(model, ids_all, mask_all)
    C.log(NAME, f"p0 and hidden states {tuple(u_all.shape)} in {tp.seconds:.1f}s")
    n = cfg.n_train
    dev = C.device()
    u, u_te = u_all[:n].to(dev), u_all[n:].to(dev)
    m, m_te = mask_all[:n].to(dev), mask_all[n:].to(dev)
    lp, lp_te = lp_all[:n], lp_all[n:].to(dev)
    g_star = model.model.norm.weight.detach().float()
    weight = model.lm_head.weight.detach().float().to(dev)
    ids, mask, ids_te, mask_te = ids_all[:n], mask_all[:n], ids_all[n:], mask_all[n:]
    units = C.Units(out / "units.jsonl")
    for seed in range(cfg.seeds):
        eps = torch.randn(g_star.shape, generator=torch.Generator().manual_seed(seed))
        g0 = (g_star * torch.exp(cfg.perturb * eps)).to(dev)
        budget.check("seed")
        with C.Timer() as t1:
            rep = _generations_norm(
                cfg, seed, cfg.lam, u, m, lp, u_te, m_te, lp_te, g0, weight, False
            )
            drift = _generations_norm(cfg, seed, 0.0, u, m, lp, u_te, m_te, lp_te, g0, weight, True)
            tiny = _tiny_train(
                cfg,
                tok,
                seed,
                cfg.lam,
                ids,
                mask,
                lp,
                ids_te,
                mask_te,
                lp_te,
                cfg.generations,
                cfg.steps,
            )
        units.write(seed=seed, representable=rep, drift=drift, tiny=tiny, seconds=t1.seconds)
        C.log(
            NAME,
            f"seed {seed}: representable {np.round(rep, 4).tolist()}, lam=0 drift "
            f"{np.round(drift, 4).tolist()}, tiny {np.round(tiny, 3).tolist()} ({t1.seconds:.0f}s)",
        )
    return units.path


def decide(rows: list[dict], cfg: Config, out: Path) -> list[claims.CheckResult]:
    gens = np.arange(cfg.generations + 1)
    fig = "meta_kl_per_generation.png"
    ratio, over, drift = [], [], []
    for r in rows:
        rep, tiny, dr = np.array(r["representable"]), np.array(r["tiny"]), np.array(r["drift"])
        bound = kl_contraction_bound(rep[0], cfg.lam, gens)
        ratio.append(float(np.max(rep[1:] / bound[1:])))  # n >= 1 (n = 0 is equality)
        over.append(float(tiny[-1] - kl_contraction_bound(tiny[0], cfg.lam, gens)[-1]))
        drift.append(float(dr[-1] - dr[0]))
    setting = (
        f"lam={cfg.lam}, {cfg.generations} generations x {cfg.steps} Adam steps on {cfg.n_train} "
        f"champ texts ({cfg.max_tokens} tokens), {cfg.n_test} held out; one value per seed"
    )
    res = [
        claims.check_mean(
            V.META_CONTRACTION,
            ratio,
            side="<",
            null=1.0,
            details=f"representable student (SmolLM2 with a trainable final-norm gain, started "
            f"at a perturbed gain): largest KL(p0||q_n) / ((1-lam)^n KL0) over n = 1..N per seed "
            f"{np.round(ratio, 3).tolist()}. {setting}.",
            figure=fig,
        ),
        claims.check_mean(
            V.META_FLOOR,
            over,
            side=">",
            null=0.0,
            details=f"tiny student (hidden {cfg.tiny[0]}, {cfg.tiny[1]} layer): KL(p0||q_N) minus "
            f"the bound (1-lam)^N KL0 per seed {np.round(over, 3).tolist()}. {setting}.",
            figure=fig,
        ),
        claims.check_mean(
            V.META_DRIFT,
            drift,
            side=">",
            null=0.0,
            details=f"lam=0, {cfg.samples} sampled token(s) per position and generation: "
            f"KL(p0||q_N) - KL(p0||q_0) per seed {np.round(drift, 4).tolist()}. {setting}.",
            figure=fig,
        ),
    ]
    with simio.style() as plt:
        f, ax = plt.subplots(1, 2, figsize=(9, 3.4))
        for i, r in enumerate(rows):
            rep = np.array(r["representable"])
            lab = i == 0
            ax[0].semilogy(gens, rep, "o-", color="C0", label="representable" if lab else None)
            ax[0].semilogy(
                gens,
                kl_contraction_bound(rep[0], cfg.lam, gens),
                "k--",
                lw=0.8,
                label="(1-lam)^n KL0" if lab else None,
            )
            ax[0].semilogy(
                gens, r["drift"], "s-", color="C1", label="lam=0, sampled" if lab else None
            )
            tiny = np.array(r["tiny"])
            ax[1].semilogy(gens, tiny, "o-", color="C2", label="tiny" if lab else None)
            ax[1].semilogy(
                gens,
                kl_contraction_bound(tiny[0], cfg.lam, gens),
                "k--",
                lw=0.8,
                label="(1-lam)^n KL0" if lab else None,
            )
        ax[0].set(
            xlabel="generation n",
            ylabel="held-out KL(p0||q_n)",
            title="student that can represent p0",
        )
        ax[1].set(xlabel="generation n", ylabel="held-out KL(p0||q_n)", title="student that cannot")
        ax[0].legend(fontsize=7)
        ax[1].legend(fontsize=7)
        simio.save_figure(f, out / fig.removesuffix(".png"))
    C.save_run(out, cfg, dict(rows=rows, ratio=ratio, tiny_over_bound=over, drift=drift))
    return res


def run(cfg: Config, out: Path, budget: Budget | None = None) -> list[claims.CheckResult]:
    """Measure (units written as they finish; a budget stops between units), then decide from
    what was measured: a claim the units cannot decide is reported as needing a larger scale."""
    return C.measure_then_decide(cfg, out, budget or Budget(), measure, decide, CLAIMS)
