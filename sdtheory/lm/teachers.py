"""Teachers score a student's completion tokens after their own prompt, without gradient.

* `SelfTeacher`: the student's own network after a prompt that adds a privileged view of the
  problem (answer, worked solution, or a partial solution), OPSD-style [code: siyan-zhao/OPSD]:

  - `mode="fixed"`: the frozen initial weights (a copy taken at construction);
  - `mode="ema"`: an exponential moving average
    $\\theta_T \\leftarrow (1-r)\\,\\theta_T + r\\,\\theta_S$ after each
    optimiser step (rate $r$, SDPO's `teacher_update_rate` convention [code]);
  - `mode="live"`: the current student weights under `torch.no_grad`;

  a fixed or EMA teacher can also be moved by its method (`SelfTeacher.blend`: periodic
  re-synchronisation or EMA schedules of their own, e.g. SD-Zero, UniSD).

  The kind `"reference"` is the same network under the student's own prompt (no privileged
  view): CurioSFT's reference copy, or the base of prompts a method passes per batch
  (Skill-SD's skill-conditioned prompt).

  With a LoRA student (`sdtheory.lm.lora`) no copy is taken: `fixed` is the same network with
  its adapters disabled (exactly the base model), `ema` keeps an EMA of the adapters only, and
  `blend` moves adapter tensors of the teacher's own (a fixed teacher's start at $B = 0$: the
  base model).

* `ModelTeacher`: a separate teacher network (GKD [paper: Agarwal et al. 2024], TAID) that by
  default sees the same prompt as the student; it may be any local checkpoint with its own chat
  template, but must share the student's vocabulary (`check_same_vocabulary`).

This module is also the one home of the teacher prompts: `privileged_messages` (question plus
any privileged text), `view_messages` (question plus a task view), `reprompt_messages`
(SDPO's question plus a successful attempt and/or feedback), `skill_messages` (the student's
prompt plus retrieved skills, Skill-SD) and `revision_prompt_ids` (SD-Zero's reviser context:
the student's prompt, its own attempt and an outcome cue, as token ids). `Teacher.logits/hidden`
take `messages=` (or `prompt_ids=`) to score under any of them; methods never touch the
teacher's network. The
completion block is passed through unchanged (token ids, not text), so the teacher scores
exactly the tokens the student sampled; only the prompt block differs.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Sequence

import torch

from .lora import adapter_parameters, base_weights, is_lora, swapped_adapters
from .models import build_model
from .rollout import completion_hidden, completion_logits
from .tasks import ANSWER_FORMAT, Problem, Task, chat_prompt_ids

__all__ = [
    "REPROMPT_OUTRO",
    "TEACHER_INTRO",
    "TEACHER_MODES",
    "TEACHER_OUTRO",
    "ModelTeacher",
    "SelfTeacher",
    "Teacher",
    "REVISION_CUES",
    "check_same_vocabulary",
    "make_teacher",
    "privileged_messages",
    "reprompt_messages",
    "revision_prompt_ids",
    "skill_messages",
    "view_messages",
]

TEACHER_MODES = ("fixed", "ema", "live")
TEACHER_INTRO = "Here is privileged information about this problem:"
TEACHER_OUTRO = (
    "Use it to reason step by step in your own words and reach the same final answer. "
    "Do not mention that you were given it."
)
REPROMPT_OUTRO = "Correctly solve the original question."  # SDPO's reprompt template [code]
SKILL_INTRO = "Skills learned from earlier attempts at tasks like this one:"  # ours (Skill-SD)
# SD-Zero's outcome cues P_r [code: princeton-pli/Self-Distillation-Zero@fdaeb0b,
# self-distillation/nemo_rl/algorithms/distillation.py, `_P_R_PHRASES["qwen"]`]
REVISION_CUES = {
    1: "Let me rephrase the above solution.",
    0: "Wait, this response is wrong. Let me correct it.",
}


def privileged_messages(problem: Problem, info: str) -> list[dict]:
    """The privileged-context prompt: question, answer format, then `info` (any text)."""
    content = f"{problem.question}\n{ANSWER_FORMAT}\n\n{TEACHER_INTRO}\n{info}\n\n{TEACHER_OUTRO}"
    return [{"role": "user", "content": content}]


def view_messages(task: Task, problem: Problem, view: str = "solution", rho: float = 0.5):
    """`privileged_messages` with a task view: `answer`, `solution` or `partial` (`rho`)."""
    return privileged_messages(problem, task.privileged_view(problem, view, rho))


def reprompt_messages(
    problem: Problem, demonstration: str | None, feedback: str | None = None
) -> list[dict]:
    """SDPO reprompt [code: `"{prompt}{solution}{feedback}\\n\\nCorrectly solve the original
    question."`]: the question, a successful attempt and/or feedback, then the instruction.
    Our wording of the section headers."""
    parts = [f"{problem.question}\n{ANSWER_FORMAT}"]
    if demonstration is not None:
        parts.append(f"Correct solution:\n{demonstration.strip()}")
    if feedback:
        parts.append(f"Feedback on a previous attempt:\n{feedback}")
    parts.append(REPROMPT_OUTRO)
    return [{"role": "user", "content": "\n\n".join(parts)}]


def skill_messages(task: Task, problem: Problem, skills: Sequence[str]) -> list[dict]:
    """Skill-SD's teacher prompt: the student's own messages with the retrieved skills appended
    to the last one, one per line (the student never sees them) [paper: Skill-SD abstract,
    "skills serve as dynamic privileged information conditioning only the teacher"; wording
    ours]. No skills: the student's prompt unchanged."""
    msgs = [dict(m) for m in task.student_messages(problem)]
    if skills:
        lines = "\n".join(f"- {s}" for s in skills)
        msgs[-1]["content"] = f"{msgs[-1]['content']}\n\n{SKILL_INTRO}\n{lines}"
    return msgs


