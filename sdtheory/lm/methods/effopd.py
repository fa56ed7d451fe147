r"""EffOPD: on-policy distillation accelerated by extrapolating the weights at checkpoints.

Cai et al. 2026 (arXiv:2605.11739), official code `caiyuchen-ustc/EffOPD` (`f972ad5`,
`EffOPD/verl/verl/workers/fsdp_workers.py`, `_iterative_test_and_modify`). Not a loss: after the
optimiser update of every step $t\in\{1,2,4,8,\dots\}$ (`is_checkpoint`), with $\Delta=\theta_t-
\theta_b$ the move since the last checkpoint ($\theta_b$: the initial weights at first), the
candidates $\theta_t+jc\,\Delta$, $j=1,\dots,J$ (the code's factors $a_1=c$,
$a_{j+1}=a_j/(1+a_j)$ applied in turn, $c=2$), are scored on a small validation set in order;
each that *improves* the best score is accepted, the first that does not ends the search
(`extrapolation_search`), and $\theta_b$ becomes the accepted weights. Only attention and MLP
weights move [code: `_should_modify_param`]. The optimiser state is left as it is [code].

The loss is OPSD's (any `--divergence`; `--estimator advantage` is the sampled-token reverse
KL of the paper's OPD). Validation costs rollouts: every score is `--effopd-val-problems` x
`--eval-k` samples, counted in `effopd_val_rollouts` and `effopd_total_rollouts` (training +
validation), so that comparisons can be made at equal rollout compute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..config import check_fields
from .distill import OPSD

__all__ = ["EffOPD", "EffOPDConfig", "extrapolation_search", "is_checkpoint", "validation_cost"]

_KEYWORDS = (
    "attn",
    "attention",
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "mlp",
    "feed_forward",
    "ffn",
    "gate_proj",
    "up_proj",
    "down_proj",
)  # [code: `_should_modify_param`]


def is_checkpoint(step: int) -> bool:
    """A power of two: EffOPD's exponentially spaced checkpoints (`step` counts from 1) [code:
    `(global_step & (global_step - 1)) == 0`].

    Examples:
        >>> [s for s in range(1, 20) if is_checkpoint(s)]
        [1, 2, 4, 8, 16]
    """
    return step >= 1 and (step & (step - 1)) == 0


def extrapolation_search(
    score: Callable[[], float], apply: Callable[[int], None], n_candidates: int
) -> tuple[int, list[dict]]:
    """Accept-only-improvements search [code: `_iterative_test_and_modify`].

    `score()` scores the current weights; `apply(j)` sets them to candidate `j` (0 = the weights
    the search started from). Scores candidates 1, 2, ... in order while each beats the best so
    far (strictly), stops at the first that does not, and leaves the best applied. Returns the
    accepted `j` and the history `[{"j", "score", "accepted"}]` (`len(history)` scores were
    computed).

    Examples:
        >>> state = {"j": 0}
        >>> scores = [0.5, 0.6, 0.7, 0.65, 0.9]          # score of candidate j
        >>> best, hist = extrapolation_search(lambda: scores[state["j"]],
        ...                                   lambda j: state.update(j=j), n_candidates=4)
        >>> best, state["j"], [h["accepted"] for h in hist]
        (2, 2, [True, True, True, False])
    """
    best_j, best = 0, float(score())
    history = [{"j": 0, "score": best, "accepted": True}]
    for j in range(1, int(n_candidates) + 1):
        apply(j)
        s = float(score())
        history.append({"j": j, "score": s, "accepted": s > best})
        if not s > best:
            break
        best_j, best = j, s
    apply(best_j)
    return best_j, history


def validation_cost(history: list[dict], n_problems: int, k: int) -> int:
    """Rollouts the search sampled: one validation pass (`n_problems` x `k`) per score.

    Examples:
        >>> validation_cost([{"j": 0}, {"j": 1}, {"j": 2}], n_problems=50, k=4)
        600
    """
    return len(history) * int(n_problems) * int(k)


def _h(text: str, default):
    return field(default=default, metadata={"help": "EffOPD: " + text})


@dataclass(frozen=True)
class EffOPDConfig:
    _argument_group_name = "effopd (OPSD + weight extrapolation at exponentially spaced steps)"

    effopd_candidates: int = _h("most candidates theta_t + j c Delta scored per checkpoint", 5)
    effopd_factor: float = _h("c: candidate j is theta_t + j c (theta_t - theta_base)", 2.0)
    effopd_val_problems: int = _h(
        "(ours) problems of the validation set (disjoint from training and evaluation; the "
        "code reads a separate file)",
        32,
    )
    effopd_params: str = _h("weights extrapolated: attn_mlp (the code's) or all", "attn_mlp")

    def __post_init__(self):
        check_fields(
            self,
            ints={"effopd_candidates": 1, "effopd_val_problems": 1},
            positive=("effopd_factor",),
            choices={"effopd_params": ("attn_mlp", "all")},
        )


class EffOPD(OPSD):
    """OPSD whose `after_step` extrapolates the weights at steps 1, 2, 4, 8, ... (see module)."""

    name = "effopd"
    Config = EffOPDConfig
    default_beta = 1.0  # reverse KL, the paper's OPD direction
    needs_distill = True

    def __init__(self, ctx):
        super().__init__(ctx)
        o, run, task = self.options, self.cfg.run, ctx.task
        if ctx.student is None or ctx.evaluate is None:
            raise ValueError("effopd needs the student network and the evaluation (MethodContext)")
        train, held = task.split(run.n_train, run.n_eval, seed=run.seed)
        seen = {p.question for p in [*train, *held]}
        pool = task.problems(run.n_train + run.n_eval + 2 * o.effopd_val_problems, run.seed + 1)
        self.val = [p for p in pool if p.question not in seen][: o.effopd_val_problems]
        if len(self.val) < o.effopd_val_problems:
            raise ValueError(
                f"effopd_val_problems: the task has only {len(self.val)} problems outside the "
                f"training and evaluation sets, got {o.effopd_val_problems}"
            )
        self.names = [  # trainable ones only: with LoRA the adapters, never the frozen base
            n
            for n, p in ctx.student.named_parameters()
            if p.requires_grad
            and (o.effopd_params == "all" or any(k in n.lower() for k in _KEYWORDS))
        ]
        self.base = self._weights()  # theta_b: the initial weights
        self.val_rollouts, self.train_rollouts = 0, 0

    def _weights(self) -> dict[str, torch.Tensor]:
        p = dict(self.ctx.student.named_parameters())
        return {n: p[n].detach().clone() for n in self.names}

    @torch.no_grad()
    def extrapolate(self) -> tuple[int, list[dict]]:
        """The search at a checkpoint; moves the student and the base. Returns (j, history)."""
        params, c = dict(self.ctx.student.named_parameters()), self.options.effopd_factor
        start = self._weights()

        def apply(j: int) -> None:
            for n, t in start.items():
                if j == 0:
                    params[n].copy_(t)
                else:
                    params[n].copy_(t + (j * c) * (t - self.base[n]))

        def score() -> float:
            return float(self.ctx.evaluate(self.val)["accuracy"])

        j, hist = extrapolation_search(score, apply, self.options.effopd_candidates)
        self.base = self._weights()
        self.val_rollouts += validation_cost(hist, len(self.val), self.cfg.run.eval_k)
        return j, hist

    def after_step(self, batch, metrics):
        self.train_rollouts += int(batch.global_sum(float(len(batch.rewards))))
        out = {"effopd_checkpoint": is_checkpoint(batch.step + 1)}
        if out["effopd_checkpoint"]:
            j, hist = self.extrapolate()
            out.update(
                effopd_eta=j * self.options.effopd_factor,
                effopd_val_start=hist[0]["score"],
                effopd_val_best=max(h["score"] for h in hist if h["accepted"]),
                effopd_scored=len(hist),
            )
        out.update(
            effopd_val_rollouts=self.val_rollouts,
            effopd_total_rollouts=self.train_rollouts + self.val_rollouts,
        )
        return out

    def state_dict(self) -> dict:
        rollouts = [self.train_rollouts, self.val_rollouts]
        return {"extrapolation": {"base": self.base, "rollouts": rollouts}}

    def load_state_dict(self, state: dict) -> None:
        s = state["extrapolation"]
        self.base = {n: t.clone() for n, t in s["base"].items()}
        self.train_rollouts, self.val_rollouts = (int(x) for x in s["rollouts"])
