"""UniSD (`sdtheory.lm.methods.unisd`; paper page `papers/unisd2026/README.md`)."""

from __future__ import annotations

from .._registry import claim

_CODE = "Ahren09/UniSD@beef9a0:src/trainers/unisd_trainer.py"
_MOD = "sdtheory.lm.methods.unisd"

AGREEMENT = claim(
    "methods.unisd-agreement-weights",
    "Token agreement weights are max(1 / (1 + gamma min(d / q95(d), 10)), 0.01) with d the "
    "unbiased variance over the views of the sampled token's log-probability; sequence weights "
    "are exp(-gamma d) with d the biased variance of the views' mean log-probabilities.",
    ("code", f"{_CODE} (_agreement_weights_token, _agreement_weights_sequence)"),
    "sdtheory.lm.methods.unisd.agreement_weights",
    paper="unisd2026",
)
CLIP = claim(
    "methods.unisd-clip",
    "The per-token divergence is clipped at a static ceiling or at a quantile of the batch; "
    "written as weights (1[D < c] D plus the constant c) it equals min(D, c) in value and "
    "gradient, so the fused loss applies.",
    ("code", f"{_CODE} (_compute_loss: token_clip, token_clip_quantile)"),
    "sdtheory.lm.methods.unisd.clip_keep",
    paper="unisd2026",
)
EMA = claim(
    "methods.unisd-ema",
    "Every N steps the teacher becomes beta teacher + (1 - beta) student (N = 10, beta = 0.9), "
    "and stays fixed in between.",
    (
        "code",
        "Ahren09/UniSD@beef9a0:src/trainers/base_trainer.py (MemoryEfficientSyncRefModelCallback)",
    ),
    _MOD,
    paper="unisd2026",
)
LOSS = claim(
    "methods.unisd-loss",
    "The loss is sum w min(D, c) / sum w over the completion tokens plus lambda times the mean "
    "squared distance of the final hidden states to the teacher's (lambda = 0.1).",
    ("code", f"{_CODE} (_compute_loss: agreement weights, final-layer hidden-state loss)"),
    _MOD,
    paper="unisd2026",
)
VS_OPSD = claim(
    "methods.unisd-vs-opsd",
    "At equal rollout compute, UniSD reaches a higher held-out accuracy than OPSD (paired over "
    "seeds).",
    (
        "paper",
        'arXiv:2605.06597 abstract (as in the code README): "achieves the strongest '
        "overall performance, improving over the base model by +5.4 and the strongest baseline by "
        '+2.8"; OPSD as the baseline is ours',
    ),
    "sdtheory.lm.methods",
    paper="unisd2026",
)