def revision_prompt_ids(tokenizer, prompt_ids, attempt_ids, reward: float) -> list[int]:
    """SD-Zero's reviser context as token ids: the student's prompt, its attempt, then
    `"\\n\\n" + P_r + "\\n\\n"` inside the same assistant turn, `P_r` the cue of the attempt's
    binary reward [code: `chat(x) + y + "\\n\\n" + P_r + "\\n\\n"`, reward > 0.5 is correct].

    `attempt_ids` are the attempt's tokens without its end-of-turn token (ours: the cue then
    continues the same turn). The reviser's answer (a revision, or the attempt re-scored as a
    teacher) follows these ids.
    """
    cue = REVISION_CUES[1 if float(reward) > 0.5 else 0]
    delim = tokenizer(f"\n\n{cue}\n\n", add_special_tokens=False)["input_ids"]
    return [*map(int, prompt_ids), *map(int, attempt_ids), *map(int, delim)]


def _adapter_copy(model, *, zero_b: bool = False) -> dict[str, torch.nn.Parameter]:
    """Frozen copies of `model`'s adapter tensors (with `zero_b`, LoRA's B set to 0: the
    adapters then add nothing, so they compute the base model)."""
    return {
        n: torch.nn.Parameter(
            torch.zeros_like(p) if zero_b and "lora_B" in n else p.detach().clone(),
            requires_grad=False,
        )
        for n, p in adapter_parameters(model).items()
    }


def _frozen_copy(model):
    twin = copy.deepcopy(model)
    twin.eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


class Teacher:
    """Scores completions after its prompt (eval mode, no gradient); base of both teachers.

    Args:
        model: the network that scores.
        tokenizer: the shared tokenizer (chat template).
        task: supplies the student prompt and the privileged views.
        view: the privileged view of the default prompt (`None`: the student's prompt).
        rho: fraction of solution steps revealed by the `partial` view.
        system: the system message of every prompt (`None`: the chat template's default).
    """

    mode = "model"

    def __init__(self, model, tokenizer, task: Task, *, view=None, rho=0.5, system=None):
        self.model, self.tokenizer, self.task = model, tokenizer, task
        self.view, self.rho, self.system = view, float(rho), system
        if view is not None:
            task.privileged_view(Problem("q", "0"), view, rho)  # validates view and rho
        self.seconds = 0.0  # time spent scoring (the trainer reports it as time_teacher)

    def messages(self, problem: Problem) -> list[dict]:
        """The teacher's own prompt for `problem`."""
        if self.view is None:
            return self.task.student_messages(problem)
        return view_messages(self.task, problem, self.view, self.rho)

    def prompts(self, problems: Sequence[Problem], messages=None) -> list[list[int]]:
        """Prompt ids per row: `messages[i]` if given, else the teacher's own prompt."""
        if messages is None:
            messages = [self.messages(p) for p in problems]
        elif len(messages) != len(problems):
            raise ValueError(f"messages has {len(messages)} rows, problems {len(problems)}")
        return [chat_prompt_ids(self.tokenizer, m, system=self.system) for m in messages]

    def weights(self) -> contextlib.AbstractContextManager:
        """Context in which `self.model` computes with the teacher's weights (LoRA teachers
        switch adapters here; others need nothing)."""
        return contextlib.nullcontext()

    @torch.no_grad()
    def _score(self, fn, problems, completions, completion_mask, messages, prompt_ids):
        t0, was_training = time.perf_counter(), self.model.training
        self.model.eval()
        try:
            if prompt_ids is None:
                prompts = self.prompts(problems, messages)  # the k rows of a problem share one
            elif messages is not None:
                raise ValueError("give messages or prompt_ids, not both")
            elif len(prompt_ids) != len(problems):
                raise ValueError(f"prompt_ids has {len(prompt_ids)} rows, problems {len(problems)}")
            else:
                prompts = [list(p) for p in prompt_ids]
            with self.weights():
                return fn(self.model, prompts, completions, completion_mask, share_prompts=True)
        finally:
            self.model.train(was_training)
            self.seconds += time.perf_counter() - t0

    def logits(
        self, problems, completions, completion_mask, messages=None, prompt_ids=None
    ) -> torch.Tensor:
        """Teacher logits `(N, T, V)` on the completion tokens (row i after row i's prompt:
        the teacher's own, `messages[i]`, or the token ids `prompt_ids[i]`)."""
        return self._score(
            completion_logits, problems, completions, completion_mask, messages, prompt_ids
        )

    def hidden(
        self, problems, completions, completion_mask, messages=None, prompt_ids=None
    ) -> torch.Tensor:
        """Teacher final hidden states `(N, T, H)` on the completion tokens (fused losses)."""
        return self._score(
            completion_hidden, problems, completions, completion_mask, messages, prompt_ids
        )

    @property
    def lm_head_weight(self) -> torch.Tensor:
        """The teacher's output embedding `(V, H)`."""
        return self.model.get_output_embeddings().weight

    def update(self, student=None) -> None:
        """After an optimiser step (EMA teachers move toward the student)."""
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None


