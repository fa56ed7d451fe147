r"""Experiment 1: kernel self-distillation on frozen SmolLM2 features of real text.

Features $\phi(x)\in\mathbb R^{576}$ are SmolLM2-135M-Instruct's final hidden states, mean-pooled
over the tokens of a reasoning-gym `chain_sum` question (centred and scaled); the regression
target is the question's answer (standardised). The linear kernel is
$\mathbf K=\Phi\Phi^\top$. Each self-distillation round trains a linear head $w$ by full-batch
gradient descent (heavy-ball momentum) with weight decay $\lambda$ on
$\tfrac12\|\Phi w-t_\tau\|^2$, i.e. the gradient $\Phi^\top(\Phi w-t_\tau)+\lambda w$, with
$t_1=y$ and $t_\tau=\alpha y+(1-\alpha)\hat y^{(\tau-1)}$ (the previous round's training
predictions). Its fixed point is ridge with penalty $\lambda$, so the rounds are the recursion of
`sdtheory.theory.krr.KernelSelfDistillation`: we compare the trained heads' predictions, round by
round and at a late round, with the closed form (training and held-out points), and the best
constant $\alpha$ for held-out error at round 2 (a grid of trained runs) with `optimal_alpha`.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch

from ... import claims, simio
from ...runner import Budget
from ...theory.krr import KernelSelfDistillation
from . import _common as C

NAME = "krr"
TITLE = "1. Kernel self-distillation on SmolLM2 features"

C_ROUNDS = claims.claim(
    "validate.krr.rounds-match-closed-form",
    "A linear head on frozen SmolLM2 features, trained by gradient descent with weight decay "
    "lam on alpha*y + (1-alpha)*(previous round), gives per-round predictions equal to the "
    "closed-form ridge recursion b_tau = a(alpha + (1-alpha) b_{tau-1}).",
    ("paper", "Borup & Andersen 2021, Sec. 3; recursion of the official notebook (cb20d6c)"),
    "sdtheory.theory.krr.KernelSelfDistillation.predict_path",
    paper="borup2021",
)
C_LIMIT = claims.claim(
    "validate.krr.limit-amplified-ridge",
    "After many rounds at constant alpha the trained head's predictions equal ridge with "
    "penalty lam/alpha (the closed-form limit).",
    ("derived", "docs/theory/krr.md (limit b_inf = d/(d + lam/alpha))"),
    "sdtheory.theory.krr.KernelSelfDistillation.predict",
)
C_ALPHA = claims.claim(
    "validate.krr.best-alpha",
    "The alpha_2 whose trained round-2 head has the lowest held-out squared error equals "
    "optimal_alpha (the closed-form minimiser of the held-out error), to the grid spacing.",
    ("derived", "docs/theory/krr.md (optimal_alpha: predictions affine in alpha_tau)"),
    "sdtheory.theory.krr.KernelSelfDistillation.optimal_alpha",
)


@dataclasses.dataclass(frozen=True)
class Config:
    n_train: int = 256
    n_test: int = 128
    max_tokens: int = 48
    lam_rel: float = 0.01  # lam = lam_rel * largest kernel eigenvalue
    alphas: tuple[float, ...] = (0.0, 0.3)  # per-round check
    rounds: int = 6
    limit_alpha: float = 0.5
    limit_rounds: int = 25
    alpha_grid: int = 61
    alpha_min: float = 0.0
    alpha_max: float = 2.0
    alpha_margin: float = 1.0
    gd_tol: float = 1e-9  # stop when ||grad|| <= gd_tol * ||Phi^T y||
    gd_max_iter: int = 20000
    rtol: float = 1e-4  # stated tolerance: relative max-abs error of predictions
    seed: int = 0
    batch: int = 32


CLAIMS = (C_ROUNDS, C_LIMIT, C_ALPHA)
WEIGHT = 1.0  # share of a time budget, relative to the other experiments (docs/lm/gpu.md)
KNOB = "alpha_grid"  # size knob (docs/lm/gpu.md): alpha-grid head fits, most of the fits

CONFIGS = {
    "fast": Config(n_train=40, n_test=24, rounds=3, limit_rounds=18, alpha_grid=31, max_tokens=32),
    "cpu": Config(),
    "gpu": Config(n_train=1024, n_test=512, rounds=8, limit_rounds=30, alpha_grid=61),
}


@torch.no_grad()
def features(texts: list[str], max_tokens: int, batch: int, budget: Budget | None = None):
    """Mean-pooled final hidden states of SmolLM2 (float64 numpy, one row per text)."""
    model, tok = C.smollm2()
    budget = budget or Budget()
    rows = []
    for i in range(0, len(texts), batch):
        budget.check("feature batch", tokens=batch * max_tokens)
        ids, mask = C.encode_batch(tok, texts[i : i + batch], max_tokens)
        ids, mask = ids.to(C.device()), mask.to(C.device())
        with C.autocast():
            h = model.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        m = mask.unsqueeze(-1).to(h.dtype)
        rows.append(((h * m).sum(1) / m.sum(1)).double().cpu().numpy())
    return np.concatenate(rows)


def train_head(phi: np.ndarray, target: np.ndarray, lam: float, w0: np.ndarray, cfg: Config):
    r"""Gradient descent (heavy ball) with weight decay on 0.5||phi w - t||^2; returns (w, iters).

    The update is $w \leftarrow w - \eta(\Phi^\top(\Phi w - t) + \lambda w) + \mu(w - w_{prev})$
    with the optimal heavy-ball constants for the spectrum $[\lambda, s_{max}^2 + \lambda]$; the
    fixed point is the ridge solution whatever they are. Stops when the full gradient's norm is
    below `cfg.gd_tol` times $\|\Phi^\top t\|$.
    """
    L = float(np.linalg.norm(phi, ord=2)) ** 2 + lam
    mu = lam
    lr = 4.0 / (math.sqrt(L) + math.sqrt(mu)) ** 2
    mom = ((math.sqrt(L) - math.sqrt(mu)) / (math.sqrt(L) + math.sqrt(mu))) ** 2
    w, w_prev = w0.copy(), w0.copy()
    scale = float(np.linalg.norm(phi.T @ target)) + 1e-300
    it = 0
    while it < cfg.gd_max_iter:
        it += 1
        grad = phi.T @ (phi @ w - target) + lam * w
        if float(np.linalg.norm(grad)) <= cfg.gd_tol * scale:
            break
        w, w_prev = w - lr * grad + mom * (w - w_prev), w
    return w, it


def rounds_by_gd(phi, phi_te, y, lam, alpha, n_rounds, cfg, on_round=None, budget=None):
    """Train up to `n_rounds` heads (fewer if `budget` stops them); returns train and test
    predictions (rounds x n) and GD iterations. `on_round(r, train, test, iters)` is called
    after each round."""
    budget = budget or Budget()
    w = np.zeros(phi.shape[1])
    prev, tr, te, iters = None, [], [], []
    for tau in range(1, n_rounds + 1):
        budget.check("round")
        t = y if tau == 1 else alpha * y + (1 - alpha) * prev
        w, it = train_head(phi, t, lam, w, cfg)
        prev = phi @ w
        tr.append(prev.copy())
        te.append(phi_te @ w)
        iters.append(it)
        if on_round is not None:
            on_round(tau, tr[-1], te[-1], it)
    return np.array(tr), np.array(te), iters


def _rel(a, b) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


class _State:
    """What the measuring block has finished (a budget may stop it anywhere)."""

    def __init__(self):
        self.x = None  # features
        self.prep = None  # _prepare's result: the kernel, targets and lambda
        self.paths: dict[float, tuple] = {}  # alpha -> (train, test, iters), complete rounds
        self.limit = None  # (train, test) of the limit run, all rounds
        self.limit_done = 0
        self.grid_mse: list[float] = []
        self.feature_seconds = float("nan")


def _measure(cfg, st: _State, units, budget, texts, answers):
    """Features, the per-round paths, the limit run and the alpha grid, in that order."""
    with C.Timer() as tf:
        st.x = features(texts, cfg.max_tokens, cfg.batch, budget)
    st.feature_seconds = tf.seconds
    C.log(NAME, f"features {st.x.shape} in {tf.seconds:.1f}s")
    st.prep = _prepare(cfg, st.x, answers)
    phi, phi_te, y, y_te, lam, sd_, K_te = st.prep
    for alpha in cfg.alphas:
        tr, te, its = [], [], []

        def keep(tau, a, b, it, alpha=alpha, tr=tr, te=te, its=its):
            tr.append(a)
            te.append(b)
            its.append(it)
            units.write(kind="round", alpha=alpha, round=tau, gd_iters=it)

        st.paths[alpha] = (tr, te, its)
        rounds_by_gd(phi, phi_te, y, lam, alpha, cfg.rounds, cfg, keep, budget)
    tr_l, te_l = [], []

    def keep_limit(tau, a, b, it):
        tr_l.append(a)
        te_l.append(b)
        st.limit_done = tau
        units.write(kind="limit round", alpha=cfg.limit_alpha, round=tau, gd_iters=it)

    st.limit = (tr_l, te_l)
    rounds_by_gd(phi, phi_te, y, lam, cfg.limit_alpha, cfg.limit_rounds, cfg, keep_limit, budget)
    a_star = float(sd_.optimal_alpha(y_te, 2, kernel_eval=K_te)[0])
    lo = min(cfg.alpha_min, a_star - cfg.alpha_margin)
    hi = max(cfg.alpha_max, a_star + cfg.alpha_margin)
    st.grid, st.a_star = np.linspace(lo, hi, cfg.alpha_grid), a_star
    w1, _ = train_head(phi, y, lam, np.zeros(phi.shape[1]), cfg)
    prev = phi @ w1
    for a in st.grid:
        budget.check("grid point")
        w2, _ = train_head(phi, a * y + (1 - a) * prev, lam, w1, cfg)
        st.grid_mse.append(float(np.mean((phi_te @ w2 - y_te) ** 2)))
        units.write(kind="alpha grid", alpha=float(a), test_mse=st.grid_mse[-1])


def _prepare(cfg, x, answers):
    x_tr, x_te = x[: cfg.n_train], x[cfg.n_train :]
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-8
    x_tr, x_te = (x_tr - mu) / sd / math.sqrt(x.shape[1]), (x_te - mu) / sd / math.sqrt(x.shape[1])
    y_all = (answers - answers[: cfg.n_train].mean()) / answers[: cfg.n_train].std()
    y, y_te = y_all[: cfg.n_train], y_all[cfg.n_train :]
    K, K_te = x_tr @ x_tr.T, x_te @ x_tr.T
    lam = cfg.lam_rel * float(np.linalg.eigvalsh(K)[-1])
    return x_tr, x_te, y, y_te, lam, KernelSelfDistillation(K, y, lam), K_te


def run(cfg: Config, out: Path, budget: Budget | None = None) -> list[claims.CheckResult]:
    out = Path(out)
    budget = budget or Budget()
    from ..tasks import make_task

    probs = make_task("chain_sum", max_terms=3).problems(cfg.n_train + cfg.n_test, seed=cfg.seed)
    texts = [p.question for p in probs]
    answers = np.array([float(p.answer) for p in probs])
    units = C.Units(out / "units.jsonl")
    st = _State()
    with budget.measuring():
        _measure(cfg, st, units, budget, texts, answers)
    if st.prep is None:  # stopped before the features or the kernel: nothing to decide
        C.save_run(out, cfg, dict(stopped=budget.stopped))
        what = "No features were computed." if st.x is None else "Stopped before the first fit."
        return [budget.undecided(c, details=what) for c in CLAIMS]
    return _decide(cfg, st, out, budget)


def _decide(cfg, st: _State, out: Path, budget: Budget) -> list[claims.CheckResult]:
    phi, phi_te, y, y_te, lam, sd_, K_te = st.prep
    d_max = lam / cfg.lam_rel
    rows, worst, it_total, paths = [], 0.0, 0, {}
    for alpha, (tr, te, iters) in st.paths.items():
        n = len(tr)
        if n == 0:
            continue
        cf_tr = sd_.predict_path(n, alpha)
        cf_te = sd_.predict_path(n, alpha, kernel_eval=K_te)
        it_total += sum(iters)
        paths[alpha] = (np.array(te), cf_te)
        for r in range(n):
            e_tr, e_te = _rel(tr[r], cf_tr[r]), _rel(te[r], cf_te[r])
            worst = max(worst, e_tr, e_te)
            rows.append(
                dict(
                    alpha=alpha,
                    round=r + 1,
                    rel_err_train=e_tr,
                    rel_err_test=e_te,
                    test_mse_gd=float(np.mean((te[r] - y_te) ** 2)),
                    test_mse_closed_form=float(np.mean((cf_te[r] - y_te) ** 2)),
                    gd_iters=iters[r],
                )
            )
    done_rounds = {a: len(v[0]) for a, v in st.paths.items()}
    rounds_ok = all(done_rounds.get(a, 0) >= min(2, cfg.rounds) for a in cfg.alphas)
    tr_l, te_l = st.limit if st.limit is not None else ([], [])
    limit_ok = len(tr_l) == cfg.limit_rounds
    lim_tr = sd_.predict(math.inf, cfg.limit_alpha)
    lim_te = sd_.predict(math.inf, cfg.limit_alpha, kernel_eval=K_te)
    rate = sd_.convergence_rate(cfg.limit_alpha)
    tail = max(
        _rel(sd_.predict(cfg.limit_rounds, cfg.limit_alpha), lim_tr),
        _rel(sd_.predict(cfg.limit_rounds, cfg.limit_alpha, kernel_eval=K_te), lim_te),
    )
    lim_err = max(_rel(tr_l[-1], lim_tr), _rel(te_l[-1], lim_te)) if limit_ok else float("nan")
    grid_ok = len(st.grid_mse) == cfg.alpha_grid
    mse = np.array(st.grid_mse)
    grid = st.grid[: len(mse)] if grid_ok or len(mse) else np.array([])
    a_star = getattr(st, "a_star", float("nan"))

    figs = []
    with simio.style() as plt:
        fig, ax = plt.subplots(1, 3, figsize=(12, 3.4))
        for alpha, (te, cf_te) in paths.items():
            r = np.arange(1, len(te) + 1)
            ax[0].plot(r, np.mean((te - y_te) ** 2, 1), "o", label=f"trained, alpha={alpha}")
            ax[0].plot(r, np.mean((cf_te - y_te) ** 2, 1), "-", label=f"closed form, alpha={alpha}")
        ax[0].set(xlabel="round", ylabel="held-out MSE", title="rounds: trained vs closed form")
        ax[0].legend(fontsize=7)
        if tr_l:
            k = np.arange(1, len(tr_l) + 1)
            dist = [_rel(a, lim_tr) for a in tr_l]
            cfd = [_rel(sd_.predict(i, cfg.limit_alpha), lim_tr) for i in k]
            ax[1].semilogy(k, dist, "o", label="trained")
            ax[1].semilogy(k, cfd, "-", label="closed form")
            ax[1].legend(fontsize=7)
        ax[1].set(
            xlabel="round",
            ylabel="rel. distance to ridge(lam/alpha)",
            title=f"limit, alpha={cfg.limit_alpha}",
        )
        if len(mse):
            cf_mse = [np.mean((sd_.predict(2, a, kernel_eval=K_te) - y_te) ** 2) for a in grid]
            ax[2].plot(grid, mse, "o", ms=3, label="trained heads")
            ax[2].plot(grid, cf_mse, "-", label="closed form")
            ax[2].axvline(a_star, color="k", ls="--", label=f"optimal_alpha={a_star:.3f}")
            ax[2].legend(fontsize=7)
        ax[2].set(xlabel="alpha_2 (round 2)", ylabel="held-out MSE", title="best alpha_2")
        figs.append(simio.save_figure(fig, out / "krr_rounds"))

    fig_name = figs[0].name
    results = []
    if rounds_ok:
        results.append(
            C.verdict(
                C_ROUNDS,
                0.0,
                worst,
                cfg.rtol,
                worst <= cfg.rtol,
                details=f"max relative error over alphas {list(cfg.alphas)} and rounds "
                f"{done_rounds} (of {cfg.rounds}), train and held-out points; n={cfg.n_train}, "
                f"lam={lam:.4g} ({cfg.lam_rel} x top eigenvalue), {it_total} GD iterations.",
                figure=fig_name,
            )
        )
    else:
        results.append(
            budget.undecided(C_ROUNDS, details=f"Rounds done per alpha: {done_rounds}; 2 needed.")
        )
    if limit_ok:
        tol_lim = cfg.rtol + tail
        results.append(
            C.verdict(
                C_LIMIT,
                0.0,
                lim_err,
                tol_lim,
                lim_err <= tol_lim,
                details=f"round {cfg.limit_rounds} at alpha={cfg.limit_alpha} vs "
                f"ridge(lam/alpha); tolerance = rtol + closed-form tail at round "
                f"{cfg.limit_rounds} ({tail:.2e}, rate {rate:.3f}).",
                figure=fig_name,
            )
        )
    else:
        results.append(
            budget.undecided(
                C_LIMIT, details=f"{len(tr_l)} of {cfg.limit_rounds} limit rounds done."
            )
        )
    if grid_ok:
        best = float(grid[int(np.argmin(mse))])
        spacing = (grid[-1] - grid[0]) / (cfg.alpha_grid - 1)
        results.append(
            C.verdict(
                C_ALPHA,
                a_star,
                best,
                spacing / 2 + 1e-12,
                abs(best - a_star) <= spacing / 2 + 1e-12,
                details=f"grid of {cfg.alpha_grid} trained round-2 heads on "
                f"[{grid[0]:.3g}, {grid[-1]:.3g}] (alpha > 1 is the affine continuation); "
                f"held-out MSE at the best alpha {mse.min():.4f} vs ridge (alpha=1) "
                f"{float(np.interp(1.0, grid, mse)):.4f}.",
                figure=fig_name,
            )
        )
    else:
        results.append(
            budget.undecided(C_ALPHA, details=f"{len(mse)} of {cfg.alpha_grid} grid points done.")
        )
    C.save_run(
        out,
        cfg,
        dict(
            lam=lam,
            d_max=d_max,
            feature_seconds=st.feature_seconds,
            worst_round_rel_err=worst,
            limit_rel_err=lim_err,
            limit_tail=tail,
            optimal_alpha=a_star,
            alpha_grid=grid,
            alpha_grid_mse=mse,
            stopped=budget.stopped,
        ),
        rows,
    )
    return results
