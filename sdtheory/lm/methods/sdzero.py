r"""SD-Zero: one model as generator and reviser; self-revision training, then self-distillation.

He et al. 2026 (arXiv:2604.12002), official code `princeton-pli/Self-Distillation-Zero`
(`fdaeb0b`). Two phases in one run, switched at `--sdzero-srt-steps`:

1. **Self-revision training (SRT).** The generator attempts each problem, the verifier gives a
   binary reward $r$, the reviser samples a revision after the attempt and the outcome cue
   $P_r$ (`teachers.revision_prompt_ids`); revisions that verify are kept. Cross-entropy on the
   kept tuples: generation rows (prompt $x$, completion $y_{\rm init}+P_r+y_{\rm rev}$; failed
   attempts only) and revision rows (prompt $x+y_{\rm init}+P_r$, completion $y_{\rm rev}$),
   $L=L_{\rm gen}+L_{\rm rev}$ [code: `prepare_data.py` and the two SFT stages of
   `scripts/sft.sh`; online, every tuple in both terms and summed: ours].
2. **Self-distillation.** The teacher is the model after SRT (a frozen copy, re-synchronised to
   the student every `--sdzero-sync-every` steps) that sees $x+y+P_r$ and scores the second copy
   of $y$: $\mathrm{KL}$ on the teacher's top-$k$, $w\,\mathrm{FKL}+(1-w)\,\mathrm{RKL}$
   [code: `topk_logits_k=64`, `kl_type="mixed"`, `mixed_kl_weight=0.5`; the paper's equation
   is the reverse KL, $w=0$].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import check_fields
from ..rollout import Rollouts, stop_ids
from ..teachers import revision_prompt_ids
from .base import Method
from .shared import DivergenceLoss

__all__ = ["SDZero", "SDZeroConfig", "attempt_tokens", "revision_rows"]


def attempt_tokens(completion, mask, stop_ids) -> list[int]:
    """The attempt's tokens without its end-of-turn token (what the reviser context quotes).

    Examples:
        >>> import torch
        >>> attempt_tokens(torch.tensor([5, 6, 2, 2]), torch.tensor([1, 1, 1, 0]).bool(), [2])
        [5, 6]
    """
    ids = [int(t) for t in completion[mask.bool()].tolist()]
    return ids[:-1] if ids and ids[-1] in set(stop_ids) else ids


def revision_rows(prompt, attempt, delim, revision) -> tuple[list, list, list, list]:
    """SRT training rows of one kept tuple [code: `prepare_data.py`, stage 1 and stage 2]:
    `(generation prompt, generation completion, revision prompt, revision completion)` with
    generation = $x \\to y_{\\rm init}+P_r+y_{\\rm rev}$ and revision = $x+y_{\\rm init}+P_r \\to
    y_{\\rm rev}$ (`delim` = the cue's tokens, `revision` ends with its end-of-turn token).

    Examples:
        >>> revision_rows([1, 2], [7, 8], [9], [4, 2])
        ([1, 2], [7, 8, 9, 4, 2], [1, 2, 7, 8, 9], [4, 2])
    """
    p, a, d, r = (list(map(int, x)) for x in (prompt, attempt, delim, revision))
    return p, a + d + r, p + a + d, r


def _rollouts(prompts, rows, group, pad_id, device) -> Rollouts:
    comp = torch.full((len(rows), max(map(len, rows))), int(pad_id), dtype=torch.long)
    mask = torch.zeros(comp.shape, dtype=torch.bool)
    for i, r in enumerate(rows):
        comp[i, : len(r)], mask[i, : len(r)] = torch.tensor(r, dtype=torch.long), True
    zeros = torch.zeros(comp.shape, device=device)
    g = torch.tensor(group, dtype=torch.long, device=device)
    return Rollouts(prompts, comp.to(device), mask.to(device), zeros, zeros, g, on_policy=False)


def _h(text: str, default):
    return field(default=default, metadata={"help": "SD-Zero: " + text})


@dataclass(frozen=True)
class SDZeroConfig:
    _argument_group_name = "sdzero (generator + reviser of one model: self-revision, then distil)"

    sdzero_srt_steps: int = _h("(ours) optimiser steps of self-revision training first", 4)
    sdzero_attempts: int = _h(
        "(ours) attempts per problem in an SRT step (0 = k // 2, at least 1), so that attempts "
        "plus revisions stay within the k rollouts per problem of a distillation step",
        0,
    )
    sdzero_revise_correct: bool = _h(
        "also revise correct attempts (cue 'Let me rephrase'; the code's default: false)", False
    )
    sdzero_sync_every: int = _h(
        "(ours) re-synchronise the teacher to the student every N distillation steps (0 = only "
        "at the end of SRT); the paper's 'regular teacher synchronization', period not found",
        10,
    )
    sdzero_forward_weight: float = _h(
        "weight w of forward KL in w FKL + (1-w) RKL (code: 0.5; the paper's equation: 0)", 0.5
    )
    sdzero_topk: int = _h("teacher top-k support of the KL (code: 64; 0 = the run's --support)", 64)

    def __post_init__(self):
        check_fields(
            self,
            ints={
                "sdzero_srt_steps": 0,
                "sdzero_attempts": 0,
                "sdzero_sync_every": 0,
                "sdzero_topk": 0,
            },
            unit=("sdzero_forward_weight",),
        )


class SDZero(Method):
    """SD-Zero (see the module)."""

    name = "sdzero"
    Config = SDZeroConfig

    def __init__(self, ctx):
        super().__init__(ctx)
        self.div = DivergenceLoss(ctx.cfg, self.teacher, 1.0)
        self.stops = stop_ids(ctx.tokenizer)
        self._srt: dict = {}

    @classmethod
    def check(cls, cfg) -> None:
        super().check(cfg)
        o = cfg.options
        if o.sdzero_topk and cfg.loss.support != "full":
            raise ValueError(
                f"sdzero_topk ({o.sdzero_topk}) sets the support; use --sdzero-topk 0 to take "
                f"--support {cfg.loss.support} instead"
            )
        if cfg.loss.estimator:
            raise ValueError(f"estimator must be '' for sdzero, got {cfg.loss.estimator!r}")

    def srt(self, step: int) -> bool:
        return step < self.options.sdzero_srt_steps

    # --- phase 1: self-revision training ---------------------------------------------------
    def collect(self, sources, problems, step):
        if not self.srt(step):
            return sources.policy(problems)
        o, run, tok, task = self.options, self.cfg.run, self.ctx.tokenizer, self.ctx.task
        n_att = o.sdzero_attempts or max(1, run.k // 2)
        ids = sources.row_ids(problems)
        rows = [(i, ids[i * run.k + j]) for i in range(len(problems)) for j in range(n_att)]
        prompts = sources.prompt_ids(problems)
        att = sources.generate([prompts[i] for i, _ in rows], [r for _, r in rows], stream=1)
        texts = att.texts(tok)
        r_att = [task.verify(t, problems[i]) for t, (i, _) in zip(texts, rows, strict=True)]
        pick = [n for n, r in enumerate(r_att) if r < 0.5 or o.sdzero_revise_correct]
        att_ids = [
            attempt_tokens(att.completions[n], att.completion_mask[n], self.stops)
            for n in range(len(rows))
        ]
        rev_prompts = [
            revision_prompt_ids(tok, prompts[rows[n][0]], att_ids[n], r_att[n]) for n in pick
        ]
        kept = []
        if pick:
            rev = sources.generate(rev_prompts, [rows[n][1] for n in pick], stream=2)
            for m, (n, text) in enumerate(zip(pick, rev.texts(tok), strict=True)):
                if task.verify(text, problems[rows[n][0]]) >= 0.5:
                    rev_ids = rev.completions[m][rev.completion_mask[m]].tolist()
                    kept.append((n, rev_prompts[m], rev_ids))
        self._srt = dict(
            sdzero_attempt_reward=sum(r_att) / len(r_att),
            sdzero_revised=len(pick),
            sdzero_kept=len(kept),
        )
        if not kept:  # nothing to learn from: the attempts, with an empty loss mask
            att.group = torch.tensor([i for i, _ in rows], device=att.group.device)
            att.loss_mask = torch.zeros_like(att.completion_mask)
            return att
        p_rows, c_rows, group, gen = [], [], [], []
        for n, rev_prompt, rev_ids in kept:
            i = rows[n][0]
            delim = rev_prompt[len(prompts[i]) + len(att_ids[n]) :]
            gp, gc, rp, rc = revision_rows(prompts[i], att_ids[n], delim, rev_ids)
            if r_att[n] < 0.5:  # generation rows from failed attempts only [code]
                p_rows, c_rows, group, gen = p_rows + [gp], c_rows + [gc], group + [i], gen + [True]
            p_rows, c_rows, group, gen = p_rows + [rp], c_rows + [rc], group + [i], gen + [False]
        self._srt["gen"] = gen
        return _rollouts(p_rows, c_rows, group, tok.pad_token_id, att.completions.device)

    def _srt_loss(self, batch):
        lp = batch.student.token_logprobs(1.0)
        m = batch.mask
        gen = torch.tensor(self._srt.pop("gen", [False] * m.shape[0]), device=m.device)
        parts = {}
        for name, rows in (("gen", gen), ("rev", ~gen)):
            mk = m & rows[:, None]
            parts[name] = batch.reduce(-lp, mask=mk, num_items=batch.num_items(mk))
        loss = parts["gen"] + parts["rev"]
        metrics = dict(
            self._srt,
            sdzero_phase="srt",
            srt_generation_loss=float(parts["gen"].detach()),
            srt_revision_loss=float(parts["rev"].detach()),
            distill_loss=float(loss.detach()),
        )
        return self.weights(self.cfg)[0] * loss, metrics

    # --- phase 2: self-distillation to the reviser context ---------------------------------
    def teacher_prompts(self, batch) -> list[list[int]]:
        """Reviser context of each rollout: its prompt, its attempt, the cue of its reward."""
        ro, tok = batch.rollouts, self.ctx.tokenizer
        return [
            revision_prompt_ids(
                tok,
                ro.prompts[i],
                attempt_tokens(ro.completions[i], ro.completion_mask[i], self.stops),
                float(batch.rewards[i]),
            )
            for i in range(len(ro.prompts))
        ]

    def loss(self, batch):
        if self.srt(batch.step):
            return self._srt_loss(batch)
        o = self.options
        t_out = self.div.teacher_out(batch, prompt_ids=self.teacher_prompts(batch))
        top = dict(support="teacher_topk", k=o.sdzero_topk) if o.sdzero_topk else {}
        w, l_d = o.sdzero_forward_weight, 0.0
        for name, c in (("forward_kl", w), ("reverse_kl", 1.0 - w)):
            if c > 0:
                l_d = l_d + c * self.div(batch, t_out, override=dict(divergence=name, **top))
        metrics = dict(sdzero_phase="distill", distill_loss=float(l_d.detach()))
        return self.weights(self.cfg)[0] * l_d, metrics

    def after_step(self, batch, metrics):
        o, done = self.options, batch.step + 1
        since = done - o.sdzero_srt_steps
        due = since == 0 or (since > 0 and o.sdzero_sync_every and since % o.sdzero_sync_every == 0)
        if due and self.teacher.mode != "live":
            self.teacher.blend(self.ctx.student, 1.0)
        return {"sdzero_teacher_synced": bool(due)}
