r"""PACED on SmolLM2: the cross-problem gradient SNR over pass rate, as the paper states it.

The v3 abstract of PACED (arXiv:2603.11178) says: "the cross-problem gradient signal-to-noise
ratio (SNR) follows a bell curve over student pass rate, collapsing at both extremes", and that
the Beta kernel is "the leading-order optimal weight family arising from the SNR boundary-collapse
structure". This experiment measures that curve on SmolLM2-135M-Instruct.

**Problems.** `graded_sum` (`sdtheory.lm.tasks.GradedSumTask`): chain sums from 2 one-digit terms
to 4 three-digit terms, interleaved, so SmolLM2's pass rates fill [0, 1] (calibration in
docs/lm/validate.md).

**Pass rates.** $K$ student rollouts per problem at the sampling temperature
(`Config.temperature`); $\hat p$ = the verified fraction.

**Per-problem gradients.** Problem $i$'s distillation loss $\ell_i$ is the mean over its $K$
rollouts of the token-mean divergence between the student (the question alone) and the
privileged self-teacher (the same frozen network, prompted with the worked solution: the OPSD
teacher) on the rollout's tokens: forward $\mathrm{KL}(p_T\|q_S)$ and, separately, reverse
$\mathrm{KL}(q_S\|p_T)$. $g_i=\nabla\ell_i$ restricted to a fixed parameter subset: **the last
transformer block's MLP down-projection and the final RMSNorm gain** (885,312 parameters). Only
inner products of the $g_i$ are kept (a Gram matrix row per problem, written as the run goes).

**Checks** (units: problems; bins of $\hat p$ with $K=8$: $\{0\}$, $\{1/8,2/8\}$,
$\{3/8,4/8,5/8\}$, $\{6/8,7/8\}$, $\{1\}$; bands from the stratified bootstrap over problems):

1. the SNR of the $\hat p=0$ bin and of the $\hat p=1$ bin are below half the median SNR of the
   interior bins (the claims' criterion; two one-sided tests per divergence, Bonferroni over the
   four);
2. the implied optimal weights $s/v$ per $\hat p$ value ($s=\|\bar g\|$, $v=\operatorname{tr}
   \mathrm{Cov}\,g$, the common-direction model of `sdtheory.theory.paced`) fitted by
   $c\,p^a(1-p)^b$: $a>0$ and $b>0$;
3. efficiency of $p(1-p)$ on the measured curve $\ge 0.9$, above uniform weights', and the
   fitted kernel's efficiency $\ge 1-\delta^2$.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import torch

from ... import claims, simio
from ...claims.catalog import validate as V
from ...runner import Budget
from ...theory.paced import beta_kernel_weight, fit_beta_kernel, snr_efficiency
from ..rollout import sample, stop_ids
from ..tasks import chat_prompt_ids, make_task
from ..teachers import view_messages
from . import _common as C
from . import _stats as S

NAME = "paced"
TITLE = "1. PACED on SmolLM2: cross-problem gradient SNR against pass rate"
CLAIMS = (
    V.PACED_SNR_MASTERED,
    V.PACED_SNR_UNREACHABLE,
    V.PACED_WEIGHTS_VANISH,
    V.PACED_BETA_DELTA,
    V.PACED_DEFAULT_EFF,
    V.PACED_DEFAULT_VS_UNIFORM,
)
WEIGHT = 2.0  # share of a time budget, relative to the other experiments (docs/lm/gpu.md)
KNOB = "k"  # size knob (docs/lm/gpu.md): rollouts per problem (generation and gradients)
DIVERGENCES = ("forward_kl", "reverse_kl")


@dataclasses.dataclass(frozen=True)
class Config:
    n_problems: int = 60  # the scale's size (SIZES)
    k: int = 8
    temperature: float = 0.3
    max_new_tokens: int = 24
    # calibrated for SmolLM2 at this temperature (docs/lm/validate.md): one-digit sums fill the
    # interior and p = 1, two-digit sums p = 0
    levels: tuple[tuple[int, int, str], ...] = (
        (2, 1, "+"),
        (2, 1, "+-"),
        (3, 1, "+"),
        (3, 1, "+-"),
        (2, 2, "+"),
        (2, 2, "+-"),
    )
    weights: tuple[float, ...] = (4.0, 3.0, 1.0, 1.0, 1.0, 1.0)
    gen_batch: int = 8  # problems per generation batch
    edges: tuple[float, ...] = (0.0, 1 / 16, 5 / 16, 11 / 16, 15 / 16, 1.0)
    efficiency_target: float = 0.9
    seed: int = 0


SIZES = {"cpu": 32, "cpu-long": 64, "gpu": 480}  # graded_sum has 490 at these levels
CONFIGS = {
    "fast": Config(n_problems=4, k=2, max_new_tokens=3, gen_batch=4, edges=(0.0, 0.5, 1.0)),
    **{s: Config(n_problems=n) for s, n in SIZES.items()},
}


@contextlib.contextmanager
def trainable(params):
    """Temporarily enable gradients on `params` only."""
    old = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    try:
        yield
    finally:
        for p, o in zip(params, old, strict=True):
            p.requires_grad_(o)


def subset(model) -> list[torch.nn.Parameter]:
    """The fixed parameter subset: last block's MLP down-projection and the final norm gain."""
    return [model.model.layers[-1].mlp.down_proj.weight, model.model.norm.weight]


