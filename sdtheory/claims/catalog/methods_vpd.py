"""VPD (`sdtheory.lm.methods.vpd`; paper page `papers/vpd2026/README.md`)."""

from __future__ import annotations

from .._registry import claim

_3RD = (
    "secondary",
    "a third-party implementation note (katgpt-rs plan 120) citing arXiv:2605.15113: "
    "BCO unpaired preference loss, reward shift, dynamic prior, F = 5",
)
_MOD = "sdtheory.lm.methods.vpd"

BCO = claim(
    "methods.vpd-bco-loss",
    "The E-step loss of a rollout is -log sigmoid(r - delta) if it verified and -log sigmoid(delta "
    "- r) otherwise, r = beta (log pi(y | x, f) - sg log pi(y | x)); its gradient raises the "
    "teacher's likelihood of verified rollouts and lowers that of failed ones.",
    _3RD,
    "sdtheory.lm.methods.vpd.bco_loss",
    paper="vpd2026",
)
REFERENCE = claim(
    "methods.vpd-dynamic-reference",
    "The E-step's reference is the current student (detached), so it moves with every update; "
    "the shift delta is the midpoint of running means of the verified and failed rollouts' "
    "implicit rewards.",
    _3RD,
    "sdtheory.lm.methods.vpd.RewardShift",
    paper="vpd2026",
)
MSTEP = claim(
    "methods.vpd-mstep",
    "The M-step trains the student by reverse KL to the feedback-conditioned teacher (the same "
    "network, detached) on its own rollouts.",
    (
        "paper",
        'arXiv:2605.15113 abstract: "In the M-step, the student internalizes this dense '
        'distributional guidance on its own on-policy rollouts"',
    ),
    _MOD,
    paper="vpd2026",
)
VS_GRPO = claim(
    "methods.vpd-vs-grpo",
    "At equal rollout compute, VPD reaches a higher held-out accuracy than GRPO (paired over "
    "seeds).",
    (
        "paper",
        'arXiv:2605.15113 abstract: "VPD consistently outperforms both standard RLVR and '
        'existing self-distillation baselines"; the tiny-model setting is ours',
    ),
    "sdtheory.lm.methods",
    paper="vpd2026",
)
