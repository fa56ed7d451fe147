r"""CurioSFT: supervised fine-tuning on worked solutions plus a pull toward a softened self-teacher.

Wang et al., arXiv:2602.02244; official code `HaoooWang/CurioSFT@5a77394`
(`custom_verl/recipe/curio_sft/dp_actor.py::compute_tau_from_logits`, `_forward_micro_batch`;
`ppo/core_algos.py::custom_loss` with `algo_type="curio_sft"`; `scripts/1_sft.sh`) [code]. The
tokens are the dataset's demonstrations (`sources.demonstrations`, one per problem), not
rollouts. Per demonstration token $y_t$:

$$\ell_t=-\log p_\theta(y_t)+\alpha\cdot\tfrac12\big(\log p_\theta(y_t)-\log q^{\tau_t}(y_t)\big)^2,$$

token mean [code: `mse_loss = -log_prob`, `kd_loss = alpha * 0.5 * (log_prob - ref_log_prob)**2`,
$\alpha=1$ = `--distill-weight`; `--distill-weight 0` is plain SFT]. $q^{\tau}$ is the reference
copy of the model under the student's prompt at a per-token temperature (`select_temperature`,
the code's constants): $H$ = entropy of the softmax of the teacher's top-512 logits at
$\tau=1$; target $H^*=H+\tfrac12\,\sigma(2(H-1.2))$; $\tau_t\in[1.1,1.5]$ by 20 bisection steps on
$H_{\rm top512}(z/\tau)=H^*$, clamped to the interval; tokens whose full-vocabulary entropy is
$\le 0.03$ ("factual") get $\tau=1.1$ [code]. The reference starts as a copy of the model
and is synchronised after every 5th optimiser step by the mixup
$\theta_{\rm ref}\leftarrow0.01\,\theta_{\rm ref}+0.99\,\theta$ [code: `ref_model_sync_steps=5`,
`ref_model_mixup_alpha=0.99`] (`--curio-sync-every`, `--curio-mixup`; `SelfTeacher.blend`).
`--teacher-mode live` makes the reference the current model (no sync); `ema` is refused (it
would move the reference twice).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import check_fields
from .base import Method
from .shared import entropy, masked_mean, teacher_rows, token_logprobs

__all__ = [
    "CurioSFT",
    "CurioSFTConfig",
    "entropy_target",
    "select_temperature",
    "topk_entropy",
]


def topk_entropy(logits: torch.Tensor, tau, k: int = 512) -> torch.Tensor:
    r"""Entropy of $\mathrm{softmax}(\mathrm{top}_k(z)/\tau)$ per row of `(..., V)` logits (the
    full softmax when $k \ge V$) [code: `entropy_topk`]; `tau` broadcasts against `(...)`."""
    z = logits if k >= logits.shape[-1] else logits.topk(k, dim=-1).values
    return entropy(torch.log_softmax(z / torch.as_tensor(tau, dtype=z.dtype)[..., None], -1))


def entropy_target(h: torch.Tensor, center=1.2, slope=2.0, gain=0.5) -> torch.Tensor:
    r"""$H^* = H + \mathrm{gain}\cdot\sigma(\mathrm{slope}\,(H-\mathrm{center}))$ [code: `c = 1.2`,
    `delta = sigmoid((H_now - c) * 2.0) * 0.5`]: high-entropy tokens are softened more."""
    return h + gain * torch.sigmoid(slope * (h - center))


@torch.no_grad()
def select_temperature(
    logits: torch.Tensor,
    *,
    tau_min: float = 1.1,
    tau_max: float = 1.5,
    k: int = 512,
    iters: int = 20,
    factual_entropy: float = 0.03,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-row temperature $\tau\in[\tau_{\min},\tau_{\max}]$ with $H_{\rm top\,k}(z/\tau)=H^*$
    by bisection, and the row's top-$k$ entropy at $\tau=1$ (see the module) [code].

    The top-$k$ entropy increases with $\tau$, so bisection keeps $H(\tau_{lo}) < H^* \le
    H(\tau_{hi})$; a target outside $[H(\tau_{\min}), H(\tau_{\max})]$ gets the nearer end. After
    `iters` halvings $\tau$ is the midpoint of the last bracket, as in the code.

    Examples:
        >>> import torch
        >>> tau, h = select_temperature(torch.tensor([[0.0, 0.0], [30.0, 0.0]]))
        >>> [round(x, 4) for x in tau.tolist()], round(float(h[0]), 4)  # uniform, one-hot rows
        ([1.5, 1.1], 0.6931)
    """
    if not 0 < tau_min <= tau_max < float("inf"):
        raise ValueError(f"need 0 < tau_min <= tau_max, got tau_min={tau_min}, tau_max={tau_max}")
    if int(k) < 1 or int(iters) < 0:
        raise ValueError(f"k must be >= 1 and iters >= 0, got k={k}, iters={iters}")
    z = logits.to(torch.float64 if logits.dtype == torch.float64 else torch.float32)
    h_now = topk_entropy(z, 1.0, k)
    target = entropy_target(h_now)
    lo = torch.full_like(h_now, tau_min)
    hi = torch.full_like(h_now, tau_max)
    h_lo, h_hi = topk_entropy(z, lo, k), topk_entropy(z, hi, k)
    tau = torch.where(target <= h_lo, lo, torch.where(target >= h_hi, hi, (lo + hi) / 2))
    for _ in range(int(iters)):
        up = topk_entropy(z, tau, k) < target
        lo, hi = torch.where(up, tau, lo), torch.where(up, hi, tau)
        tau = (lo + hi) / 2
    full = entropy(torch.log_softmax(z, -1))
    return tau.masked_fill(full <= factual_entropy, tau_min), h_now