def prompt_logits(model, prompt: list[int], completions, mask) -> torch.Tensor:
    """Logits (K, T, V) of K completions after one shared prompt, the prompt encoded once.

    The prompt minus its last token runs once without gradients and its key/value cache is
    repeated K times; the last prompt token and the completions run on top of it. Equal to
    `rollout.completion_logits` with the prompt repeated (tested), at a fraction of the cost.
    Gradients flow to any parameter through the completion positions; the prefix positions
    carry none, which is exact for parameters of the last block and the final norm (nothing
    downstream of them at a prefix position reaches a later position).
    """
    k, t = completions.shape
    dev = completions.device
    head = torch.tensor([prompt[:-1]], device=dev)
    with torch.no_grad():
        out = model(input_ids=head, use_cache=True)
    cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
    cache.batch_repeat_interleave(k)
    last = torch.full((k, 1), prompt[-1], dtype=completions.dtype, device=dev)
    ids = torch.cat([last, completions[:, :-1]], 1)
    attn = torch.cat(
        [torch.ones((k, len(prompt)), dtype=torch.long, device=dev), mask[:, :-1].long()], 1
    )
    pos = (len(prompt) - 1 + torch.arange(t, device=dev)).expand(k, t)
    return model(
        input_ids=ids, attention_mask=attn, position_ids=pos, cache=cache, use_cache=True
    ).logits


def problem_gradients(model, tok, task, problem, completions, mask) -> dict:
    """Losses and flat gradients (on `subset`) of one problem's two divergences.

    `completions`/`mask`: its K rollouts. The loss is the mean over rollouts of the token-mean
    divergence between the student (question only) and the self-teacher (question + solution).
    """
    s_prompt = chat_prompt_ids(tok, task.student_messages(problem))
    t_prompt = chat_prompt_ids(tok, view_messages(task, problem, "solution"))
    with torch.no_grad():
        lp_t = torch.log_softmax(prompt_logits(model, t_prompt, completions, mask).float(), -1)
    params = subset(model)
    with trainable(params):
        lq = torch.log_softmax(prompt_logits(model, s_prompt, completions, mask).float(), -1)
        m = mask.float()
        per_tok = {
            "forward_kl": torch.sum(lp_t.exp() * (lp_t - lq), -1),
            "reverse_kl": torch.sum(lq.exp() * (lq - lp_t), -1),
        }
        out = {}
        for i, name in enumerate(DIVERGENCES):
            loss = ((per_tok[name] * m).sum(1) / m.sum(1).clamp(min=1)).mean()
            grads = torch.autograd.grad(loss, params, retain_graph=i == 0)
            out[name] = (
                float(loss.detach()),
                torch.cat([g.reshape(-1) for g in grads]).double().cpu().numpy(),
            )
    return out