class SelfTeacher(Teacher):
    """The student's network conditioned on a privileged view of each problem.

    Args:
        student: the student model (unwrapped; for `live` it is used directly).
        tokenizer, task, rho, system: as in `Teacher`.
        mode: `"fixed"`, `"ema"` or `"live"`.
        view: privileged view, one of `sdtheory.lm.tasks.VIEWS`.
        ema_rate: EMA rate $r \\in (0, 1]$ (only for `mode="ema"`).
    """

    def __init__(
        self,
        student,
        tokenizer,
        task: Task,
        *,
        mode="fixed",
        view="solution",
        rho=0.5,
        ema_rate=0.05,
        system=None,
    ):
        if mode not in TEACHER_MODES:
            raise ValueError(f"mode must be one of {TEACHER_MODES}, got {mode!r}")
        if not (0.0 < float(ema_rate) <= 1.0):
            raise ValueError(f"ema_rate must lie in (0, 1], got {ema_rate!r}")
        self.lora = is_lora(student)
        model = student if mode == "live" or self.lora else _frozen_copy(student)
        super().__init__(model, tokenizer, task, view=view, rho=rho, system=system)
        self.mode, self.ema_rate, self.student = mode, float(ema_rate), student
        # LoRA: the teacher's own adapter tensors. An EMA teacher starts from the student's; a
        # fixed one is the base model (adapters off) until a method moves it (`blend`).
        self.ema_adapters: dict[str, torch.nn.Parameter] = {}
        if self.lora and mode == "ema":
            self.ema_adapters = _adapter_copy(student)

    def weights(self) -> contextlib.AbstractContextManager:
        if not self.lora or self.mode == "live":
            return contextlib.nullcontext()
        if not self.ema_adapters:  # a fixed LoRA teacher never moved: the base model
            return base_weights(self.model)
        return swapped_adapters(self.model, self.ema_adapters)

    @torch.no_grad()
    def update(self, student=None) -> None:
        if self.mode != "ema":
            return
        src = self.student if student is None else student
        if self.lora:
            live = adapter_parameters(src)
            for name, t in self.ema_adapters.items():
                t.lerp_(live[name].detach(), self.ema_rate)
            return
        for t, s in zip(self.model.parameters(), src.parameters(), strict=True):
            t.lerp_(s.detach(), self.ema_rate)

    @torch.no_grad()
    def blend(self, student, rate: float) -> None:
        r"""Move the teacher now: $\theta_T \leftarrow (1-r)\,\theta_T + r\,\theta_S$; `rate=1`
        re-synchronises it to the student. For methods with a schedule of their own (SD-Zero's
        periodic re-synchronisation, UniSD's EMA every N steps); not for `mode="live"`."""
        if self.mode == "live":
            raise ValueError("blend: a live teacher is the student itself (use fixed or ema)")
        if not 0.0 < float(rate) <= 1.0:
            raise ValueError(f"rate must lie in (0, 1], got {rate!r}")
        if self.lora:  # the teacher's adapters; a never-moved fixed teacher is B = 0 (the base)
            live = adapter_parameters(student)
            if not self.ema_adapters:
                self.ema_adapters = _adapter_copy(student, zero_b=True)
            for name, t in self.ema_adapters.items():
                if float(rate) == 1.0:
                    t.copy_(live[name].detach())
                else:
                    t.lerp_(live[name].detach(), float(rate))
            return
        for t, s in zip(self.model.parameters(), student.parameters(), strict=True):
            if float(rate) == 1.0:
                t.copy_(s.detach())  # exactly the student's weights
            else:
                t.lerp_(s.detach(), float(rate))

    def state_dict(self) -> dict:
        """Teacher weights for exact resume: the EMA (of the adapters, with LoRA) or the fixed
        copy; empty for `live` and for a fixed LoRA teacher (the frozen base weights)."""
        if self.lora:
            return {"adapters": {n: t.detach().clone() for n, t in self.ema_adapters.items()}}
        return {} if self.mode == "live" else {"model": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.lora:
            saved = state["adapters"]
            if saved and not self.ema_adapters:  # a fixed teacher that had been moved
                self.ema_adapters = _adapter_copy(self.student)
            for name, t in self.ema_adapters.items():
                t.data.copy_(saved[name])
        elif self.mode != "live":
            self.model.load_state_dict(state["model"])


class ModelTeacher(Teacher):
    """A separate, frozen teacher network (same tokenizer/vocabulary as the student); it sees
    the student's prompt unless `view` is given."""

    def __init__(self, model, tokenizer, task: Task, *, view=None, rho=0.5, system=None):
        if any(p.requires_grad for p in model.parameters()):
            model = _frozen_copy(model)
        model.eval()
        super().__init__(model, tokenizer, task, view=view, rho=rho, system=system)


def _describe(name: str, tokenizer, model) -> str:
    src = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    rows = model.get_output_embeddings().weight.shape[0] if model is not None else "?"
    return f"{name!r} (tokenizer {src!r}, {len(tokenizer)} tokens, {rows} output rows)"


def check_same_vocabulary(
    student_tok, teacher_tok, *, student=None, teacher=None, names=("student", "teacher")
) -> None:
    """Refuse a separate teacher whose tokenizer (or output layer) differs from the student's.

    The teacher scores the student's sampled token ids, so both must map ids to the same
    tokens (`get_vocab()` equal) and produce logits over the same number of rows. The error
    names both tokenizers.
    """
    same = teacher_tok is student_tok or teacher_tok.get_vocab() == student_tok.get_vocab()
    if same and student is not None and teacher is not None:
        rows = [m.get_output_embeddings().weight.shape[0] for m in (student, teacher)]
        same = rows[0] == rows[1]
    if not same:
        raise ValueError(
            f"teacher_model: the teacher {_describe(names[1], teacher_tok, teacher)} does not "
            f"share the vocabulary of the student {_describe(names[0], student_tok, student)}; "
            "a separate teacher scores the student's token ids, so both need one tokenizer"
        )


def make_teacher(
    kind, student, tokenizer, task, cfg, *, teacher_model=None, teacher_tokenizer=None, system=None
):
    """The teacher a method asks for: `"self"` (a `SelfTeacher` of the student, from
    `cfg.teacher`), `"reference"` (the same under the student's own prompt) or `"model"` (a
    `ModelTeacher`; built from `cfg.teacher.teacher_model` when `teacher_model` is not given,
    seeded with the run's seed + 1). A separate teacher renders its prompts with its own
    tokenizer's chat template (`teacher_tokenizer`, default the student's) and must share the
    student's vocabulary (`check_same_vocabulary`)."""
    tc, device = cfg.teacher, next(student.parameters()).device
    if kind in ("self", "reference"):
        return SelfTeacher(
            student,
            tokenizer,
            task,
            mode=tc.teacher_mode,
            view=tc.view if kind == "self" else None,
            rho=tc.rho,
            ema_rate=tc.ema_rate,
            system=system,
        )
    if kind != "model":
        raise ValueError(f"kind must be 'self', 'reference' or 'model', got {kind!r}")
    if teacher_model is None:
        r = cfg.run
        teacher_model, teacher_tokenizer = build_model(
            tc.teacher_model, hidden_size=r.hidden_size, num_layers=r.num_layers, seed=r.seed + 1
        )
    teacher_tokenizer = teacher_tokenizer or tokenizer
    check_same_vocabulary(
        tokenizer,
        teacher_tokenizer,
        student=student,
        teacher=teacher_model,
        names=(cfg.run.model, tc.teacher_model),
    )
    return ModelTeacher(teacher_model.to(device), teacher_tokenizer, task, system=system)