def _h(text: str, default):
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class CurioSFTConfig:
    _argument_group_name = (
        "curiosft (SFT on worked solutions + squared log-ratio to a temperature-scaled reference)"
    )

    curio_tau_min: float = _h("CurioSFT: lowest teacher temperature (and factual tokens')", 1.1)
    curio_tau_max: float = _h("CurioSFT: highest teacher temperature", 1.5)
    curio_topk: int = _h("CurioSFT: the entropy is taken over the teacher's top-k logits", 512)
    curio_factual_entropy: float = _h(
        "CurioSFT: tokens whose teacher entropy is at most this get tau_min", 0.03
    )
    curio_sync_every: int = _h("CurioSFT: mix the reference toward the model every N steps", 5)
    curio_mixup: float = _h("CurioSFT: ref <- (1 - mixup) ref + mixup model at a sync", 0.99)

    def __post_init__(self):
        check_fields(
            self,
            ints={"curio_topk": 1, "curio_sync_every": 1},
            positive=("curio_tau_min", "curio_tau_max"),
            nonneg=("curio_factual_entropy",),
        )
        if not 0.0 < self.curio_mixup <= 1.0:
            raise ValueError(f"curio_mixup must lie in (0, 1], got {self.curio_mixup!r}")
        if self.curio_tau_min > self.curio_tau_max:
            raise ValueError(
                f"curio_tau_min must be <= curio_tau_max, got {self.curio_tau_min} > "
                f"{self.curio_tau_max}"
            )


class CurioSFT(Method):
    """CurioSFT (see the module): demonstration tokens, NLL plus alpha/2 squared log-ratio."""

    name = "curiosft"
    Config = CurioSFTConfig
    teacher_kind = "reference"
    needs_distill = False  # alpha = 0: plain SFT

    @classmethod
    def check(cls, cfg) -> None:
        d, g = cls.weights(cfg)
        if g > 0:
            raise ValueError(f"grpo_weight must be 0 for {cls.name} (it has no GRPO term), got {g}")
        if d > 0 and cfg.teacher.teacher_mode == "ema":
            raise ValueError(
                "teacher_mode must be fixed or live for curiosft (it syncs its reference itself: "
                "--curio-sync-every, --curio-mixup), got 'ema'"
            )

    def collect(self, sources, problems, step):
        return sources.demonstrations(problems)

    def _teacher(self, logits, tokens):
        o = self.options
        tau, h = select_temperature(
            logits,
            tau_min=o.curio_tau_min,
            tau_max=o.curio_tau_max,
            k=o.curio_topk,
            factual_entropy=o.curio_factual_entropy,
        )
        lq = token_logprobs(logits.to(tau.dtype) / tau[:, None], tokens)
        return torch.stack([lq, tau, h], -1)

    def loss(self, batch):
        alpha, m = self.weights(self.cfg)[0], batch.mask
        lp = batch.student.token_logprobs(1.0)
        nll = batch.reduce(-lp)
        loss, metrics = nll, {"curio_nll": float(nll.detach())}
        if self.teacher is not None and alpha > 0:
            out = teacher_rows(self.teacher, batch, self._teacher).to(lp.dtype)
            lq, tau, h = out.unbind(-1)
            kd = batch.reduce(0.5 * (lp - lq) ** 2)
            loss = loss + alpha * kd
            metrics.update(
                distill_loss=float(kd.detach()),
                curio_tau_mean=masked_mean(tau, m),
                curio_tau_min_frac=masked_mean(tau <= self.options.curio_tau_min + 1e-6, m),
                teacher_entropy=masked_mean(h, m),
            )
        with torch.no_grad():
            z = batch.student.logits()
            ent = torch.stack([entropy(torch.log_softmax(z[i].float(), -1)) for i in range(len(z))])
        metrics["student_entropy"] = masked_mean(ent, m)
        return loss, metrics

    def after_step(self, batch, metrics):
        """The reference mixup after every `curio_sync_every`-th step [code]."""
        o, t = self.options, self.teacher
        sync = t is not None and t.mode != "live" and (batch.step + 1) % o.curio_sync_every == 0
        if sync:
            t.blend(self.ctx.student, o.curio_mixup)
        return {"curio_synced": sync}
