"""SD-Zero (`sdtheory.lm.methods.sdzero`; paper page `papers/sdzero2026/README.md`)."""

from __future__ import annotations

from .._registry import claim

_CODE = "princeton-pli/Self-Distillation-Zero@fdaeb0b"
_MOD = "sdtheory.lm.methods.sdzero"

REVISER_CONTEXT = claim(
    "methods.sdzero-reviser-context",
    "In the distillation phase the teacher scores the student's own completion after its prompt, "
    "the same attempt (without its end-of-turn token) and the outcome cue of its binary reward "
    "('Let me rephrase the above solution.' if correct, 'Wait, this response is wrong. Let me "
    "correct it.' otherwise); the student never sees them.",
    (
        "code",
        f"{_CODE}:self-distillation/nemo_rl/algorithms/distillation.py "
        "(_phase2_build_teacher_message_log, _P_R_PHRASES)",
    ),
    "sdtheory.lm.teachers.revision_prompt_ids",
    paper="sdzero2026",
)
SRT_ROWS = claim(
    "methods.sdzero-srt-rows",
    "Self-revision training keeps only revisions that verify; a kept tuple gives a revision row "
    "(x + y_init + P_r -> y_rev) and, for a failed attempt, a generation row (x -> y_init + P_r + "
    "y_rev); the loss is the sum of the two cross-entropies (online and summed: ours).",
    ("code", f"{_CODE}:self-revision-training/prepare_data.py (_stage1_record, _stage2_record)"),
    _MOD,
    paper="sdzero2026",
)
MIXED_TOPK = claim(
    "methods.sdzero-mixed-topk-kl",
    "The distillation loss is w FKL + (1 - w) RKL with both distributions renormalised on the "
    "teacher's top-k tokens (w = 0.5, k = 64 by default).",
    (
        "code",
        f"{_CODE}:self-distillation/nemo_rl/algorithms/loss_functions.py "
        "(DistillationLossFn, kl_type='mixed')",
    ),
    _MOD,
    paper="sdzero2026",
)
SYNC = claim(
    "methods.sdzero-teacher-sync",
    "The teacher is the model at the end of self-revision training and is re-synchronised to the "
    "student every N distillation steps (N a flag: the period was not found), fixed in between.",
    (
        "paper",
        'arXiv:2604.12002 abstract: "iterative self-evolution, where the improving ability '
        "to revise answers can be distilled back into generation performance with regular teacher "
        'synchronization"',
    ),
    _MOD,
    paper="sdzero2026",
)
VS_GRPO = claim(
    "methods.sdzero-vs-grpo",
    "At equal rollout compute, SD-Zero (self-revision training, then self-distillation) reaches a "
    "higher held-out accuracy than GRPO (paired over seeds).",
    (
        "paper",
        'arXiv:2604.12002 abstract: "outperforms strong baselines, including Rejection '
        "Fine-Tuning (RFT), GRPO, and Self-Distillation Fine-Tuning (SDFT), under the same question "
        'set and training sample budget"; the tiny-model setting is ours',
    ),
    "sdtheory.lm.methods",
    paper="sdzero2026",
)
