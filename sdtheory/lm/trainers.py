"""One on-policy loop for OPSD, GKD and GRPO (alone or mixed with distillation).

Each step: sample `k` completions for each of `batch_problems` training problems from the
student (`sdtheory.lm.rollout.sample`, KV cache) -> verify them (rewards in {0, 1}) -> score the
completion tokens with the teacher (`sdtheory.lm.teachers`) -> build the loss from
`sdtheory.lm.losses` on the completion tokens only -> one optimiser step.

* **OPSD** [code: siyan-zhao/OPSD, methods spec 1.1]: self-teacher = the same network after a prompt
  that adds the worked solution; fixed (initial weights, the recommended default), EMA or live;
  full-vocabulary generalized JSD with $\\beta=0.5$ (teacher as $p$) at a shared temperature, or a
  sampled-token estimator (`estimator="advantage"` is the tinker/OPSD sampled reverse KL).
* **GKD** [paper: Agarwal et al. 2024, spec 1.14]: a separate teacher; with probability $\\lambda$
  a step trains on student samples, otherwise on the dataset's worked solutions; JSD($\\beta$).
* **GRPO**: group-relative advantages $A_i = (r_i - \\bar r_g)/(s_g + \\epsilon)$ over the $k$
  samples of a problem ($s_g$ the sample std; `scale_rewards=False` drops it), per-token loss
  $-A_i\\,\\rho_t$ with $\\rho_t = \\pi_\\theta/\\mathrm{sg}(\\pi_\\theta)$: one gradient step per
  generation batch, so the clipped surrogate's ratio is 1 and clipping never binds. Mixed runs
  add `distill_weight` times the distillation loss.

Full-distribution losses are computed by default from the final hidden states with
`sdtheory.lm.losses.fused_linear_distillation_loss` (token chunks; same value as the plain
`token_divergence` on logits, about 2x faster on CPU at SmolLM2's 49k vocabulary and without the
$(N, T, V)$ logits); `fused_loss=False` uses the plain path.

Losses are normalised by the *global* batch (tokens for `token_mean`, sequences for
`sequence_mean`) and multiplied by the number of processes, so that data-parallel training
(`accelerate launch`, gradients averaged over ranks) takes the same step as one process with the
whole batch. All randomness is a function of `(seed, step, global row)`: data order, samples, the
GKD on/off-policy coin. A checkpoint holds model, optimiser, LR schedule, teacher weights, step
and data position (and the torch RNG state), so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .methods import NEW_METHODS, MethodState, after_step, kl_direction, method_loss
from .rollout import Rollouts, completion_hidden, completion_logits, pass_rates, sample, stop_ids
from .tasks import VIEWS, Problem, Task, chat_prompt_ids, make_task
from .teachers import TEACHER_MODES, ModelTeacher, SelfTeacher

__all__ = ["METHODS", "TrainConfig", "Trainer", "build_model", "grpo_advantages", "train"]

METHODS = ("opsd", "gkd", "grpo", *NEW_METHODS)
SELF_TEACHER_METHODS = ("opsd", "paced", "sdpo", "srpo", "avsd", "atesd")


def _h(text: str, **kw):
    return field(metadata={"help": text}, **kw)


@dataclass(frozen=True)
class TrainConfig:
    """Configuration of one on-policy training run (every field is a `sdtheory train` flag)."""

    method: str = _h(
        "opsd (self-teacher with privileged view), gkd (separate teacher), grpo, paced "
        "(OPSD with PACED pass-rate weights), taid (separate teacher, interpolated target), "
        "sdpo (self-teacher sees a successful sibling), srpo (correct -> GRPO, failed -> SDPO), "
        "avsd (multi-view consensus target) or atesd (learned solution-prefix exposure); "
        "see docs/lm/methods.md",
        default="opsd",
    )
    model: str = _h(
        "student: smollm2 (cached SmolLM2-135M-Instruct), tiny (tiny tokenizer + "
        "small Llama, for tests), smollm2-small (SmolLM2 tokenizer + small Llama), "
        "or a local checkpoint directory",
        default="tiny",
    )
    hidden_size: int = _h("width of tiny/smollm2-small models", default=64)
    num_layers: int = _h("depth of tiny/smollm2-small models", default=2)
    teacher_model: str = _h(
        "GKD teacher: smollm2, tiny (another random init), or a checkpoint directory",
        default="smollm2",
    )
    task: str = _h("chain_sum, basic_arithmetic, gsm_symbolic or champ", default="chain_sum")
    n_train: int = _h("number of training problems", default=256)
    n_eval: int = _h("number of held-out evaluation problems (disjoint from training)", default=32)
    steps: int = _h("optimiser steps", default=20)
    batch_problems: int = _h("problems per step (global, over all processes)", default=4)
    k: int = _h("samples per problem (GRPO group size)", default=4)
    max_new_tokens: int = _h("maximum completion length", default=48)
    temperature: float = _h("sampling temperature (0 = greedy)", default=1.0)
    top_p: float = _h("nucleus sampling mass", default=1.0)
    lr: float = _h("peak learning rate (AdamW)", default=1e-5)
    weight_decay: float = _h("AdamW weight decay", default=0.0)
    warmup_steps: int = _h("linear warm-up steps", default=0)
    schedule: str = _h("LR schedule after warm-up: constant, linear or cosine", default="constant")
    grad_clip: float = _h("max gradient norm (0 = no clipping)", default=1.0)
    distill_weight: float | None = _h(
        "weight of the distillation loss (default 1 for opsd/gkd, 0 for grpo)", default=None
    )
    grpo_weight: float | None = _h(
        "weight of the GRPO loss (default 1 for grpo, 0 otherwise)", default=None
    )
    divergence: str = _h("forward_kl, reverse_kl, jsd, skew_kl or tvd (teacher = p)", default="jsd")
    beta: float = _h("JSD beta (0 forward KL, 1 reverse KL)", default=0.5)
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
        "full-distribution losses from hidden states in token chunks "
        "(fused_linear_distillation_loss: same value, less memory, faster)",
        default=True,
    )
    teacher_mode: str = _h("self-teacher weights: fixed (initial), ema or live", default="fixed")
    ema_rate: float = _h("EMA teacher rate r: teacher <- (1-r) teacher + r student", default=0.05)
    view: str = _h(
        "privileged view of the self-teacher: answer, solution or partial", default="solution"
    )
    rho: float = _h("fraction of solution steps the partial view reveals", default=0.5)
    gkd_lambda: float = _h("GKD: probability that a step trains on student samples", default=1.0)
    scale_rewards: bool = _h("GRPO: divide advantages by the group std", default=True)
    eval_every: int = _h("evaluate every N steps (0 = only at the start and end)", default=10)
    eval_k: int = _h("samples per held-out problem for avg@k accuracy", default=4)
    eval_temperature: float = _h("sampling temperature at evaluation", default=1.0)
    save_every: int = _h("checkpoint every N steps (0 = only at the end)", default=0)
    out: str = _h("run directory (metrics.jsonl, eval.csv, checkpoint/)", default="runs/train")
    resume: bool = _h("resume from OUT/checkpoint if it exists", default=False)
    seed: int = _h("seed of data order, sampling and initialisation", default=0)
    threads: int = _h("torch CPU threads (0 = leave as is)", default=0)
    progress: bool = _h("show a progress bar", default=True)
    # --- method family (sdtheory.lm.methods; docs/lm/methods.md) ---
    kl_switch_step: int = _h(
        "two-stage KL (PACED): forward KL before this step, reverse KL from it on "
        "(-1 = off: use --divergence); applies to opsd, gkd, paced, sdpo, srpo, atesd",
        default=-1,
    )
    paced_alpha: float = _h("PACED: exponent a of the weight p^a (1-p)^b", default=1.0)
    paced_beta: float = _h("PACED: exponent b of the weight p^a (1-p)^b", default=1.0)
    paced_memory: float = _h(
        "PACED (ours): pass-rate estimate = memory * previous + (1 - memory) * this step's "
        "k rollouts (0 = current rollouts only)",
        default=0.0,
    )
    paced_normalize: bool = _h(
        "PACED (ours): divide the per-rollout weights by their batch mean", default=True
    )
    taid_t_start: float = _h("TAID: initial interpolation t", default=0.4)
    taid_t_end: float = _h("TAID: final interpolation t", default=1.0)
    taid_alpha: float = _h("TAID: t learning rate (official default 5e-4)", default=5e-4)
    taid_beta: float = _h("TAID: momentum coefficient", default=0.99)
    taid_adaptive: bool = _h("TAID: adaptive t (false = linear schedule)", default=True)
    is_clip: float = _h("SDPO/SRPO: clip of the importance ratio pi/pi_old", default=2.0)
    sdpo_feedback: bool = _h(
        "SDPO/SRPO (ours): failed rollouts also get a generic 'wrong answer' feedback line, so "
        "they have a teacher even without a successful sibling",
        default=False,
    )
    srpo_entropy_beta: float = _h(
        "SRPO: beta_H of the token weights exp(-beta_H H(teacher)) (normalised to mean 1)",
        default=1.0,
    )
    avsd_views: str = _h(
        "AVSD: comma-separated privileged views (answer, solution, partial)",
        default="solution,partial,answer",
    )
    atesd_hold: int = _h("ATESD (ours): steps each drawn rho is held (H)", default=4)
    atesd_gamma: float = _h("ATESD (ours): discount of the learning-progress reward", default=0.9)
    atesd_lr: float = _h("ATESD (ours): Adam learning rate of the exposure policy", default=0.05)
    atesd_hidden: int = _h("ATESD (ours): hidden width of the policy MLP", default=16)
    atesd_entropy_target: float = _h(
        "ATESD (ours): policy entropy above this is penalised", default=-1.0
    )
    atesd_entropy_coef: float = _h("ATESD (ours): weight of the entropy penalty", default=0.1)
    atesd_rho_min: float = _h("ATESD (ours): lower clip of the reveal ratio", default=0.0)
    atesd_rho_max: float = _h("ATESD (ours): upper clip of the reveal ratio", default=1.0)

    def __post_init__(self):
        def choice(name, options):
            if getattr(self, name) not in options:
                raise ValueError(f"{name} must be one of {options}, got {getattr(self, name)!r}")

        choice("method", METHODS)
        choice("schedule", ("constant", "linear", "cosine"))
        choice("divergence", ("forward_kl", "reverse_kl", "jsd", "skew_kl", "tvd"))
        choice("support", ("full", "teacher_topk", "student_topk_tail"))
        choice("estimator", ("", "k1", "k2", "k3", "advantage"))
        choice("reduction", ("token_mean", "sequence_mean", "sum"))
        choice("teacher_mode", TEACHER_MODES)
        choice("view", VIEWS)
        for name in ("steps", "batch_problems", "k", "max_new_tokens", "n_train", "eval_k"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("n_eval", "warmup_steps", "eval_every", "save_every", "topk", "threads"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("lr", "weight_decay", "grad_clip"):
            v = float(getattr(self, name))
            if not v >= 0 or math.isinf(v):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        for name in ("gkd_lambda", "rho", "beta", "atesd_gamma", "atesd_rho_min", "atesd_rho_max"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)!r}")
        if self.support != "full" and self.topk < 1:
            raise ValueError(f"topk must be >= 1 with support={self.support!r}, got {self.topk}")
        if self.method == "grpo" and self.k < 2 and self.weights[1] > 0:
            raise ValueError(f"k must be >= 2 for GRPO group-relative advantages, got {self.k}")
        if self.method in ("paced", "sdpo", "srpo") and self.k < 2:
            raise ValueError(
                f"k must be >= 2 for {self.method} (pass rates/siblings), got {self.k}"
            )
        for name in ("paced_alpha", "paced_beta", "srpo_entropy_beta", "atesd_entropy_coef"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.paced_memory < 1.0:
            raise ValueError(f"paced_memory must lie in [0, 1), got {self.paced_memory!r}")
        if not self.is_clip > 0:
            raise ValueError(f"is_clip must be > 0, got {self.is_clip!r}")
        for name in ("atesd_hold", "atesd_hidden"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.atesd_rho_min > self.atesd_rho_max:
            raise ValueError(
                f"atesd_rho_min ({self.atesd_rho_min}) must be <= atesd_rho_max ({self.atesd_rho_max})"
            )
        if self.kl_switch_step < -1:
            raise ValueError(f"kl_switch_step must be >= -1, got {self.kl_switch_step!r}")
        views = [v.strip() for v in self.avsd_views.split(",") if v.strip()]
        if not views or any(v not in VIEWS for v in views):
            raise ValueError(f"avsd_views must be a comma list of {VIEWS}, got {self.avsd_views!r}")
        from ..theory.taid import TAIDSchedule

        TAIDSchedule(self.taid_t_start, self.taid_t_end, self.taid_alpha, self.taid_beta)

    @property
    def weights(self) -> tuple[float, float]:
        """(distill_weight, grpo_weight) with the method defaults filled in."""
        d = (
            self.distill_weight
            if self.distill_weight is not None
            else (0.0 if self.method == "grpo" else 1.0)
        )
        g = (
            self.grpo_weight
            if self.grpo_weight is not None
            else (1.0 if self.method in ("grpo", "srpo") else 0.0)
        )
        if d < 0 or g < 0 or d + g == 0:
            raise ValueError(f"distill_weight and grpo_weight must be >= 0, not both 0: {d}, {g}")
        return float(d), float(g)


def build_model(name: str, *, hidden_size: int = 64, num_layers: int = 2, seed: int = 0):
    """`(model, tokenizer)` for a `TrainConfig.model` string."""
    from . import models

    if name == "smollm2":
        return models.load_smollm2()
    if name in ("tiny", "smollm2-small"):
        tok = models.tiny_tokenizer() if name == "tiny" else models.load_smollm2()[1]
        heads = max(1, hidden_size // 16)
        model = models.small_model(
            tok,
            hidden_size=hidden_size,
            num_layers=num_layers,
            num_heads=heads,
            num_kv_heads=1,
            seed=seed,
        )
        return model, tok
    if not Path(name).is_dir():
        raise ValueError(f"model must be smollm2, tiny, smollm2-small or a directory, got {name!r}")
    return models.from_pretrained(name)


def grpo_advantages(
    rewards: torch.Tensor, group: torch.Tensor, *, scale: bool = True, eps: float = 1e-4
) -> torch.Tensor:
    """Group-relative advantages $(r_i - \\bar r_g) / (s_g + \\epsilon)$, $s_g$ the sample std.

    Examples:
        >>> import torch
        >>> a = grpo_advantages(torch.tensor([1., 0., 0., 0.]), torch.tensor([0, 0, 1, 1]))
        >>> bool(torch.allclose(a, torch.tensor([0.7070, -0.7070, 0., 0.]), atol=1e-3))
        True
    """
    if rewards.shape != group.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and group {tuple(group.shape)} differ")
    n = int(group.max()) + 1
    r = rewards.double()
    cnt = torch.zeros(n, dtype=torch.float64).index_add_(0, group, torch.ones_like(r))
    mean = torch.zeros(n, dtype=torch.float64).index_add_(0, group, r) / cnt
    dev = r - mean[group]
    if not scale:
        return dev.float()
    var = torch.zeros(n, dtype=torch.float64).index_add_(0, group, dev**2) / (cnt - 1).clamp(min=1)
    return (dev / (var.sqrt()[group] + eps)).float()


def _schedule(cfg: TrainConfig):
    def factor(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        frac = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return (
            max(0.0, 1.0 - frac)
            if cfg.schedule == "linear"
            else 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))
        )

    return factor


class Trainer:
    """The on-policy loop (see the module docstring). `Trainer(cfg).train()` runs it.

    Args:
        cfg: the run configuration.
        model, tokenizer: an already built student (default: `build_model(cfg.model, ...)`).
        teacher_model: an already built GKD teacher (default: from `cfg.teacher_model`).
        task: an already built task (default: `make_task(cfg.task)`).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        model=None,
        tokenizer=None,
        teacher_model=None,
        task: Task | None = None,
    ):
        from accelerate import Accelerator

        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.acc = Accelerator(cpu=not torch.cuda.is_available())
        self.world, self.rank = self.acc.num_processes, self.acc.process_index
        if cfg.batch_problems % self.world:
            raise ValueError(
                f"batch_problems ({cfg.batch_problems}) must divide by the number of "
                f"processes ({self.world})"
            )
        if model is None:
            model, tokenizer = build_model(
                cfg.model, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers, seed=cfg.seed
            )
        self.tok = tokenizer
        self.task = task or make_task(cfg.task)
        self.train_set, self.eval_set = self.task.split(cfg.n_train, cfg.n_eval, seed=cfg.seed)
        model.to(self.acc.device)
        model.train()
        d_w, _ = cfg.weights
        self.teacher = None
        if d_w > 0:
            if cfg.method in ("gkd", "taid"):
                if teacher_model is None:
                    teacher_model, _ = build_model(
                        cfg.teacher_model,
                        hidden_size=cfg.hidden_size,
                        num_layers=cfg.num_layers,
                        seed=cfg.seed + 1,
                    )
                self.teacher = ModelTeacher(teacher_model.to(self.acc.device), tokenizer, self.task)
            else:
                self.teacher = SelfTeacher(
                    model,
                    tokenizer,
                    self.task,
                    mode=cfg.teacher_mode,
                    view=cfg.view,
                    rho=cfg.rho,
                    ema_rate=cfg.ema_rate,
                )
        self.method_state = MethodState(cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(cfg))
        self.model, self.opt = self.acc.prepare(model, opt)
        self.step = 0
        self.out = Path(cfg.out)
        self.stops, self.pad = stop_ids(tokenizer), tokenizer.pad_token_id
        if self.acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
        if cfg.resume and (self.out / "checkpoint" / "state.pt").is_file():
            self.load(self.out / "checkpoint")

    # --- data -------------------------------------------------------------------------------
    def batch_indices(self, step: int) -> list[int]:
        """Global training-problem indices of a step: epoch-wise permutations seeded by the seed."""
        n, b = len(self.train_set), self.cfg.batch_problems
        out = []
        for pos in range(step * b, (step + 1) * b):
            epoch, i = divmod(pos, n)
            perm = np.random.default_rng([self.cfg.seed, epoch]).permutation(n)
            out.append(int(perm[i]))
        return out

    def global_count(self, x) -> float:
        """A count summed over processes (a float)."""
        t = torch.as_tensor(x, dtype=torch.float64, device=self.acc.device).reshape(1)
        return float(self.acc.reduce(t, reduction="sum")[0] if self.world > 1 else t[0])

    @property
    def unwrapped(self):
        return self.acc.unwrap_model(self.model)

    def _student_prompts(self, problems: list[Problem]) -> list[list[int]]:
        return [chat_prompt_ids(self.tok, self.task.student_messages(p)) for p in problems]

    def _offpolicy(self, problems: list[Problem]) -> Rollouts:
        """Dataset completions (the worked solution, then end of turn) for GKD's (1-lambda) part."""
        rows = []
        for p in problems:
            text = p.solution or f"The answer is {p.answer}."
            ids = self.tok(text, add_special_tokens=False)["input_ids"]
            rows.append(list(ids)[: self.cfg.max_new_tokens - 1] + [self.tok.eos_token_id])
        width = max(map(len, rows))
        comp = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, r in enumerate(rows):
            comp[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = True
        dev = self.acc.device
        zeros = torch.zeros(comp.shape, device=dev)
        return Rollouts(
            self._student_prompts(problems),
            comp.to(dev),
            mask.to(dev),
            zeros,
            zeros,
            torch.arange(len(rows), device=dev),
        )

    # --- one step ---------------------------------------------------------------------------
    def train_step(self) -> dict:
        """One sample -> score -> loss -> update step; returns its metrics."""
        from . import losses

        cfg, step = self.cfg, self.step
        d_w, g_w = cfg.weights
        idx = self.batch_indices(step)
        per_rank = cfg.batch_problems // self.world
        lo = self.rank * per_rank
        local = idx[lo : lo + per_rank]
        problems = [self.train_set[i] for i in local]
        on_policy = (
            cfg.method != "gkd"
            or np.random.default_rng([cfg.seed, step, 1]).random() < cfg.gkd_lambda
        )
        t0 = time.perf_counter()
        self.model.eval()
        if on_policy:
            k = cfg.k
            row_seeds = [
                (step * cfg.batch_problems + lo + i) * k + j
                for i in range(per_rank)
                for j in range(k)
            ]
            ro = sample(
                self.unwrapped,
                self._student_prompts(problems),
                max_new_tokens=cfg.max_new_tokens,
                stop_token_ids=self.stops,
                pad_id=self.pad,
                temperature=cfg.temperature,
                top_p=cfg.top_p,
                seed=cfg.seed,
                row_seeds=row_seeds,
                k=k,
            )
        else:
            k = 1
            ro = self._offpolicy(problems)
        rows = [problems[int(g)] for g in ro.group]
        rewards = torch.tensor(
            [self.task.verify(t, p) for t, p in zip(ro.texts(self.tok), rows, strict=True)]
        )
        t1 = time.perf_counter()
        mask = ro.completion_mask
        new_method = cfg.method in NEW_METHODS
        distill = self.teacher is not None and d_w > 0 and not new_method
        fused = distill and cfg.fused_loss and not cfg.estimator
        if fused:
            teacher_out = self.teacher.hidden(rows, ro.completions, mask)
        elif distill:
            teacher_out = self.teacher.logits(rows, ro.completions, mask)
        t2 = time.perf_counter()

        # global normalisers (sum over ranks), so DDP averaging reproduces the full batch
        counts = torch.tensor(
            [mask.sum(), (mask.sum(-1) > 0).sum()], dtype=torch.float64, device=mask.device
        )
        counts = self.acc.reduce(counts, reduction="sum") if self.world > 1 else counts
        n_tok, n_seq = max(float(counts[0]), 1.0), max(float(counts[1]), 1.0)
        red, num = {
            "token_mean": ("sum", n_tok),
            "sequence_mean": ("sequence_mean", n_seq),
            "sum": ("sum", None),
        }[cfg.reduction]

        self.model.train()
        div_kw = dict(
            divergence=kl_direction(step, cfg.kl_switch_step, cfg.divergence),
            beta=cfg.beta,
            temperature=cfg.loss_temperature,
            support=cfg.support,
            k=cfg.topk or None,
        )
        metrics = {}
        if distill and cfg.kl_switch_step >= 0:
            metrics["divergence"] = div_kw["divergence"]
        if new_method:
            pass
        elif fused:
            hidden = completion_hidden(self.model, ro.prompts, ro.completions, mask)
            head = self.unwrapped.get_output_embeddings()
            l_d = losses.fused_linear_distillation_loss(
                hidden,
                head.weight,
                teacher_out,
                self.teacher.lm_head_weight,
                mask,
                reduction=red,
                num_items=num,
                **div_kw,
            )
            logits = head(hidden) if g_w > 0 else None
        else:
            logits = completion_logits(self.model, ro.prompts, ro.completions, mask)
        loss = torch.zeros((), device=mask.device)
        if new_method:
            loss, m_metrics = method_loss(self, ro, rows, rewards, local, red, num)
            metrics.update(m_metrics)
        elif fused:
            loss = loss + d_w * l_d
            metrics["distill_loss"] = float(l_d.detach())
        elif distill:
            teacher_logits = teacher_out
            if cfg.estimator:
                s_lp = torch.log_softmax(logits.float() / cfg.loss_temperature, -1)
                t_lp = torch.log_softmax(teacher_logits.float() / cfg.loss_temperature, -1)
                tokens = ro.completions.unsqueeze(-1)
                per_tok = losses.sampled_token_loss(
                    s_lp.gather(-1, tokens).squeeze(-1),
                    t_lp.gather(-1, tokens).squeeze(-1),
                    estimator=cfg.estimator,
                )
            else:
                per_tok = losses.token_divergence(logits, teacher_logits, **div_kw)
            l_d = losses.reduce_loss(per_tok, mask, reduction=red, num_items=num)
            loss = loss + d_w * l_d
            metrics["distill_loss"] = float(l_d.detach())
        if g_w > 0 and not new_method:
            adv = grpo_advantages(rewards, ro.group.cpu(), scale=cfg.scale_rewards).to(mask.device)
            logp = (
                torch.log_softmax(logits.float(), -1)
                .gather(-1, ro.completions.unsqueeze(-1))
                .squeeze(-1)
            )
            per_tok = -adv[:, None] * torch.exp(logp - logp.detach())
            l_g = losses.reduce_loss(per_tok, mask, reduction=red, num_items=num)
            loss = loss + g_w * l_g
            metrics["grpo_loss"] = float(l_g.detach())
        self.acc.backward(loss * self.world)
        grad_norm = float("nan")
        if cfg.grad_clip > 0:
            grad_norm = float(self.acc.clip_grad_norm_(self.model.parameters(), cfg.grad_clip))
        lr = self.sched.get_last_lr()[0]
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.sched.step()
        if self.teacher is not None:
            self.teacher.update(self.unwrapped)
        t3 = time.perf_counter()
        if new_method:
            metrics.update(after_step(self, metrics, float(rewards.mean()), self.step + 1))

        parts = [metrics.get("distill_loss", 0.0), metrics.get("grpo_loss", 0.0)]
        stats = torch.tensor(
            [
                float(loss.detach()),
                float(rewards.sum()),
                float(len(rewards)),
                float(mask.sum()),
                float(t1 - t0),
                float(t2 - t1),
                float(t3 - t2),
                *parts,
            ],
            dtype=torch.float64,
            device=mask.device,
        )
        pr = pass_rates(rewards, ro.group.cpu(), len(problems))
        if self.world > 1:
            stats = self.acc.reduce(stats, reduction="sum")
        for i, name in ((7, "distill_loss"), (8, "grpo_loss")):
            if name in metrics:  # the rank losses are partial sums of the global loss
                metrics[name] = float(stats[i])
        self.step += 1
        metrics.update(
            kind="train",
            step=self.step,
            loss=float(stats[0]),
            on_policy=bool(on_policy),
            processes=self.world,
            reward=float(stats[1] / stats[2]),
            completion_tokens=float(stats[3] / stats[2]),
            solved_all=float((pr == 1).double().mean()),
            solved_none=float((pr == 0).double().mean()),
            lr=lr,
            grad_norm=grad_norm,
            time_generate=float(stats[4]) / self.world,
            time_teacher=float(stats[5]) / self.world,
            time_student=float(stats[6]) / self.world,
        )
        metrics["time_step"] = (
            metrics["time_generate"] + metrics["time_teacher"] + metrics["time_student"]
        )
        return metrics

    # --- evaluation -------------------------------------------------------------------------
    def evaluate(self, problems: list[Problem] | None = None) -> dict:
        """avg@k accuracy on held-out problems (main process; same samples at every call)."""
        problems = self.eval_set if problems is None else problems
        if not problems:
            return {"kind": "eval", "step": self.step, "accuracy": float("nan")}
        k = self.cfg.eval_k
        ro = sample(
            self.unwrapped,
            self._student_prompts(problems),
            max_new_tokens=self.cfg.max_new_tokens,
            stop_token_ids=self.stops,
            pad_id=self.pad,
            temperature=self.cfg.eval_temperature,
            top_p=self.cfg.top_p,
            seed=self.cfg.seed + 7919,
            k=k,
        )
        texts = ro.texts(self.tok)
        rewards = torch.tensor(
            [self.task.verify(t, problems[int(g)]) for t, g in zip(texts, ro.group, strict=True)]
        )
        pr = pass_rates(rewards, ro.group.cpu(), len(problems))
        return {
            "kind": "eval",
            "step": self.step,
            "accuracy": float(rewards.mean()),
            "pass_at_k": float((pr > 0).double().mean()),
            "k": k,
            "n": len(problems),
            "example": texts[0][:200],
        }

    # --- checkpoints ------------------------------------------------------------------------
    def save(self, path: Path | None = None) -> Path:
        """Write `path/state.pt` (model, optimiser, schedule, teacher, step, data, RNG)."""
        path = Path(path or self.out / "checkpoint")
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            path.mkdir(parents=True, exist_ok=True)
            state = {
                "model": self.unwrapped.state_dict(),
                "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(),
                "teacher": self.teacher.state_dict() if self.teacher is not None else {},
                "method_state": self.method_state.state_dict(),
                "step": self.step,
                "data_position": self.step * self.cfg.batch_problems,
                "torch_rng": torch.get_rng_state(),
                "config": dataclasses.asdict(self.cfg),
            }
            tmp = path / "state.pt.tmp"
            torch.save(state, tmp)
            tmp.replace(path / "state.pt")
        self.acc.wait_for_everyone()
        return path

    def load(self, path: Path) -> None:
        state = torch.load(
            Path(path) / "state.pt", map_location=self.acc.device, weights_only=False
        )
        free = {
            "resume",
            "progress",
            "out",
            "eval_every",
            "save_every",
            "threads",
            "n_eval",
            "eval_k",
            "eval_temperature",
        }
        if self.cfg.schedule == "constant":
            free.add("steps")
        changed = {
            k: (v, getattr(self.cfg, k))
            for k, v in state["config"].items()
            if k not in free and v != getattr(self.cfg, k)
        }
        if changed:
            raise ValueError(
                f"resume: the config differs from the checkpoint's in {changed} "
                "(old, new); only run-control fields may change"
            )
        self.unwrapped.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        if self.teacher is not None:
            self.teacher.load_state_dict(state["teacher"])
        if "method_state" in state:
            self.method_state.load_state_dict(state["method_state"])
        self.step = int(state["step"])
        if state["data_position"] != self.step * self.cfg.batch_problems:
            raise ValueError("checkpoint data position does not match its step and batch size")
        torch.set_rng_state(state["torch_rng"].cpu())

    # --- the loop ---------------------------------------------------------------------------
    def _log(self, rec: dict) -> None:
        if self.acc.is_main_process:
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")

    def train(self, until: int | None = None) -> list[dict]:
        """Run to `cfg.steps` (or stop after step `until`, checkpointing as an interrupted run
        would); returns the metric records of this call (train and eval)."""
        from tqdm.auto import tqdm

        cfg, main = self.cfg, self.acc.is_main_process
        if main:
            (self.out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))
            log = self.out / "metrics.jsonl"
            if log.exists():  # drop records past the resumed step
                keep = [
                    ln
                    for ln in log.read_text().splitlines()
                    if ln and json.loads(ln)["step"] <= self.step
                ]
                log.write_text("".join(k + "\n" for k in keep))
        history = []

        def do_eval():
            if main and cfg.n_eval:
                rec = self.evaluate()
                self._log(rec)
                history.append(rec)
                bar.write(
                    f"step {self.step}: eval accuracy avg@{cfg.eval_k} = {rec['accuracy']:.3f}"
                )
            self.acc.wait_for_everyone()

        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            disable=not (cfg.progress and main),
            desc=f"{cfg.method}",
            dynamic_ncols=True,
        )
        if self.step == 0:
            do_eval()
        stop = cfg.steps if until is None else min(int(until), cfg.steps)
        while self.step < stop:
            rec = self.train_step()
            self._log(rec)
            history.append(rec)
            bar.update(1)
            bar.set_postfix(loss=f"{rec['loss']:.4f}", reward=f"{rec['reward']:.2f}")
            if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < cfg.steps:
                do_eval()
            if cfg.save_every and self.step % cfg.save_every == 0:
                self.save()
        bar.close()
        if stop < cfg.steps:
            self.save()
            return history
        if not history or history[-1].get("kind") != "eval" or history[-1]["step"] != self.step:
            do_eval()
        self.save()
        return history


def train(cfg: TrainConfig, **kwargs) -> list[dict]:
    """Build a `Trainer` and run it; returns the metric records."""
    return Trainer(cfg, **kwargs).train()
