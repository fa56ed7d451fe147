"""The training loop, the same for every method (`sdtheory.lm.methods`).

Each step: the method collects the step's rollouts (by default `k` completions per problem,
sampled from the student with the KV cache: `sdtheory.lm.sources.DataSources`) -> verify them (rewards in
{0, 1}) -> `method.loss(batch)` on a `StepBatch` -> backward -> stop on a non-finite loss or
gradient -> clip -> optimiser step -> teacher update -> `method.after_step` -> evaluate ->
checkpoint. The loop knows no method by name: what differs between methods (data source,
teacher, loss, schedules, extra state) is the method's (`sdtheory.lm.methods.base.Method`).

Losses are normalised by the *global* batch (tokens for `token_mean`, sequences for
`sequence_mean`) and multiplied by the number of processes, so that data-parallel training
(`accelerate launch`, gradients averaged over ranks) takes the same step as one process with the
whole batch. All randomness is a function of `(seed, step, global row)`: data order, samples, the
GKD on/off-policy coin. A checkpoint holds model (the adapters only, with LoRA), optimiser, LR
schedule, teacher weights, the method's state, step and data position (and the torch RNG
state), so a resumed run equals an uninterrupted one. A non-finite loss or gradient norm stops the run before the optimiser step
(`NonFiniteError`, naming the step); the last checkpoint on disk is left as it was.

Device and precision (`--device`, `--precision`; `sdtheory.lm.device`): the rollouts, the
teacher's and the student's forward passes and the loss run under bf16 autocast on CUDA
(weights, optimiser and divergences in fp32; backward outside autocast), TF32 on; fp32 on the
CPU. Each step also logs `tokens` (prompt + completion tokens, all processes), `tokens_per_s`
and `peak_memory_gib` (`sdtheory.lm.device.memory_stats`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from . import device as D
from . import lora as _lora
from .config import TrainConfig
from .env import multiturn_sample, with_env
from .methods import MethodContext, StepBatch, StudentOutputs, get_method
from .metrics import difficulty_level, eval_summary
from .models import build_model, check_chat_template
from .rollout import completion_hidden, pass_rates, sample, stop_ids
from .sources import DataSources
from .tasks import Problem, Task, chat_prompt_ids, make_task
from .teachers import make_teacher
from .tracking import make_tracker

__all__ = ["NonFiniteError", "TrainConfig", "Trainer", "train"]

# run-control fields that may change when a run resumes (`steps` too with a constant schedule)
_FREE_ON_RESUME = {
    "resume",
    "progress",
    "out",
    "eval_every",
    "save_every",
    "threads",
    "n_eval",
    "eval_k",
    "eval_temperature",
    "device",
}


class NonFiniteError(RuntimeError):
    """The loss or the gradient norm of a step was NaN or infinite; the run stopped."""


def _schedule(cfg: TrainConfig):
    r = cfg.run

    def factor(step: int) -> float:
        if r.warmup_steps and step < r.warmup_steps:
            return (step + 1) / r.warmup_steps
        if r.schedule == "constant":
            return 1.0
        frac = (step - r.warmup_steps) / max(1, r.steps - r.warmup_steps)
        if r.schedule == "linear":
            return max(0.0, 1.0 - frac)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))

    return factor


class Trainer:
    """The loop (see the module docstring). `Trainer(cfg).train()` runs it.

    Args:
        cfg: the run configuration.
        model, tokenizer: an already built student (default: `build_model(cfg.run.model, ...)`).
        teacher_model: an already built separate teacher (default: from `--teacher-model`).
        teacher_tokenizer: its tokenizer, when its chat template differs from the student's
            (it must share the student's vocabulary).
        task: an already built task (default: `make_task(cfg.run.task)`).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        model=None,
        tokenizer=None,
        teacher_model=None,
        teacher_tokenizer=None,
        task: Task | None = None,
    ):
        from accelerate import Accelerator
        from accelerate.utils import DistributedType

        self.cfg, run = cfg, cfg.run
        if run.threads:
            torch.set_num_threads(run.threads)
        dev = D.resolve_device(run.device)
        self.acc = Accelerator(cpu=dev.type == "cpu")
        _check_engine(self.acc)
        D.configure(self.acc.device)
        self.precision = D.resolve_precision(run.precision, self.acc.device)
        self.world, self.rank = self.acc.num_processes, self.acc.process_index
        if run.batch_problems % self.world:
            raise ValueError(
                f"batch_problems ({run.batch_problems}) must divide by the number "
                f"of processes ({self.world})"
            )
        if model is None:
            model, tokenizer = build_model(
                run.model, hidden_size=run.hidden_size, num_layers=run.num_layers, seed=run.seed
            )
        check_chat_template(tokenizer, f"model {run.model!r}")
        if run.gradient_checkpointing:
            _enable_checkpointing(model)
        if cfg.lora.lora_rank:
            model = _lora.apply_lora(model, cfg.lora, seed=run.seed)
        self.tok = tokenizer
        if task is None and run.task_file:
            from .taskfile import FileTask

            task = FileTask(run.task_file)
        self.task = with_env(task or make_task(run.task), run.env)
        self.env = getattr(self.task, "env", None) if run.env else None
        self.system = None if run.system_prompt == "template" else run.system_prompt
        self.train_set, self.eval_set = self.task.split(run.n_train, run.n_eval, seed=run.seed)
        model.to(self.acc.device)
        model.train()
        if cfg.loss.fused_loss and getattr(model.get_output_embeddings(), "bias", None) is not None:
            raise ValueError(
                "fused_loss needs an output layer without bias; use --fused-loss false"
            )
        method_cls = get_method(cfg.method)
        kind = method_cls.needs_teacher(cfg)
        self.teacher = None
        if kind is not None:
            self.teacher = make_teacher(
                kind,
                model,
                tokenizer,
                self.task,
                cfg,
                teacher_model=teacher_model,
                teacher_tokenizer=teacher_tokenizer,
                system=self.system,
            )
        ctx = MethodContext(
            cfg, self.task, tokenizer, self.teacher, self.world, model, self.evaluate
        )
        self.method = method_cls(ctx)
        trainable = [p for p in model.parameters() if p.requires_grad]  # LoRA: the adapters
        groups = [{"params": trainable}, *self.method.param_groups()]
        opt = torch.optim.AdamW(groups, lr=run.lr, weight_decay=run.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(cfg))
        self.model, self.opt = self.acc.prepare(model, opt)
        self.sharded = self.acc.distributed_type == DistributedType.FSDP
        if self.sharded:
            _check_sharded(self.teacher)
            if self.env is not None:  # a row's turns differ across ranks: no lockstep forwards
                raise ValueError(f"env: multi-turn rollouts do not run under FSDP, got {run.env!r}")
        # FSDP gathers weights inside every forward pass: all processes generate in lockstep
        self.all_done = self._all_done if self.sharded else None
        self.step, self.saved_step = 0, None
        self.out = Path(run.out)
        self.stops, self.pad = stop_ids(tokenizer), tokenizer.pad_token_id
        if self.acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
        self.tracker = make_tracker(
            run.report_to, self.out, cfg.to_dict(), main=self.acc.is_main_process
        )
        if run.resume and (self.out / "checkpoint" / "state.pt").is_file():
            self.load(self.out / "checkpoint")

    # --- data -------------------------------------------------------------------------------
    def batch_indices(self, step: int) -> list[int]:
        """Global training-problem indices of a step: epoch-wise permutations seeded by the seed."""
        n, b = len(self.train_set), self.cfg.run.batch_problems
        out = []
        for pos in range(step * b, (step + 1) * b):
            epoch, i = divmod(pos, n)
            out.append(int(np.random.default_rng([self.cfg.run.seed, epoch]).permutation(n)[i]))
        return out

    def global_sum(self, x: float) -> float:
        """A number summed over processes."""
        if self.world == 1:
            return float(x)
        t = torch.tensor([float(x)], dtype=torch.float64, device=self.acc.device)
        return float(self.acc.reduce(t, reduction="sum")[0])

    def _all_done(self, done: torch.Tensor) -> bool:
        """Whether every process's rows are done (one all-reduce per generated token)."""
        left = (~done).sum().to(self.acc.device, torch.float32).reshape(1)
        return float(self.acc.reduce(left, reduction="sum")[0]) == 0.0

    @property
    def unwrapped(self):
        return self.acc.unwrap_model(self.model)

    def student_prompts(self, problems: list[Problem]) -> list[list[int]]:
        return [
            chat_prompt_ids(self.tok, self.task.student_messages(p), system=self.system)
            for p in problems
        ]

    def make_batch(self, step: int) -> StepBatch:
        """This process's share of step `step`: collect (method's source), verify, and the
        student's outputs (computed when the method's loss asks for them)."""
        run = self.cfg.run
        per_rank = run.batch_problems // self.world
        lo = self.rank * per_rank
        local = self.batch_indices(step)[lo : lo + per_rank]
        problems = [self.train_set[i] for i in local]
        self.model.eval()
        sources = DataSources(
            self.unwrapped,
            self.tok,
            self.student_prompts,
            run,
            step,
            lo,
            self.stops,
            self.acc.device,
            self.env,
            self.all_done,
        )
        ro = self.method.collect(sources, problems, step)
        rows = [problems[int(g)] for g in ro.group]
        texts = ro.texts(self.tok)
        rewards = torch.tensor([self.task.verify(t, p) for t, p in zip(texts, rows, strict=True)])
        self.model.train()

        def forward(prompts=None):  # other prompts: `StudentOutputs.under`
            prompts = ro.prompts if prompts is None else prompts
            return completion_hidden(self.model, prompts, ro.completions, ro.completion_mask)

        student = StudentOutputs(forward, self.unwrapped.get_output_embeddings(), ro.completions)
        return StepBatch(
            step, ro, rows, rewards, local, student, self.cfg.loss.reduction, self.global_sum
        )

    # --- one step ---------------------------------------------------------------------------
    def autocast(self):
        """bf16 autocast when the run's precision is bf16 (`sdtheory.lm.device.autocast`)."""
        return D.autocast(self.acc.device, self.precision)

    def train_step(self) -> dict:
        """One collect -> verify -> loss -> update step; returns its metrics."""
        run = self.cfg.run
        t0 = time.perf_counter()
        t_teacher0 = self.teacher.seconds if self.teacher is not None else 0.0
        with self.autocast():
            batch = self.make_batch(self.step)
            t1 = time.perf_counter()
            loss, metrics = self.method.loss(batch)
        self.acc.backward(loss * self.world)
        grad_norm = float(
            self.acc.clip_grad_norm_(self.model.parameters(), run.grad_clip or math.inf)
        )
        self._stop_if_not_finite(float(loss.detach()), grad_norm)
        lr = self.sched.get_last_lr()[0]
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.sched.step()
        if self.teacher is not None:
            self.teacher.update(self.unwrapped)
        t3 = time.perf_counter()
        t_teacher = (self.teacher.seconds - t_teacher0) if self.teacher is not None else 0.0
        mask, rewards, ro = batch.mask, batch.rewards, batch.rollouts
        parts = [metrics.get("distill_loss", 0.0), metrics.get("grpo_loss", 0.0)]
        stats = torch.tensor(
            [
                float(loss.detach()),
                float(rewards.sum()),
                float(len(rewards)),
                float(mask.sum()),
                t1 - t0,
                t_teacher,
                t3 - t1 - t_teacher,
                *parts,
                float(sum(len(p) for p in ro.prompts)) + float(ro.completion_mask.sum()),
            ],
            dtype=torch.float64,
            device=mask.device,
        )
        pr = pass_rates(rewards, ro.group.cpu(), len(batch.problem_ids))
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
            on_policy=bool(ro.on_policy),
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
        # throughput and memory: prompt + completion tokens of the whole step (all processes)
        metrics["tokens"] = int(stats[-1])
        metrics["tokens_per_s"] = float(stats[-1]) / max(metrics["time_step"], 1e-9)
        metrics.update(D.memory_stats(self.acc.device))
        metrics.update(self.method.after_step(batch, metrics))
        return metrics

    def _stop_if_not_finite(self, loss: float, grad_norm: float) -> None:
        bad = not (math.isfinite(loss) and math.isfinite(grad_norm))
        if self.world > 1:  # every rank stops if one does
            bad = self.global_sum(float(bad)) > 0
        if not bad:
            return
        self.opt.zero_grad(set_to_none=True)
        n = self.step + 1
        self._log({"kind": "error", "step": n, "loss": loss, "grad_norm": grad_norm})
        kept = (
            f"the last checkpoint ({self.out / 'checkpoint'}, step {self.saved_step}) is kept"
            if self.saved_step is not None
            else "no checkpoint had been written (--save-every N writes one every N steps)"
        )
        self.tracker.close()
        raise NonFiniteError(
            f"step {n}: non-finite loss ({loss}) or gradient norm ({grad_norm}); stopped before "
            f"the optimiser step, {kept}"
        )

    # --- evaluation -------------------------------------------------------------------------
    def _correct(self, problems: list[Problem], k: int, temperature: float):
        """Correct samples per problem out of `k` (same samples at every call), and the texts;
        multi-turn in the tool environment (`--env`)."""
        run = self.cfg.run
        kw = dict(
            max_new_tokens=run.max_new_tokens,
            stop_token_ids=self.stops,
            temperature=temperature,
            top_p=run.top_p,
            seed=run.seed + 7919,
            k=k,
        )
        prompts = self.student_prompts(problems)
        with self.autocast():
            if self.env is None:
                ro = sample(self.unwrapped, prompts, pad_id=self.pad, all_done=self.all_done, **kw)
            else:
                ro = multiturn_sample(
                    self.unwrapped, self.tok, self.env, prompts, max_turns=run.max_turns, **kw
                )
        texts = ro.texts(self.tok)
        rewards = torch.tensor(
            [self.task.verify(t, problems[int(g)]) for t, g in zip(texts, ro.group, strict=True)]
        )
        pr = pass_rates(rewards, ro.group.cpu(), len(problems))
        return [round(float(x) * k) for x in pr], texts

    def evaluate(self, problems: list[Problem] | None = None) -> dict:
        """Held-out accuracy (main process; same samples at every call): avg@k with its 95 %
        band over problems, the unbiased pass@k for k = 1, 2, 4, ..., `eval_k`
        (`sdtheory.lm.metrics`), greedy accuracy, and the same per difficulty level when the
        task has levels."""
        run = self.cfg.run
        problems = self.eval_set if problems is None else problems
        if not problems:
            return {"kind": "eval", "step": self.step, "accuracy": float("nan")}
        correct, texts = self._correct(problems, run.eval_k, run.eval_temperature)
        rec = {"kind": "eval", "step": self.step, **eval_summary(correct, run.eval_k)}
        rec["pass_at_k"] = rec[f"pass_at_{run.eval_k}"]
        greedy = self._correct(problems, 1, 0.0)[0] if run.eval_greedy else None
        if greedy is not None:
            rec["greedy_accuracy"] = float(np.mean(greedy))
        levels = [difficulty_level(p.meta) for p in problems]
        if None not in levels and len(set(levels)) > 1:
            by = {}
            for lvl in sorted(set(levels)):
                idx = [i for i, v in enumerate(levels) if v == lvl]
                part = eval_summary([correct[i] for i in idx], run.eval_k, ks=[run.eval_k])
                part = {
                    "n": len(idx),
                    "accuracy": part["accuracy"],
                    "pass_at_k": part[f"pass_at_{run.eval_k}"],
                }
                if greedy is not None:
                    part["greedy_accuracy"] = float(np.mean([greedy[i] for i in idx]))
                by[lvl] = part
            rec["by_difficulty"] = by
        rec.update(k=run.eval_k, n=len(problems), example=texts[0][:200])
        return rec

    # --- checkpoints ------------------------------------------------------------------------
    def save(self, path: Path | None = None) -> Path:
        """Write `path/state.pt` (model, optimiser, schedule, teacher, method, step, data, RNG)."""
        path = Path(path or self.out / "checkpoint")
        self.acc.wait_for_everyone()
        if self.sharded:  # FSDP (GPU only): every rank writes its shards of model and optimiser
            self.acc.save_state(str(path / "sharded"))
        if self.acc.is_main_process:
            path.mkdir(parents=True, exist_ok=True)
            lora = _lora.is_lora(self.unwrapped)
            model_state = (
                _lora.adapter_state_dict(self.unwrapped) if lora else self.unwrapped.state_dict()
            )
            state = {
                "model": None if self.sharded else model_state,
                "optimizer": None if self.sharded else self.opt.state_dict(),
                "scheduler": self.sched.state_dict(),
                "teacher": self.teacher.state_dict() if self.teacher is not None else {},
                "method": self.method.state_dict(),
                "step": self.step,
                "data_position": self.step * self.cfg.run.batch_problems,
                "torch_rng": torch.get_rng_state(),
                "config": self.cfg.to_dict(),
            }
            tmp = path / "state.pt.tmp"
            torch.save(state, tmp)
            tmp.replace(path / "state.pt")
            if lora and not self.sharded:  # peft's own format too (PeftModel.from_pretrained)
                self.unwrapped.save_pretrained(path / "adapter")
        self.saved_step = self.step
        self.acc.wait_for_everyone()
        return path

    def load(self, path: Path) -> None:
        """Restore a checkpoint written by `save`; refuses one whose training config differs."""
        state = torch.load(
            Path(path) / "state.pt", map_location=self.acc.device, weights_only=False
        )
        old, new = state["config"], self.cfg.to_dict()
        free = _FREE_ON_RESUME | ({"steps"} if self.cfg.run.schedule == "constant" else set())
        changed = {
            k: (old.get(k), new.get(k))
            for k in old.keys() | new.keys()
            if k not in free and old.get(k) != new.get(k)
        }
        if set(changed) == {"steps"}:
            raise ValueError(
                f"resume: steps changed from {old['steps']} to {new['steps']}, but the "
                f"{self.cfg.run.schedule} learning-rate schedule depends on the total number of "
                "steps; only runs with --schedule constant can be extended"
            )
        if changed:
            raise ValueError(
                f"resume: the config differs from the checkpoint's in {changed} "
                "(old, new); only run-control fields may change"
            )
        if self.sharded:
            self.acc.load_state(str(Path(path) / "sharded"))
        elif _lora.is_lora(self.unwrapped):
            _lora.load_adapter_state(self.unwrapped, state["model"])
        else:
            self.unwrapped.load_state_dict(state["model"])
        if not self.sharded:
            self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        if self.teacher is not None:
            self.teacher.load_state_dict(state["teacher"])
        self.method.load_state_dict(state["method"])
        self.step = self.saved_step = int(state["step"])
        if state["data_position"] != self.step * self.cfg.run.batch_problems:
            raise ValueError("checkpoint data position does not match its step and batch size")
        torch.set_rng_state(state["torch_rng"].cpu())

    # --- the loop ---------------------------------------------------------------------------
    def _log(self, rec: dict) -> None:
        if self.acc.is_main_process:
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            self.tracker.log(rec)

    def _write_run_files(self) -> None:
        """config.json (the resolved config, loadable with --config), prompts.txt, and
        metrics.jsonl cut back to the resumed step."""
        (self.out / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=1))
        p = self.train_set[0]
        text = [f"student prompt:\n{self.tok.decode(self.student_prompts([p])[0])}"]
        if self.teacher is not None:
            text.append(f"teacher prompt:\n{self.tok.decode(self.teacher.prompts([p])[0])}")
        (self.out / "prompts.txt").write_text("\n\n".join(text) + "\n")
        log = self.out / "metrics.jsonl"
        if log.exists():
            keep = [
                ln
                for ln in log.read_text().splitlines()
                if ln and json.loads(ln)["step"] <= self.step
            ]
            log.write_text("".join(k + "\n" for k in keep))

    def train(self, until: int | None = None, *, before_step=None) -> list[dict]:
        """Run to `steps` (or stop after step `until`, checkpointing as an interrupted run
        would); returns the metric records of this call (train and eval).

        `before_step(step)`, if given, is called before each optimiser step (e.g. a time
        budget's `check`, which may raise to end the run; the steps done are in metrics.jsonl).
        """
        from tqdm.auto import tqdm

        run, main = self.cfg.run, self.acc.is_main_process
        if main:
            self._write_run_files()
        history = []

        def do_eval():
            # the main process evaluates; under FSDP every process runs the (same) forward
            # passes, since each holds only a shard of the weights
            if (main or self.sharded) and run.n_eval:
                rec = self.evaluate()
                self._log(rec)
                history.append(rec)
                if main:
                    bar.write(
                        f"step {self.step}: eval accuracy avg@{run.eval_k} = {rec['accuracy']:.3f}"
                    )
            self.acc.wait_for_everyone()

        bar = tqdm(
            total=run.steps,
            initial=self.step,
            disable=not (run.progress and main),
            desc=self.cfg.method,
            dynamic_ncols=True,
        )
        if self.step == 0:
            do_eval()
        stop = run.steps if until is None else min(int(until), run.steps)
        try:
            while self.step < stop:
                if before_step is not None:
                    before_step(self.step)
                rec = self.train_step()
                self._log(rec)
                history.append(rec)
                bar.update(1)
                bar.set_postfix(loss=f"{rec['loss']:.4f}", reward=f"{rec['reward']:.2f}")
                if run.eval_every and self.step % run.eval_every == 0 and self.step < run.steps:
                    do_eval()
                if run.save_every and self.step % run.save_every == 0:
                    self.save()
        finally:
            bar.close()
        if stop < run.steps:
            self.save()
            self.tracker.close()
            return history
        if not history or history[-1].get("kind") != "eval" or history[-1]["step"] != self.step:
            do_eval()
        self.save()
        self.tracker.close()
        return history