def measure(cfg: Config, out: Path, budget: Budget | None = None) -> Path:
    """Rollouts, pass rates and gradient Gram rows, one line per problem in `units.jsonl`."""
    budget = budget or Budget()
    model, tok = C.smollm2()
    task = make_task("graded_sum", levels=cfg.levels, weights=cfg.weights)
    problems = task.problems(cfg.n_problems, seed=cfg.seed)
    units = C.Units(out / "units.jsonl")
    stops, pad = stop_ids(tok), tok.pad_token_id
    grads = {d: [] for d in DIVERGENCES}
    n_params = sum(p.numel() for p in subset(model))
    C.log(NAME, f"{len(problems)} problems x {cfg.k} rollouts; gradient subset {n_params} params")
    t0 = time.perf_counter()
    for b in range(0, len(problems), cfg.gen_batch):
        budget.check("generation batch", tokens=cfg.gen_batch * cfg.k * cfg.max_new_tokens)
        batch = problems[b : b + cfg.gen_batch]
        prompts = [chat_prompt_ids(tok, task.student_messages(p)) for p in batch]
        with torch.no_grad():
            ro = sample(
                model,
                prompts,
                max_new_tokens=cfg.max_new_tokens,
                stop_token_ids=stops,
                pad_id=pad,
                temperature=cfg.temperature,
                seed=cfg.seed,
                row_seeds=[(b + j) * cfg.k + r for j in range(len(batch)) for r in range(cfg.k)],
                k=cfg.k,
            )
        texts = ro.texts(tok)
        for j, p in enumerate(batch):
            rows = slice(j * cfg.k, (j + 1) * cfg.k)
            rewards = [task.verify(t, p) for t in texts[rows]]
            res = problem_gradients(
                model, tok, task, p, ro.completions[rows], ro.completion_mask[rows]
            )
            row = dict(
                index=b + j,
                level=p.meta["level"],
                question=p.question,
                answer=p.answer,
                pass_rate=float(np.mean(rewards)),
                k=cfg.k,
                mean_tokens=float(ro.completion_mask[rows].sum(1).float().mean()),
                example=texts[rows][0],
            )
            for d in DIVERGENCES:
                loss, g = res[d]
                grads[d].append(g)
                row[f"loss_{d}"] = loss
                row[f"gram_{d}"] = [float(g @ h) for h in grads[d]]  # <g_i, g_j>, j <= i
            units.write(**row)
        C.log(
            NAME,
            f"{min(b + cfg.gen_batch, len(problems))}/{len(problems)} problems "
            f"({time.perf_counter() - t0:.0f}s)",
        )
    return units.path


def _gram(rows: list[dict], key: str) -> np.ndarray:
    n = len(rows)
    g = np.zeros((n, n))
    for i, r in enumerate(rows):
        g[i, : i + 1] = r[key]
        g[: i + 1, i] = r[key]
    return g


def _group_sv(f: np.ndarray) -> tuple[float, float]:
    s2, v = S.signal_noise(f)
    return math.sqrt(max(s2, 0.0)), v


