"""Teachers that score a student's completion tokens: privileged-context self-teachers and GKD.

A teacher maps a batch of rollouts (student prompts + completion tokens) to teacher logits at
the completion positions, always without gradient:

* `SelfTeacher` -- the student's own network after a prompt that adds a privileged view of the
  problem (answer, worked solution, or a partial solution), OPSD-style [code: siyan-zhao/OPSD]:

  - `mode="fixed"`: the frozen initial weights (a copy taken at construction);
  - `mode="ema"`: an exponential moving average
    $\\theta_T \\leftarrow (1-r)\\,\\theta_T + r\\,\\theta_S$ after each
    optimiser step (rate $r$, SDPO's `teacher_update_rate` convention [code]);
  - `mode="live"`: the current student weights under `torch.no_grad`.

* `ModelTeacher` -- a separate teacher network (GKD [paper: Agarwal et al. 2024]) that by default
  sees the same prompt as the student.

The completion block is passed through unchanged (token ids, not text), so the teacher scores
exactly the tokens the student sampled; only the prompt block differs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from .rollout import completion_hidden, completion_logits
from .tasks import Problem, Task, chat_prompt_ids

__all__ = ["ModelTeacher", "SelfTeacher", "TEACHER_MODES"]

TEACHER_MODES = ("fixed", "ema", "live")


def _frozen_copy(model):
    twin = copy.deepcopy(model)
    twin.eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


class SelfTeacher:
    """The student's network conditioned on a privileged view of each problem.

    Args:
        student: the student model (unwrapped; for `live` it is used directly).
        tokenizer: the shared tokenizer (chat template).
        task: supplies `teacher_messages(problem, view, rho)`.
        mode: `"fixed"`, `"ema"` or `"live"`.
        view: privileged view, one of `sdtheory.lm.tasks.VIEWS`.
        rho: fraction of solution steps revealed by the `partial` view.
        ema_rate: EMA rate $r \\in (0, 1]$ (only for `mode="ema"`).
    """

    def __init__(
        self,
        student,
        tokenizer,
        task: Task,
        *,
        mode: str = "fixed",
        view: str = "solution",
        rho: float = 0.5,
        ema_rate: float = 0.05,
    ):
        if mode not in TEACHER_MODES:
            raise ValueError(f"mode must be one of {TEACHER_MODES}, got {mode!r}")
        if not (0.0 < float(ema_rate) <= 1.0):
            raise ValueError(f"ema_rate must lie in (0, 1], got {ema_rate!r}")
        self.mode, self.view, self.rho, self.ema_rate = mode, view, float(rho), float(ema_rate)
        self.tokenizer, self.task = tokenizer, task
        self.student = student
        self.model = student if mode == "live" else _frozen_copy(student)
        task.privileged_view(Problem("q", "0"), view, rho)  # validates view and rho

    def prompts(self, problems: Sequence[Problem]) -> list[list[int]]:
        """Teacher prompt ids: question + privileged view, through the chat template."""
        return [
            chat_prompt_ids(self.tokenizer, self.task.teacher_messages(p, self.view, self.rho))
            for p in problems
        ]

    @torch.no_grad()
    def logits(
        self, problems: Sequence[Problem], completions: torch.Tensor, completion_mask: torch.Tensor
    ) -> torch.Tensor:
        """Teacher logits `(N, T, V)` on the completion tokens (row i scores problem i's prompt)."""
        was_training = self.model.training
        self.model.eval()
        try:
            return completion_logits(
                self.model, self.prompts(problems), completions, completion_mask
            )
        finally:
            self.model.train(was_training)

    @torch.no_grad()
    def hidden(
        self, problems: Sequence[Problem], completions: torch.Tensor, completion_mask: torch.Tensor
    ) -> torch.Tensor:
        """Teacher final hidden states `(N, T, H)` on the completion tokens (for fused losses)."""
        was_training = self.model.training
        self.model.eval()
        try:
            return completion_hidden(
                self.model, self.prompts(problems), completions, completion_mask
            )
        finally:
            self.model.train(was_training)

    @property
    def lm_head_weight(self) -> torch.Tensor:
        """The teacher's output embedding `(V, H)`."""
        return self.model.get_output_embeddings().weight

    @torch.no_grad()
    def update(self, student=None) -> None:
        """After an optimiser step: EMA teachers move toward the student; others do nothing."""
        if self.mode != "ema":
            return
        src = self.student if student is None else student
        for t, s in zip(self.model.parameters(), src.parameters(), strict=True):
            t.lerp_(s.detach(), self.ema_rate)

    def state_dict(self) -> dict:
        """Teacher weights (fixed/EMA) for exact resume; empty for `live`."""
        return {} if self.mode == "live" else {"model": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.mode != "live":
            self.model.load_state_dict(state["model"])


class ModelTeacher:
    """A separate teacher network (GKD); frozen.

    Args:
        model: the teacher model (same tokenizer/vocabulary as the student).
        tokenizer: the shared tokenizer.
        task: used for the prompt; the teacher sees `task.student_messages(problem)` unless
            `view` is given, in which case it sees `task.teacher_messages(problem, view, rho)`.
    """

    def __init__(self, model, tokenizer, task: Task, *, view: str | None = None, rho: float = 0.5):
        self.model = (
            _frozen_copy(model) if any(p.requires_grad for p in model.parameters()) else model
        )
        self.model.eval()
        self.tokenizer, self.task, self.view, self.rho = tokenizer, task, view, float(rho)
        self.mode = "model"

    def prompts(self, problems: Sequence[Problem]) -> list[list[int]]:
        if self.view is None:
            return [
                chat_prompt_ids(self.tokenizer, self.task.student_messages(p)) for p in problems
            ]
        return [
            chat_prompt_ids(self.tokenizer, self.task.teacher_messages(p, self.view, self.rho))
            for p in problems
        ]

    @torch.no_grad()
    def logits(self, problems, completions, completion_mask) -> torch.Tensor:
        return completion_logits(self.model, self.prompts(problems), completions, completion_mask)

    @torch.no_grad()
    def hidden(self, problems, completions, completion_mask) -> torch.Tensor:
        return completion_hidden(self.model, self.prompts(problems), completions, completion_mask)

    @property
    def lm_head_weight(self) -> torch.Tensor:
        return self.model.get_output_embeddings().weight

    def update(self, student=None) -> None:
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None
