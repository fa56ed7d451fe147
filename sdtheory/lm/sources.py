"""Where a training step's tokens come from; a method picks one in `Method.collect`.

* `policy(problems)`: `k` completions per problem sampled from the student (KV cache), each
  row seeded by `(seed, global row)` so that data-parallel ranks reproduce one process;
* `demonstrations(problems)`: the dataset's worked solutions (then end of turn), one per problem,
  marked `on_policy=False` (GKD's off-policy part; the supervised methods CurioSFT and PS-KD,
  which train on these tokens with the same loop). They come from the task itself (the
  generators' step solutions, champ's step solutions; else "The answer is ..."): nothing is
  downloaded.
* `generate(prompts, row_ids, stream)`: one completion per row after arbitrary prompt ids
  (a revision after the student's own attempt, a sample of the privileged-context teacher),
  row `i` seeded by `(seed, stream, row_ids[i])`, so each stream has its own draws.

With a tool environment (`--env`, `sdtheory.lm.env`) `policy` and `demonstrations` are
multi-turn: `policy` samples assistant spans and tool outputs (`env.multiturn_sample`),
`demonstrations` turns the worked solution's arithmetic steps into tool calls; tool outputs are
attended to but masked from every loss (`Rollouts.loss_mask`), for any method.

A method with another source (a replay buffer) builds its `Rollouts` in `collect` from the same
pieces: `sample` for generation, `prompt_ids` for student prompts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .env import multiturn_sample
from .rollout import Rollouts, sample

__all__ = ["DataSources"]


@dataclass
class DataSources:
    """The step's sources (see the module docstring).

    Attributes:
        model: the student (unwrapped) that samples.
        tokenizer: the shared tokenizer.
        prompt_ids: student prompt ids of a list of problems.
        run: the run's `RunConfig` (k, max_new_tokens, temperature, top_p, seed, batch size).
        step: optimiser steps done before this one.
        first_row: index in the step's global batch of this process's first problem.
        stop_ids: end-of-turn token ids.
        device: where the token tensors live.
        env: the tool environment (`None`: single-turn).
        all_done: `sample`'s stopping rule across processes (`None`: this process's rows);
            set under FSDP, where every process must run the same forward passes. A method
            that calls `sample` itself passes it on.
    """

    model: Any
    tokenizer: Any
    prompt_ids: Callable[[list], list[list[int]]]
    run: Any
    step: int
    first_row: int
    stop_ids: list[int]
    device: Any
    env: Any = None
    all_done: Callable[[torch.Tensor], bool] | None = None

    def row_ids(self, problems: list) -> list[int]:
        """Global ids of the `k` rows per problem of `policy` (its row seeds)."""
        run = self.run
        base = self.step * run.batch_problems + self.first_row
        return [(base + i) * run.k + j for i in range(len(problems)) for j in range(run.k)]

    def policy(self, problems: list) -> Rollouts:
        run = self.run
        seeds = self.row_ids(problems)
        if self.env is not None:
            return multiturn_sample(
                self.model,
                self.tokenizer,
                self.env,
                self.prompt_ids(problems),
                max_new_tokens=run.max_new_tokens,
                max_turns=run.max_turns,
                stop_token_ids=self.stop_ids,
                temperature=run.temperature,
                top_p=run.top_p,
                seed=run.seed,
                row_seeds=seeds,
                k=run.k,
            )
        return sample(
            self.model,
            self.prompt_ids(problems),
            max_new_tokens=run.max_new_tokens,
            stop_token_ids=self.stop_ids,
            pad_id=self.tokenizer.pad_token_id,
            temperature=run.temperature,
            top_p=run.top_p,
            seed=run.seed,
            row_seeds=seeds,
            k=run.k,
            all_done=self.all_done,
        )

    def generate(self, prompts: list, row_ids: list[int], stream: int = 1) -> Rollouts:
        """One completion per row after `prompts[i]` (token ids), sampled as `policy` samples;
        row `i` draws from `(seed, stream, row_ids[i])` (`stream >= 1`: disjoint from `policy`'s
        draws). `group` is the row index (set it to the rows' problems)."""
        if int(stream) < 1:
            raise ValueError(f"stream must be >= 1 (0 is the policy's), got {stream!r}")
        run = self.run
        return sample(
            self.model,
            prompts,
            max_new_tokens=run.max_new_tokens,
            stop_token_ids=self.stop_ids,
            pad_id=self.tokenizer.pad_token_id,
            temperature=run.temperature,
            top_p=run.top_p,
            seed=run.seed + 100_003 * int(stream),
            row_seeds=list(row_ids),
            all_done=self.all_done,
        )

    def demonstrations(self, problems: list) -> Rollouts:
        tok, rows, trained = self.tokenizer, [], []
        for p in problems:
            if self.env is None:
                segments = [(p.solution or f"The answer is {p.answer}.", True)]
            else:
                segments = self.env.demonstration(p)
            ids, keep = [], []
            for text, assistant in segments:
                seg = list(tok(text, add_special_tokens=False)["input_ids"])
                ids, keep = ids + seg, keep + [assistant] * len(seg)
            cut = self.run.max_new_tokens - 1
            rows.append(ids[:cut] + [tok.eos_token_id])
            trained.append(keep[:cut] + [True])
        comp = torch.full((len(rows), max(map(len, rows))), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros(comp.shape, dtype=torch.bool)
        loss_mask = torch.zeros(comp.shape, dtype=torch.bool)
        for i, r in enumerate(rows):
            comp[i, : len(r)], mask[i, : len(r)] = torch.tensor(r), True
            loss_mask[i, : len(r)] = torch.tensor(trained[i])
        zeros = torch.zeros(comp.shape, device=self.device)
        group = torch.arange(len(rows), device=self.device)
        return Rollouts(
            self.prompt_ids(problems),
            comp.to(self.device),
            mask.to(self.device),
            zeros,
            zeros,
            group,
            on_policy=False,
            loss_mask=None if self.env is None else loss_mask.to(self.device),
        )
