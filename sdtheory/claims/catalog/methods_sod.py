"""SOD (`sdtheory.lm.methods.sod`) and the multi-turn tool environment it runs in
(`sdtheory.lm.env`); paper page `papers/sod2026/README.md`."""

from __future__ import annotations

from .._registry import claim

SOD_CODE = "YoungZ365/SOD@110c4b8:verl/trainer/ppo/ray_trainer.py"

ENV_MASK = claim(
    "methods.env-tool-outputs-masked",
    "In the calculator environment the tool outputs are part of the completion (attended to) but "
    "never trained on: the loss mask is False exactly on them, in rollouts and demonstrations, "
    "and a rollout stops at end of turn, at its token budget or after max_turns tool calls.",
    ("code", f"{SOD_CODE} (_extract_step_boundaries: response_mask 0 on tool tokens)"),
    "sdtheory.lm.env.multiturn_sample",
    paper="sod2026",
)
STEP_WEIGHTS = claim(
    "methods.sod-step-weights",
    "Per rollout, steps are the maximal runs of assistant tokens; d_k is the mean |log pi_old - "
    "log pi_T| over step k; w_1 = 1 and w_k = min(prod_{u<k} (d_u+eps)/(d_{u+1}+eps), 1+delta), "
    "broadcast to the step's tokens (0 on tool outputs).",
    ("code", f"{SOD_CODE} (compute_stepwise_opd_weights)"),
    "sdtheory.lm.methods.sod.sod_token_weights",
    paper="sod2026",
)
TELESCOPING = claim(
    "methods.sod-telescoping",
    "The running product of adjacent ratios telescopes: w_k = min((d_1+eps)/(d_k+eps), 1+delta).",
    ("derived", "methods spec 1.8 and sdtheory.lm.methods.sod.telescoped_weights"),
    "sdtheory.lm.methods.sod.telescoped_weights",
    paper="sod2026",
)
ADVANTAGE = claim(
    "methods.sod-advantage",
    "The SOD loss is the clipped PPO surrogate (clip 0.2 / 0.28, token mean over assistant "
    "tokens) of the advantage A_t = A_GRPO + c w_k (log pi_T(y_t) - log pi_old(y_t)).",
    ("code", f"{SOD_CODE} (_apply_token_kl_regularizer); examples/SOD/run_sod.sh (clip ratios)"),
    "sdtheory.lm.methods.sod.SOD",
    paper="sod2026",
)
SOD_VS_GRPO = claim(
    "methods.sod-vs-grpo",
    "At equal rollout compute in the calculator environment, SOD (a better separate teacher) "
    "reaches a higher held-out accuracy than GRPO (paired over seeds).",
    (
        "paper",
        'arXiv:2605.07725 abstract: "SOD achieves up to 20.86% improvement over the '
        'second-best baseline"; the tiny-model calculator setting is ours',
    ),
    "sdtheory.lm.methods.sod.SOD",
    paper="sod2026",
)
