r"""UniSD: self-distillation with multi-view agreement weights, an EMA teacher, per-token
divergence clipping and hidden-state matching (the integrated recipe, UniSD*).

Jin et al. 2026 (arXiv:2605.06597), official code `Ahren09/UniSD` (`beef9a0`,
`src/trainers/unisd_trainer.py`). On the student's rollouts, with the self-teacher after the
run's privileged view:

* **agreement** (`agreement_weights`): the teacher scores each sampled token under $K$ views
  (`--unisd-views`; the code's views are $K$ few-shot prompts, ours the task's privileged
  views); the disagreement $d_t=\mathrm{Var}_k\,\ell_k(y_t)$ divided by its 95% quantile over
  the batch, capped at 10, gives $w_t=\max(1/(1+\gamma d_t),0.01)$ [code];
* **clipping** (`clip_keep`): the per-token divergence is $\min(D_t,c)$, $c$ static
  (`--unisd-clip`) or a quantile of the batch's $D_t$ [code: `token_clip`,
  `token_clip_quantile`]; written as weights ($\mathbb 1[D_t<c]$ times $D_t$, plus the constant
  $c$ where clipped) so the fused loss applies;
* the loss $\sum_t w_t\min(D_t,c)/\sum_t w_t$ [code: normalised by the weighted token count]
  plus $\lambda\,\overline{\lVert h^S_t-\mathrm{sg}\,h^T_t\rVert^2}/H$ on the final hidden states
  [code: `final_layer_distill_weight=0.1`];
* **EMA teacher**: every `--unisd-ema-every` steps $\theta_T\leftarrow\beta\theta_T+(1-\beta)
  \theta_S$ [code: `ref_model_sync_steps=10`, `ref_model_mixup_beta=0.9`].

Not built: the code's token-level contrastive term (it needs generated negative
demonstrations).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import check_fields
from ..losses import token_divergence
from ..tasks import VIEWS
from ..teachers import view_messages
from .base import Method
from .shared import DivergenceLoss, masked_mean, token_logprobs

__all__ = ["UniSD", "UniSDConfig", "agreement_weights", "clip_keep"]


def agreement_weights(
    view_logps,
    mask,
    gamma: float = 1.0,
    granularity: str = "token",
    *,
    quantile: float = 0.95,
    cap: float = 10.0,
    floor: float = 0.01,
):
    r"""UniSD agreement weights from the views' log-probs `(K, N, T)` of the sampled tokens
    [code: `_agreement_weights_token`, `_agreement_weights_sequence`]. Returns `(w, d)`.

    `token`: $d=\mathrm{Var}_k$ (unbiased), $w=\max(1/(1+\gamma\min(d/q_{0.95}(d),
    \mathrm{cap})),\mathrm{floor})$, quantile over the masked tokens ($w=1$ if none).
    `sequence`: $d_i=\mathrm{Var}_k$ (biased) of each view's mean log-prob over the row's
    tokens, $w=\max(e^{-\gamma d_i},10^{-6})$ on the row's tokens, 0 off the mask.

    Examples:
        >>> import torch
        >>> lp = torch.tensor([[[0.0, -1.0]], [[0.0, -3.0]]])      # 2 views, 1 row, 2 tokens
        >>> w, d = agreement_weights(lp, torch.ones(1, 2, dtype=torch.bool))  # q95 = 1.9
        >>> d.tolist(), [round(x, 4) for x in w[0].tolist()]
        ([[0.0, 2.0]], [1.0, 0.4872])
    """
    lp, m = view_logps.double(), mask.bool()
    if lp.shape[0] < 2:
        raise ValueError(f"agreement needs at least 2 views, got {lp.shape[0]}")
    if granularity == "token":
        d = lp.var(dim=0)
        flat = d[m]
        if flat.numel() == 0:
            return torch.ones_like(d), d
        scale = torch.quantile(flat, quantile).clamp(min=1e-6)
        w = 1.0 / (1.0 + gamma * (d / scale).clamp(max=cap))
        return w.clamp(min=floor), d
    if granularity == "sequence":
        cnt = m.sum(-1).clamp(min=1)
        d = ((lp * m).sum(-1) / cnt).var(dim=0, unbiased=False)
        w = torch.exp(-gamma * d).clamp(min=1e-6)
        return w[:, None] * m, d
    raise ValueError(f"granularity must be 'token' or 'sequence', got {granularity!r}")


def clip_keep(values, mask, clip: float = 0.0, quantile: float = 0.0):
    r"""Per-token clipping as weights: `(keep, cap)` with `keep` $=\mathbb 1[D_t<c]$, so that
    $\min(D_t,c)=\mathrm{keep}\cdot D_t+(1-\mathrm{keep})\,c$ in value and gradient. $c$ =
    `clip`, or the `quantile` of the masked values [code: `torch.quantile`, clamped at 1e-6];
    neither: no clipping (`cap` = inf).

    Examples:
        >>> import torch
        >>> keep, cap = clip_keep(torch.tensor([[1.0, 5.0, 3.0]]), torch.ones(1, 3).bool(), clip=3.0)
        >>> keep.tolist(), cap
        ([[True, False, False]], 3.0)
    """
    m = mask.bool()
    if clip and quantile:
        raise ValueError("give clip or quantile, not both")
    if quantile:
        flat = values[m].double()
        cap = (
            float(torch.quantile(flat, quantile).clamp(min=1e-6)) if flat.numel() else float("inf")
        )
    else:
        cap = float(clip) if clip else float("inf")
    return values < cap, cap


def _h(text: str, default):
    return field(default=default, metadata={"help": "UniSD: " + text})


@dataclass(frozen=True)
class UniSDConfig:
    _argument_group_name = "unisd (agreement weights, EMA teacher, clipping, hidden matching)"

    unisd_views: str = _h(
        "(ours) comma list of the K views scored for agreement", "solution,partial,answer"
    )
    unisd_gamma: float = _h("agreement strength gamma (0 = no agreement weights)", 1.0)
    unisd_agreement: str = _h("agreement per token or per sequence", "token")
    unisd_clip: float = _h(
        "per-token divergence ceiling (0 = none; the code's clip mode: 10)", 10.0
    )
    unisd_clip_quantile: float = _h("adaptive ceiling: this quantile of the batch (0 = off)", 0.0)
    unisd_match_weight: float = _h("weight of the final-hidden-state MSE", 0.1)
    unisd_ema_every: int = _h("EMA teacher update every N steps (0 = no EMA)", 10)
    unisd_ema_beta: float = _h("EMA: teacher <- beta teacher + (1 - beta) student", 0.9)

    @property
    def views(self) -> list[str]:
        return [v.strip() for v in self.unisd_views.split(",") if v.strip()]

    def __post_init__(self):
        check_fields(
            self,
            choices={"unisd_agreement": ("token", "sequence")},
            ints={"unisd_ema_every": 0},
            nonneg=("unisd_gamma", "unisd_clip", "unisd_match_weight"),
            unit=("unisd_clip_quantile", "unisd_ema_beta"),
        )
        if any(v not in VIEWS for v in self.views) or (
            self.unisd_gamma > 0 and len(self.views) < 2
        ):
            raise ValueError(f"unisd_views must list >= 2 of {VIEWS}, got {self.unisd_views!r}")
        if self.unisd_clip and self.unisd_clip_quantile:
            raise ValueError("unisd_clip and unisd_clip_quantile are exclusive; set one to 0")


class UniSD(Method):
    """UniSD* (see the module)."""

    name = "unisd"
    Config = UniSDConfig
    default_beta = 0.0  # forward KL [code: alpha = 0]

    def __init__(self, ctx):
        super().__init__(ctx)
        self.div = DivergenceLoss(ctx.cfg, self.teacher, self.default_beta)

    @classmethod
    def check(cls, cfg) -> None:
        super().check(cfg)
        if cfg.options.unisd_ema_every and cfg.teacher.teacher_mode != "fixed":
            raise ValueError(
                f"teacher_mode must be 'fixed' for unisd with its own EMA schedule "
                f"(--unisd-ema-every), got {cfg.teacher.teacher_mode!r}"
            )
        if cfg.loss.estimator:
            raise ValueError(f"estimator must be '' for unisd, got {cfg.loss.estimator!r}")

    def loss(self, batch):
        o, ro, m, s = self.options, batch.rollouts, batch.mask, batch.student
        t_h = self.teacher.hidden(batch.rows, ro.completions, ro.completion_mask)
        w_t = self.teacher.lm_head_weight
        w = torch.ones(m.shape, dtype=torch.float64, device=m.device)
        d = torch.zeros(m.shape, dtype=torch.float64, device=m.device)
        if o.unisd_gamma > 0:
            lps = [
                token_logprobs(
                    self.teacher.logits(
                        batch.rows,
                        ro.completions,
                        ro.completion_mask,
                        messages=[
                            view_messages(self.ctx.task, p, v, self.cfg.teacher.rho)
                            for p in batch.rows
                        ],
                    ),
                    ro.completions,
                )
                for v in o.views
            ]
            w, d = agreement_weights(torch.stack(lps), m, o.unisd_gamma, o.unisd_agreement)
        h = s.hidden()  # with gradient (before the no-grad block below)
        with torch.no_grad():  # per-token divergences for the ceiling (the same in both paths)
            kw = self.div.kwargs(batch.step)
            vals = torch.stack(
                [token_divergence(h[i] @ s.weight.T, t_h[i] @ w_t.T, **kw) for i in range(len(h))]
            )
        keep, cap = clip_keep(vals, m, o.unisd_clip, o.unisd_clip_quantile)
        ww = (w * keep).to(vals.dtype)
        n = batch.num_items()
        if batch.loss_reduction == "token_mean":
            n = max(batch.global_sum(float((w * m).sum())), 1.0)
        t_out = t_h if self.div.fused else t_h @ w_t.T
        l_d = self.div(batch, t_out, weights=ww, num_items=n)
        at_cap = torch.full_like(vals, cap).masked_fill(keep, 0.0)  # min(D, c) = c if clipped
        l_d = l_d + batch.reduce(at_cap, weights=(w * ~keep).to(vals.dtype), num_items=n)
        mse = ((h - t_h.to(h.dtype)) ** 2).mean(-1)
        l_h = batch.reduce(mse)
        loss = l_d + o.unisd_match_weight * l_h
        metrics = dict(
            distill_loss=float(l_d.detach()),
            unisd_match_loss=float(l_h.detach()),
            unisd_weight_mean=masked_mean(w, m),
            unisd_disagreement_mean=masked_mean(d, m) if d.dim() == 2 else float(d.mean()),
            unisd_clipped_frac=masked_mean(~keep, m),
            unisd_cap=cap,
            divergence=self.div.divergence(batch.step),
        )
        return self.weights(self.cfg)[0] * loss, metrics

    def after_step(self, batch, metrics):
        o = self.options
        due = bool(o.unisd_ema_every) and (batch.step + 1) % o.unisd_ema_every == 0
        if due:
            self.teacher.blend(self.ctx.student, 1.0 - o.unisd_ema_beta)
        return {"unisd_teacher_ema": due}