def analyse(rows: list[dict], cfg: Config) -> dict:
    """Bins, groups and fits from the recorded units (no model needed)."""
    p = np.array([r["pass_rate"] for r in rows])
    edges = np.array(cfg.edges)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    values = np.unique(np.round(p * cfg.k).astype(int))
    res = {"pass_rate": p, "bin": which, "divergences": {}}
    for d in DIVERGENCES:
        f = S.gram_factor(_gram(rows, f"gram_{d}"))
        curve = claims.binned(p, f, edges, statistic=S.snr)
        groups = []
        for v in values:
            sel = np.round(p * cfg.k).astype(int) == v
            s, noise = _group_sv(f[sel]) if sel.sum() >= 2 else (math.nan, math.nan)
            groups.append(dict(p=v / cfg.k, n=int(sel.sum()), signal=s, noise=noise))
        res["divergences"][d] = dict(factor=f, curve=curve, groups=groups)
    return res


def _efficiencies(strata, ps) -> tuple[float, float]:
    """Debiased SNR efficiency of p(1-p) and of uniform weights on the measured strata.

    `weighted_snr(w) / optimal_snr` (`_stats`): the SNR of the actual weighted gradient sum over
    the common-direction optimum; conservative when the strata's means are not parallel.
    """
    best = S.optimal_snr(strata)
    if not (math.isfinite(best) and best > 0):
        return math.nan, math.nan
    pq = beta_kernel_weight(np.asarray(ps), 1.0, 1.0)
    return S.weighted_snr(strata, pq) / best, S.weighted_snr(strata, np.ones(len(ps))) / best


def _fitted_efficiency(strata, ps, fit) -> float:
    """Plug-in efficiency (`theory.paced.snr_efficiency`) of the fitted kernel against s/v."""
    sv = np.array([_group_sv(f) for f in strata])
    n = np.array([f.shape[0] for f in strata])
    s, v = np.repeat(sv[:, 0], n), np.repeat(sv[:, 1], n)
    if not (np.all(np.isfinite(v)) and np.all(v > 0) and np.any(s > 0)):
        return math.nan
    return snr_efficiency(fit(np.repeat(np.asarray(ps), n)), s, v)


def _ratio2(st: np.ndarray) -> float:
    """(s/v)^2 of a group with the debiased s^2 (no square root of a noisy signal)."""
    s2, v = S.signal_noise(st)
    return s2 / (v * v) if v > 0 else math.nan


def _beta_fit(strata, ps):
    """Least-squares Beta fit to s/v over the groups with positive signal (None if < 3)."""
    ok = _fit_mask(strata)
    if ok.sum() < 3:
        return None
    sv = np.array([_group_sv(f) for f in strata])
    try:
        return fit_beta_kernel(np.asarray(ps)[ok], sv[ok, 0] / sv[ok, 1], method="lsq")
    except ValueError:
        return None


def _fit_mask(strata) -> np.ndarray:
    sv = np.array([_group_sv(f) for f in strata]).reshape(-1, 2)
    return np.isfinite(sv).all(1) & (sv[:, 0] > 0) & (sv[:, 1] > 0)


def _needs(c_claim, what: str, n: int, details: str) -> claims.CheckResult:
    return claims.needs_scale(c_claim, "cpu-long", predicted=what, scale="lm", n=n, details=details)


