r"""The `Method` interface, the `StepBatch` a method's loss receives, and the student's outputs.

The trainer (`sdtheory.lm.trainers`) runs the same loop for every method; a method plugs in
through five calls, in this order in each optimiser step:

    rollouts = method.collect(sources, problems, step)   # where the tokens come from
    ...verify -> rewards...
    loss, metrics = method.loss(batch)                    # batch: StepBatch
    ...backward, optimiser step, teacher update...
    metrics |= method.after_step(batch, metrics)          # schedules, controllers
    method.state_dict() / method.load_state_dict(state)   # at checkpoints (exact resume)

plus class attributes that say what the method needs: its own options (`Config`), its teacher
(`teacher_kind`: `"self"`, `"reference"`, `"model"` or `None`), its default loss weights and JSD
$\beta$, the fewest samples per problem it works with, and which loss weights it can use.
`param_groups()` adds method-owned trainable parameters to the optimiser. A method never touches
the trainer or the teacher's network: it gets the student's outputs from the batch
(`batch.student`) and the teacher's through `sdtheory.lm.teachers.Teacher`; the student network
itself (`MethodContext.student`) is there only for methods that act on the weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..losses import reduce_loss
from .shared import token_logprobs

__all__ = ["Method", "MethodContext", "StepBatch", "StudentOutputs"]


class StudentOutputs:
    """The student's forward pass on a batch's completion tokens, run once on first use.

    `hidden()` holds the final hidden states `(N, T, H)` at the positions predicting each
    completion token (with gradient); `logits()` projects them with the output layer, only when
    a method asks for them (fused divergences never do). `under(prompts)` is the same network
    on the same completion tokens after other prompts, with gradient: a teacher that shares the
    student's parameters and is trained with it (pi-Distill, VPD).
    """

    def __init__(self, forward: Callable[[], torch.Tensor], head: torch.nn.Module, tokens):
        self._forward, self.head, self.tokens = forward, head, tokens
        self._hidden: torch.Tensor | None = None
        self._logits: torch.Tensor | None = None
        self._logp: dict[tuple[float, bool], torch.Tensor] = {}

    @property
    def weight(self) -> torch.Tensor:
        """The output embedding `(V, H)`."""
        return self.head.weight

    def under(self, prompts) -> StudentOutputs:
        """The student's outputs on the same completion tokens after `prompts` (row `i` after
        `prompts[i]`, token ids), with gradient, computed on first use; `forward` must accept
        the prompts (the trainer's does)."""
        if len(prompts) != self.tokens.shape[0]:
            raise ValueError(f"prompts has {len(prompts)} rows, the batch {self.tokens.shape[0]}")
        prompts = [list(p) for p in prompts]
        return StudentOutputs(lambda: self._forward(prompts), self.head, self.tokens)

    def hidden(self) -> torch.Tensor:
        if self._hidden is None:
            self._hidden = self._forward()
        return self._hidden

    def logits(self) -> torch.Tensor:
        if self._logits is None:
            self._logits = self.head(self.hidden())
        return self._logits

    def token_logprobs(self, temperature: float = 1.0, *, grad: bool = True) -> torch.Tensor:
        r"""$\log\mathrm{softmax}(z/\tau)$ at the sampled tokens, `(N, T)`, in float32 or higher.

        With `grad=False` and no logits formed yet, they are formed without gradient, row by
        row, so a fused method never holds the `(N, T, V)` logits for autograd.
        """
        key = (float(temperature), grad)
        if key not in self._logp:
            if grad or self._logits is not None:
                out = token_logprobs(self.logits(), self.tokens, temperature)
                self._logp[key] = out if grad else out.detach()
            else:
                h = self.hidden()  # with gradient: the loss may need it later
                with torch.no_grad():
                    rows = [
                        token_logprobs(self.head(h[i]), self.tokens[i], temperature)
                        for i in range(h.shape[0])
                    ]
                    self._logp[key] = torch.stack(rows)
        return self._logp[key]


@dataclass
class StepBatch:
    """What a method's loss sees in one optimiser step (this process's share of it).

    Attributes:
        step: optimiser steps done before this one (0 for the first).
        rollouts: prompts, completion tokens and masks (`sdtheory.lm.rollout.Rollouts`).
        rows: the problem of each rollout.
        rewards: `(N,)` verifier rewards in {0, 1} (CPU).
        problem_ids: training-set index of each local problem (`rollouts.group` indexes it).
        student: the student's outputs on the completion tokens (computed on first use).
        loss_reduction: `token_mean`, `sequence_mean` or `sum` (the run's `--reduction`).
        global_sum: sums a number over processes (the identity with one process).
    """

    step: int
    rollouts: Any
    rows: list
    rewards: torch.Tensor
    problem_ids: list[int]
    student: StudentOutputs
    loss_reduction: str = "token_mean"
    global_sum: Callable[[float], float] = float
    _full: list = field(default_factory=list, repr=False)

    @property
    def mask(self) -> torch.Tensor:
        """`(N, T)` the tokens the loss trains on (`Rollouts.loss_mask`, else the completion)."""
        ro = self.rollouts
        return ro.completion_mask if ro.loss_mask is None else ro.loss_mask

    @property
    def groups(self) -> torch.Tensor:
        """`(N,)` index of each rollout's problem in `problem_ids` (CPU)."""
        return self.rollouts.group.cpu()

    @property
    def reduction(self) -> str:
        """The `reduce_loss` reduction: global token or sequence counts go in `num_items`."""
        return "sequence_mean" if self.loss_reduction == "sequence_mean" else "sum"

    def num_items(self, mask: torch.Tensor | None = None) -> float | None:
        """Global normaliser of `mask` (default: the completion mask), summed over processes:
        its tokens (`token_mean`), its non-empty rows (`sequence_mean`) or `None` (`sum`);
        at least 1. Normalising by global counts makes data-parallel steps equal one process."""
        if self.loss_reduction == "sum":
            return None
        if mask is None and self._full:
            return self._full[0]
        m = self.mask if mask is None else mask
        n = m.sum() if self.loss_reduction == "token_mean" else (m.sum(-1) > 0).sum()
        out = max(self.global_sum(float(n)), 1.0)
        if mask is None:
            self._full.append(out)
        return out

    def reduce(self, per_token, *, mask=None, weights=None, num_items="batch") -> torch.Tensor:
        """`reduce_loss` of per-token values over `mask` (default: the completion mask),
        normalised by the whole batch's global count unless `num_items` is given."""
        n = self.num_items() if num_items == "batch" else num_items
        m = self.mask if mask is None else mask
        return reduce_loss(per_token, m, weights=weights, reduction=self.reduction, num_items=n)


@dataclass
class MethodContext:
    """What a method is built with: the run's config, task, tokenizer, teacher, the number of
    processes, and for methods that act on the run itself (weight extrapolation, adapters,
    validation-gated steps) the student network and the held-out evaluation."""

    cfg: Any
    task: Any
    tokenizer: Any
    teacher: Any = None
    world: int = 1
    student: Any = None
    evaluate: Callable[..., dict] | None = None


class Method:
    """One training method. Subclass it, set `name`, implement `loss`; register the class in
    `sdtheory.lm.methods.REGISTRY` (one line). See CONTRIBUTING.md, "Adding a method"."""

    name: ClassVar[str] = ""
    Config: ClassVar[type | None] = None  # the method's own options (a frozen dataclass)
    # "self" (privileged view), "reference" (student's prompt), "model" (separate network) or None
    teacher_kind: ClassVar[str | None] = "self"
    default_weights: ClassVar[tuple[float, float]] = (1.0, 0.0)  # (distill, grpo)
    default_beta: ClassVar[float] = 0.5  # JSD beta when --beta is not given
    min_k: ClassVar[int] = 1  # fewest samples per problem
    needs_distill: ClassVar[bool] = True  # False: distill_weight 0 is allowed (GRPO only)
    mixes_grpo: ClassVar[bool] = False  # True: grpo_weight adds the GRPO surrogate

    def __init__(self, ctx: MethodContext):
        self.ctx, self.cfg, self.teacher = ctx, ctx.cfg, ctx.teacher
        self.options = ctx.cfg.options

    # --- what the method needs (read by the trainer before building it) --------------------
    @classmethod
    def weights(cls, cfg) -> tuple[float, float]:
        """(distill_weight, grpo_weight): the flags, or the method's defaults."""
        d, g = cfg.loss.distill_weight, cfg.loss.grpo_weight
        return (
            float(cls.default_weights[0] if d is None else d),
            float(cls.default_weights[1] if g is None else g),
        )

    @classmethod
    def needs_teacher(cls, cfg) -> str | None:
        """The teacher to build (`"self"`, `"reference"`, `"model"`) or `None` (no distillation
        term)."""
        return cls.teacher_kind if cls.weights(cfg)[0] > 0 else None

    @classmethod
    def check(cls, cfg) -> None:
        """Checks across config levels (each config checks its own fields)."""
        d, g = cls.weights(cfg)
        if d + g == 0:
            raise ValueError(f"distill_weight and grpo_weight must not both be 0 for {cls.name}")
        if d == 0 and cls.needs_distill:
            raise ValueError(f"distill_weight must be > 0 for {cls.name}, got 0")
        if g > 0 and not cls.mixes_grpo:
            raise ValueError(f"grpo_weight must be 0 for {cls.name} (it has no GRPO term), got {g}")
        if cfg.run.k < max(cls.min_k, 2 if g > 0 else 1):
            why = "pass rates or siblings" if cls.min_k > 1 else "group-relative advantages"
            raise ValueError(f"k must be >= 2 for {cls.name} ({why}), got {cfg.run.k}")

    # --- the step ----------------------------------------------------------------------------
    def collect(self, sources, problems: list, step: int):
        """Rollouts of this step: by default `k` on-policy samples per problem."""
        return sources.policy(problems)

    def loss(self, batch: StepBatch) -> tuple[torch.Tensor, dict]:
        """The scalar loss of this process's share of the step, and metrics to log."""
        raise NotImplementedError

    def after_step(self, batch: StepBatch, metrics: dict) -> dict:
        """After the optimiser step, with the step's global metrics; returns more metrics."""
        return {}

    def param_groups(self) -> list[dict]:
        """Extra optimiser parameter groups owned by the method (default: none)."""
        return []

    # --- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None