def _enable_checkpointing(model) -> None:
    """Activation (gradient) checkpointing with non-reentrant `torch.utils.checkpoint`; the
    method is `activation_checkpointing_enable` from transformers 5.x on (the old name is
    deprecated there), `gradient_checkpointing_enable` before."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _check_sharded(teacher) -> None:
    """Refuse what FSDP does not support here: an EMA self-teacher averages (or swaps in)
    parameters that FSDP holds as shards and re-registers in every forward pass."""
    if getattr(teacher, "mode", None) == "ema":
        raise ValueError(
            "teacher_mode='ema': the EMA self-teacher averages the student's parameters, which "
            "FSDP shards; under FSDP use --teacher-mode fixed or live (or the DDP config)"
        )


def _check_engine(acc) -> None:
    """Refuse an FSDP launch that accelerate turned into something else (it enables FSDP only
    on accelerators: on CPU processes it would silently run plain data parallel)."""
    import os

    from accelerate.utils import DistributedType

    wants = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if wants and acc.distributed_type != DistributedType.FSDP:
        raise ValueError(
            f"accelerate config: FSDP was requested but accelerate runs {acc.distributed_type} "
            "(it enables FSDP only on GPUs and other accelerators); on CPU use the DDP config "
            "(sdtheory/lm/launch/ddp.yaml)"
        )


def train(cfg: TrainConfig, **kwargs) -> list[dict]:
    """Build a `Trainer` and run it; returns the metric records."""
    return Trainer(cfg, **kwargs).train()