def _ends(d, f, an, cfg, header) -> tuple[list, dict]:
    """Checks 1: SNR of the p = 0 and p = 1 bins below half the median interior bin's.

    The claims' own criterion (`sdtheory.claims.catalog.paced`): 0.5 * median(SNR of the interior
    bins) - SNR(end bin) > 0, on a stratified bootstrap band over problems; the interior bins are
    those with the rule's minimum count.
    """
    nb = len(cfg.edges) - 1
    curve = an["divergences"][d]["curve"]
    curve_txt = "; ".join(
        f"[{c.left:.3g},{c.right:.3g}]: n={c.n}, SNR={c.estimate:.3g}"
        + (f" [{c.lo:.3g}, {c.hi:.3g}]" if c.enough else "")
        for c in curve
    )
    res, info = [], {"curve": [c.to_json() for c in curve]}
    # the interior bins with the rule's minimum count (all of them if none has it: the band
    # then reports too few units)
    interior = [b for b in range(1, nb - 1) if (an["bin"] == b).sum() >= claims.RULE.min_bin]
    interior = interior or list(range(1, nb - 1)) or [nb // 2]
    for c_claim, end in ((V.PACED_SNR_UNREACHABLE, 0), (V.PACED_SNR_MASTERED, nb - 1)):
        strata = [f[an["bin"] == b] for b in interior] + [f[an["bin"] == end]]
        band = S.stratified_band(
            strata,
            lambda st: 0.5 * float(np.median([S.snr(x) for x in st[:-1]])) - S.snr(st[-1]),
            level=claims.bonferroni(2 * len(DIVERGENCES)),
            seed=cfg.seed + 11 * end,
        )
        band = dataclasses.replace(band, n=min(s.shape[0] for s in strata))
        res.append(
            claims.check_band(
                c_claim,
                band,
                side=">",
                null=0.0,
                minimum=claims.RULE.min_bin,
                details=f"{d}: half the median SNR of the interior bins {interior} minus the SNR "
                f"of bin {end}; n = the smallest bin's count; family of {2 * len(DIVERGENCES)} "
                f"tests (Bonferroni). {header}. Curve: {curve_txt}.",
                figure=FIGURE,
            )
        )
        info[f"end_{end}"] = dict(estimate=band.estimate, lo=band.lo, hi=band.hi)
    return res, info


def _weights(d, f, an, cfg, header) -> tuple[list, dict]:
    """Checks 2 and 3: implied weights s/v toward the ends; efficiencies on the measured curve."""
    p, rule, nb = an["pass_rate"], claims.RULE, len(cfg.edges) - 1
    level = claims.bonferroni(2 * len(DIVERGENCES))
    res = []
    ratios = [
        _ratio2(f[an["bin"] == b]) if (an["bin"] == b).sum() >= 2 else math.nan for b in range(nb)
    ]
    for end in (0, nb - 1):
        strata = [f[an["bin"] == nb // 2], f[an["bin"] == end]]
        band = S.stratified_band(
            strata, lambda st: _ratio2(st[0]) - _ratio2(st[1]), level=level, seed=cfg.seed + 3 + end
        )
        res.append(
            claims.check_band(
                V.PACED_WEIGHTS_VANISH,
                dataclasses.replace(band, n=min(s.shape[0] for s in strata)),
                side=">",
                null=0.0,
                minimum=rule.min_bin,
                details=f"{d}: (s/v)^2(middle bin) - (s/v)^2(bin {end}), s^2 debiased; (s/v)^2 per bin "
                f"{[float(f'{r:.3g}') for r in ratios]}; family of {2 * len(DIVERGENCES)} "
                f"(Bonferroni). {header}.",
                figure=FIGURE,
            )
        )
    groups = an["divergences"][d]["groups"]
    values = np.array([g["p"] for g in groups if g["n"] >= rule.min_bin])
    strata = [f[np.isclose(p, v)] for v in values]
    inner = [i for i, v in enumerate(values) if 0 < v < 1]
    istrata, ivals = [strata[i] for i in inner], values[inner]
    fit = _beta_fit(istrata, ivals)
    info = {"groups": groups, "weight_per_bin": ratios}
    where = f"pass-rate values with >= {rule.min_bin} problems: {[round(v, 3) for v in values]}"
    fit_txt = "no Beta fit (fewer than 3 interior values with positive signal)"
    if fit is not None:
        bands = {
            w: S.stratified_band(
                istrata,
                lambda st, w=w: getattr(_beta_fit(st, ivals) or _NAN_FIT, w),
                seed=cfg.seed + len(w),
            )
            for w in ("alpha", "beta")
        }
        info["beta_fit"] = dict(
            alpha=fit.alpha,
            beta=fit.beta,
            delta=fit.delta,
            alpha_band=[bands["alpha"].lo, bands["alpha"].hi],
            beta_band=[bands["beta"].lo, bands["beta"].hi],
        )
        fit_txt = (
            f"Beta fit to s/v over the interior values: a={fit.alpha:.3g} "
            f"[{bands['alpha'].lo:.3g}, {bands['alpha'].hi:.3g}], b={fit.beta:.3g} "
            f"[{bands['beta'].lo:.3g}, {bands['beta'].hi:.3g}], delta={fit.delta:.3g}"
        )
    eff = _efficiencies(strata, values) if len(values) else (math.nan, math.nan)
    info["efficiency"] = dict(default=eff[0], uniform=eff[1])
    if len(values) < 2:
        for c_claim in (V.PACED_DEFAULT_EFF, V.PACED_DEFAULT_VS_UNIFORM, V.PACED_BETA_DELTA):
            res.append(_needs(c_claim, "on the measured curve", len(values), f"{d}: {where}."))
        return res, info
    n_min = min(s.shape[0] for s in strata)
    b_def = S.stratified_band(
        strata, lambda st: _efficiencies(st, values)[0], level=level, seed=cfg.seed + 5
    )
    res.append(
        claims.check_band(
            V.PACED_DEFAULT_EFF,
            dataclasses.replace(b_def, n=n_min),
            side=">",
            null=cfg.efficiency_target,
            minimum=rule.min_bin,
            details=f"{d}: SNR efficiency of p(1-p) against the optimal s/v on the measured "
            f"(s, v) of every {where}; uniform weights reach {eff[1]:.3g}. {fit_txt}.",
            figure=FIGURE,
        )
    )

    def gain(st):
        e = _efficiencies(st, values)
        return e[0] - e[1]

    b_diff = S.stratified_band(strata, gain, level=level, seed=cfg.seed + 6)
    res.append(
        claims.check_band(
            V.PACED_DEFAULT_VS_UNIFORM,
            dataclasses.replace(b_diff, n=n_min),
            side=">",
            null=0.0,
            minimum=rule.min_bin,
            details=f"{d}: efficiency(p(1-p)) - efficiency(uniform) = {eff[0]:.3g} - {eff[1]:.3g}.",
            figure=FIGURE,
        )
    )
    if fit is not None:
        ok = _fit_mask(istrata)
        fitted = _fitted_efficiency(
            [st for st, o in zip(istrata, ok, strict=True) if o], ivals[ok], fit
        )
        info["efficiency"]["fitted_interior"] = fitted
        res.append(
            claims.check_bound(
                V.PACED_BETA_DELTA,
                1.0 - fit.delta**2,
                fitted,
                direction=">=",
                details=f"{d}: efficiency of the fitted kernel against the optimal s/v on the "
                f"interior values {[round(v, 3) for v in ivals]} (where delta={fit.delta:.3g} "
                f"is measured), against 1 - delta^2. {fit_txt}.",
                figure=FIGURE,
            )
        )
    else:  # never silently dropped: too few interior values to fit a Beta kernel
        res.append(
            _needs(
                V.PACED_BETA_DELTA,
                ">= 1 - delta^2",
                len(ivals),
                f"{d}: no Beta fit on the interior values {[round(v, 3) for v in ivals]}.",
            )
        )
    return res, info


_NAN_FIT = dataclasses.make_dataclass("NanFit", [("alpha", float), ("beta", float)])(
    math.nan, math.nan
)
FIGURE = "paced_snr.png"


def decide(rows: list[dict], cfg: Config, out: Path) -> list[claims.CheckResult]:
    """Every PACED verdict from the recorded units (bands: stratified bootstrap over problems)."""
    an = analyse(rows, cfg)
    nb = len(cfg.edges) - 1
    counts = [int((an["bin"] == b).sum()) for b in range(nb)]
    header = (
        f"{len(rows)} problems x K={cfg.k} at temperature {cfg.temperature}; problems per bin "
        f"{counts} (edges {[round(e, 4) for e in cfg.edges]})"
    )
    res, summary = [], {"counts": counts, "divergences": {}}
    for d in DIVERGENCES:
        f = an["divergences"][d]["factor"]
        r1, i1 = _ends(d, f, an, cfg, header)
        r2, i2 = _weights(d, f, an, cfg, header)
        res += r1 + r2
        summary["divergences"][d] = {**i1, **i2}
    plot(an, summary, cfg, out / FIGURE)
    C.save_run(out, cfg, _jsonable(summary))
    return res


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    return x


def plot(an: dict, summary: dict, cfg: Config, path: Path) -> Path:
    with simio.style() as plt:
        fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
        for i, d in enumerate(DIVERGENCES):
            curve = an["divergences"][d]["curve"]
            x = np.array([0.5 * (c.left + c.right) for c in curve]) + (i - 0.5) * 0.01
            est = np.array([c.estimate for c in curve])
            ok = np.array([c.enough for c in curve])
            lo = np.array([c.lo if c.enough else np.nan for c in curve])
            hi = np.array([c.hi if c.enough else np.nan for c in curve])
            ax[0].plot(x[ok], est[ok], "o-", color=f"C{i}", label=d)
            ax[0].vlines(x[ok], lo[ok], hi[ok], color=f"C{i}")
            ax[0].plot(x[~ok], est[~ok], "x", color=f"C{i}")
            g = [gg for gg in an["divergences"][d]["groups"] if gg["n"] >= 2 and gg["noise"] > 0]
            pv = np.array([gg["p"] for gg in g])
            w = np.array([gg["signal"] / gg["noise"] for gg in g])
            if w.size and w.max() > 0:
                ax[1].plot(pv, w / w.max(), "o", color=f"C{i}", label=f"s/v, {d}")
            fit = summary["divergences"][d].get("beta_fit")
            if fit:
                pp = np.linspace(0.02, 0.98, 60)
                kern = pp ** fit["alpha"] * (1 - pp) ** fit["beta"]
                inside = (pv > 0) & (pv < 1)
                ref = w[inside].max() if inside.any() else 1.0
                scale = ref / w.max() if w.max() > 0 else 1.0
                ax[1].plot(pp, scale * kern / kern.max(), "--", color=f"C{i}")
            e = summary["divergences"][d]["efficiency"]
            ax[2].bar(
                np.arange(3) + 0.35 * i,
                [e["default"] or 0, e["uniform"] or 0, e.get("fitted_interior") or 0],
                width=0.35,
                label=d,
            )
        ax[0].axhline(0, color="k", lw=0.6)
        ax[0].set(
            xlabel="pass rate bin (K rollouts)",
            ylabel="cross-problem SNR (debiased)",
            title="SNR per bin, 95% stratified bootstrap",
        )
        ax[0].legend(fontsize=7)
        pp = np.linspace(0, 1, 60)
        ax[1].plot(pp, 4 * pp * (1 - pp), "k:", label="p(1-p) (scaled)")
        ax[1].set(xlabel="pass rate", ylabel="implied weight s/v (scaled)", title="optimal weights")
        ax[1].legend(fontsize=7)
        ax[2].set_xticks(np.arange(3) + 0.17, ["p(1-p)", "uniform", "Beta fit (interior)"])
        ax[2].axhline(cfg.efficiency_target, color="k", ls=":", lw=0.8)
        ax[2].set(ylabel="SNR efficiency", title="efficiency on the measured curve", ylim=(0, 1.05))
        ax[2].legend(fontsize=7)
        return simio.save_figure(fig, path.with_suffix(""))


def run(cfg: Config, out: Path, budget: Budget | None = None) -> list[claims.CheckResult]:
    """Measure (units written as they finish; a budget stops between units), then decide from
    what was measured: a claim the units cannot decide is reported as needing a larger scale."""
    return C.measure_then_decide(cfg, out, budget or Budget(), measure, decide, CLAIMS)
