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


CONFIGS = {
    "fast": Config(n_train=40, n_test=24, rounds=3, limit_rounds=18, alpha_grid=31, max_tokens=32),
    "cpu": Config(),
    "gpu": Config(n_train=1024, n_test=512, rounds=8, limit_rounds=30, alpha_grid=121),
}


@torch.no_grad()
def features(texts: list[str], max_tokens: int, batch: int) -> np.ndarray:
    """Mean-pooled final hidden states of SmolLM2 (float64 numpy, one row per text)."""
    model, tok = C.smollm2()
    rows = []
    for i in range(0, len(texts), batch):
        ids, mask = C.encode_batch(tok, texts[i : i + batch], max_tokens)
        ids, mask = ids.to(C.device()), mask.to(C.device())
        h = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(h.dtype)
        rows.append(((h * m).sum(1) / m.sum(1)).double().cpu().numpy())
    return np.concatenate(rows)


def train_head(phi: np.ndarray, target: np.ndarray, lam: float, w0: np.ndarray, cfg: Config):
    """Gradient descent (heavy ball) with weight decay on 0.5||phi w - t||^2; returns (w, iters).

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


def rounds_by_gd(phi, phi_te, y, lam, alpha, n_rounds, cfg):
    """Train `n_rounds` heads; returns train and test predictions (rounds x n) and GD iterations."""
    w = np.zeros(phi.shape[1])
    prev, tr, te, iters = None, [], [], []
    for tau in range(1, n_rounds + 1):
        t = y if tau == 1 else alpha * y + (1 - alpha) * prev
        w, it = train_head(phi, t, lam, w, cfg)
        prev = phi @ w
        tr.append(prev.copy())
        te.append(phi_te @ w)
        iters.append(it)
    return np.array(tr), np.array(te), iters


def _rel(a, b) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def run(cfg: Config, out: Path) -> list[claims.CheckResult]:
    out = Path(out)
    from ..tasks import make_task

    probs = make_task("chain_sum", max_terms=3).problems(cfg.n_train + cfg.n_test, seed=cfg.seed)
    texts = [p.question for p in probs]
    answers = np.array([float(p.answer) for p in probs])
    with C.Timer() as tf:
        x = features(texts, cfg.max_tokens, cfg.batch)
    C.log(NAME, f"features {x.shape} in {tf.seconds:.1f}s")
    x_tr, x_te = x[: cfg.n_train], x[cfg.n_train :]
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-8
    x_tr, x_te = (x_tr - mu) / sd / math.sqrt(x.shape[1]), (x_te - mu) / sd / math.sqrt(x.shape[1])
    y_all = (answers - answers[: cfg.n_train].mean()) / answers[: cfg.n_train].std()
    y, y_te = y_all[: cfg.n_train], y_all[cfg.n_train :]
    K, K_te = x_tr @ x_tr.T, x_te @ x_tr.T
    d_max = float(np.linalg.eigvalsh(K)[-1])
    lam = cfg.lam_rel * d_max
    sd_ = KernelSelfDistillation(K, y, lam)
    phi, phi_te, yt = x_tr, x_te, y

    rows, worst, it_total = [], 0.0, 0
    paths = {}
    for alpha in cfg.alphas:
        tr, te, iters = rounds_by_gd(phi, phi_te, yt, lam, alpha, cfg.rounds, cfg)
        cf_tr = sd_.predict_path(cfg.rounds, alpha)
        cf_te = sd_.predict_path(cfg.rounds, alpha, kernel_eval=K_te)
        it_total += sum(iters)
        paths[alpha] = (te, cf_te)
        for r in range(cfg.rounds):
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
    # the limit
    tr_l, te_l, _ = rounds_by_gd(phi, phi_te, yt, lam, cfg.limit_alpha, cfg.limit_rounds, cfg)
    lim_tr = sd_.predict(math.inf, cfg.limit_alpha)
    lim_te = sd_.predict(math.inf, cfg.limit_alpha, kernel_eval=K_te)
    rate = sd_.convergence_rate(cfg.limit_alpha)
    # closed-form distance of round R from the limit (the tail the finite R leaves)
    tail = max(
        _rel(sd_.predict(cfg.limit_rounds, cfg.limit_alpha), lim_tr),
        _rel(sd_.predict(cfg.limit_rounds, cfg.limit_alpha, kernel_eval=K_te), lim_te),
    )
    lim_err = max(_rel(tr_l[-1], lim_tr), _rel(te_l[-1], lim_te))
    # best alpha at round 2 on held-out error: a grid of trained runs vs optimal_alpha
    # the prediction first; the grid of trained runs spans it with a margin of alpha_margin
    a_star = float(sd_.optimal_alpha(y_te, 2, kernel_eval=K_te)[0])
    lo = min(cfg.alpha_min, a_star - cfg.alpha_margin)
    hi = max(cfg.alpha_max, a_star + cfg.alpha_margin)
    grid = np.linspace(lo, hi, cfg.alpha_grid)
    w1, _ = train_head(phi, yt, lam, np.zeros(phi.shape[1]), cfg)
    prev = phi @ w1
    mse = []
    for a in grid:
        w2, _ = train_head(phi, a * yt + (1 - a) * prev, lam, w1, cfg)
        mse.append(float(np.mean((phi_te @ w2 - y_te) ** 2)))
    mse = np.array(mse)
    best = float(grid[int(np.argmin(mse))])
    cf_mse = np.array([np.mean((sd_.predict(2, a, kernel_eval=K_te) - y_te) ** 2) for a in grid])
    spacing = (hi - lo) / (cfg.alpha_grid - 1)

    figs = []
    with simio.style() as plt:
        fig, ax = plt.subplots(1, 3, figsize=(12, 3.4))
        for alpha, (te, cf_te) in paths.items():
            r = np.arange(1, cfg.rounds + 1)
            ax[0].plot(r, np.mean((te - y_te) ** 2, 1), "o", label=f"trained, alpha={alpha}")
            ax[0].plot(r, np.mean((cf_te - y_te) ** 2, 1), "-", label=f"closed form, alpha={alpha}")
        ax[0].set(xlabel="round", ylabel="held-out MSE", title="rounds: trained vs closed form")
        ax[0].legend(fontsize=7)
        dist = [_rel(tr_l[i], lim_tr) for i in range(cfg.limit_rounds)]
        cfd = [_rel(sd_.predict(i + 1, cfg.limit_alpha), lim_tr) for i in range(cfg.limit_rounds)]
        ax[1].semilogy(np.arange(1, cfg.limit_rounds + 1), dist, "o", label="trained")
        ax[1].semilogy(np.arange(1, cfg.limit_rounds + 1), cfd, "-", label="closed form")
        ax[1].set(
            xlabel="round",
            ylabel="rel. distance to ridge(lam/alpha)",
            title=f"limit, alpha={cfg.limit_alpha}",
        )
        ax[1].legend(fontsize=7)
        ax[2].plot(grid, mse, "o", ms=3, label="trained heads")
        ax[2].plot(grid, cf_mse, "-", label="closed form")
        ax[2].axvline(a_star, color="k", ls="--", label=f"optimal_alpha={a_star:.3f}")
        ax[2].set(xlabel="alpha_2 (round 2)", ylabel="held-out MSE", title="best alpha_2")
        ax[2].legend(fontsize=7)
        figs.append(simio.save_figure(fig, out / "krr_rounds"))

    fig_name = figs[0].name
    tol_lim = cfg.rtol + tail
    results = [
        C.verdict(
            C_ROUNDS,
            0.0,
            worst,
            cfg.rtol,
            worst <= cfg.rtol,
            details=f"max relative error over alphas {list(cfg.alphas)} and rounds 1..{cfg.rounds}, "
            f"train and held-out points; n={cfg.n_train}, lam={lam:.4g} "
            f"({cfg.lam_rel} x top eigenvalue), {it_total} GD iterations.",
            figure=fig_name,
        ),
        C.verdict(
            C_LIMIT,
            0.0,
            lim_err,
            tol_lim,
            lim_err <= tol_lim,
            details=f"round {cfg.limit_rounds} at alpha={cfg.limit_alpha} vs ridge(lam/alpha); "
            f"tolerance = rtol + closed-form tail at round {cfg.limit_rounds} ({tail:.2e}, "
            f"rate {rate:.3f}).",
            figure=fig_name,
        ),
        C.verdict(
            C_ALPHA,
            a_star,
            best,
            spacing / 2 + 1e-12,
            abs(best - a_star) <= spacing / 2 + 1e-12,
            details=f"grid of {cfg.alpha_grid} trained round-2 heads on [{lo:.3g}, {hi:.3g}] "
            f"(alpha > 1 is the affine continuation); held-out MSE at the best alpha "
            f"{mse.min():.4f} vs ridge (alpha=1) {float(np.interp(1.0, grid, mse)):.4f}.",
            figure=fig_name,
        ),
    ]
    C.save_run(
        out,
        cfg,
        dict(
            lam=lam,
            d_max=d_max,
            feature_seconds=tf.seconds,
            worst_round_rel_err=worst,
            limit_rel_err=lim_err,
            limit_tail=tail,
            best_alpha_measured=best,
            optimal_alpha=a_star,
            alpha_grid=grid,
            alpha_grid_mse=mse,
            alpha_grid_mse_closed_form=cf_mse,
        ),
        rows,
    )
    return results
