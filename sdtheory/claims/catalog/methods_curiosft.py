"""CurioSFT (`sdtheory.lm.methods.curiosft`); paper page `papers/curiosft2026/README.md`."""

from __future__ import annotations

from .._registry import claim

CODE = "HaoooWang/CurioSFT@5a77394:custom_verl/recipe/curio_sft"
_ABSTRACT = "arXiv:2602.02244 abstract"

TEMPERATURE = claim(
    "methods.curiosft-temperature",
    "Per token, tau in [1.1, 1.5] solves H_top512(z/tau) = H + 0.5 sigmoid(2(H - 1.2)) by 20 "
    "bisection steps (clamped to the interval when the target lies outside); tokens with "
    "full-vocabulary entropy <= 0.03 get tau = 1.1.",
    ("code", f"{CODE}/dp_actor.py (compute_tau_from_logits, _forward_micro_batch)"),
    "sdtheory.lm.methods.curiosft.select_temperature",
    paper="curiosft2026",
)
LOSS = claim(
    "methods.curiosft-loss",
    "Per demonstration token the loss is -log p(y) + alpha/2 (log p(y) - log q^tau(y))^2, token "
    "mean; alpha = 0 is plain SFT.",
    ("code", f"{CODE}/ppo/core_algos.py (custom_loss, algo_type='curio_sft')"),
    "sdtheory.lm.methods.curiosft.CurioSFT",
    paper="curiosft2026",
)
SYNC = claim(
    "methods.curiosft-reference-sync",
    "The reference is mixed toward the student, ref <- 0.01 ref + 0.99 student, after every "
    "5th optimiser step and left unchanged in between.",
    ("code", f"{CODE}/fsdp_workers.py (compute_ref_log_prob); scripts/1_sft.sh"),
    "sdtheory.lm.teachers.SelfTeacher",
    paper="curiosft2026",
)
CURIO_VS_SFT = claim(
    "methods.curiosft-vs-sft",
    "At equal steps on the same worked solutions, CurioSFT reaches a higher held-out accuracy "
    "than plain SFT (paired over seeds).",
    (
        "paper",
        f'{_ABSTRACT}: "CurioSFT outperforms the vanilla SFT by 2.5 points on in-distribution '
        'tasks"; the tiny-model setting is ours',
    ),
    "sdtheory.lm.methods.curiosft.CurioSFT",
    paper="curiosft2026",
)
CURIO_ENTROPY = claim(
    "methods.curiosft-entropy",
    "At equal steps on the same worked solutions, CurioSFT ends with a higher mean student "
    "entropy on the demonstration tokens than plain SFT (paired over seeds).",
    (
        "paper",
        f'{_ABSTRACT}: "we propose CurioSFT, an entropy-preserving SFT method"; the measured '
        "quantity (token entropy on the training demonstrations) is ours",
    ),
    "sdtheory.lm.methods.curiosft.CurioSFT",
    paper="curiosft2026",
)
