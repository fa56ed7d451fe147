"""The on-policy self-distillation method family (`sdtheory.lm.methods`; sim `lm_methods`).

The comparisons are hypotheses at CPU scale; the mechanism rows are what the method pages under
`papers/` list, each checked by the unit test the page names.
"""

from __future__ import annotations

from .._registry import claim

_OURS = ("derived", "our hypothesis; the papers' comparisons are at far larger scale")
SDPO_CODE = "lasgroup/SDPO@0e6d510:verl/trainer/ppo/core_algos.py"
OPSD_CODE = "siyan-zhao/OPSD@590ec26:opsd_trainer.py"
AVSD_CODE = "duykhuongnguyen/AVSD@3233099:src/avsd/common/multiview_distill.py"
_SRPO_3RD = (
    "secondary",
    "two third-party verl re-implementations citing the paper's routing table, read via the "
    "methods spec (/work/shared/specs/methods.md, SRPO)",
)
_ATESD_3RD = (
    "secondary",
    "a third-party review of arXiv:2605.11458, read via the methods spec "
    "(/work/shared/specs/methods.md, ATESD)",
)

ALL = claim(
    "methods.all-complete",
    "Every method of the family runs to the end of the fixed budget on the CPU setting, with "
    "finite losses and its method-specific quantities logged.",
    ("derived", "implementation check of sdtheory.lm.methods"),
    "sdtheory.lm.methods",
)
PACED_VS_OPSD = claim(
    "methods.paced-vs-opsd",
    "At equal rollout compute, PACED pass-rate weighting of OPSD reaches a higher held-out "
    "accuracy than unweighted OPSD (paired over seeds).",
    (
        "paper",
        'arXiv:2603.11178v3 abstract: "improving over unweighted distillation by up to +8.2"; '
        "the tiny-model setting is ours",
    ),
    "sdtheory.lm.methods",
    paper="paced2026",
)
SRPO_VS_GRPO = claim(
    "methods.srpo-vs-grpo",
    "At equal rollout compute, SRPO (correct -> GRPO, failed -> self-distillation) reaches "
    "a higher held-out accuracy than GRPO (paired over seeds).",
    (
        "paper",
        'arXiv:2604.02288 abstract: "It consistently surpasses the peak performance of both '
        'baselines, raising the five-benchmark average on Qwen3-8B by 3.4% over GRPO"; the paper '
        "compares peak performance at 8B scale, the equal-compute tiny-model comparison is ours",
    ),
    "sdtheory.lm.methods",
    paper="srpo2026",
)
ATESD_VS_OPSD = claim(
    "methods.atesd-vs-opsd",
    "At equal rollout compute, a learned reveal ratio (ATESD) reaches a higher held-out "
    "accuracy than OPSD with the full solution (paired over seeds).",
    ("secondary", "third-party review of arXiv:2605.11458: +1.97 AIME24 over OPSD, 1.7B"),
    "sdtheory.lm.methods",
    paper="atesd2026",
)
AVSD_VS_OPSD = claim(
    "methods.avsd-vs-opsd",
    "At equal rollout compute, the AVSD multi-view target reaches a higher held-out accuracy "
    "than single-view OPSD (paired over seeds; hypothesis: the paper's numbers are not held).",
    _OURS,
    "sdtheory.lm.methods",
    paper="avsd2026",
)
OPSD_VS_GRPO = claim(
    "methods.opsd-vs-grpo",
    "At equal rollout compute, OPSD reaches a higher held-out accuracy than GRPO "
    "(paired over seeds; hypothesis: dense token-level targets vs one binary reward per rollout).",
    _OURS,
    "sdtheory.lm.methods",
    paper="opsd2026",
)

# Mechanism rows of the method pages (checked by unit tests, named on each page).
OPSD_HIDDEN = claim(
    "methods.opsd-privileged-view-hidden",
    "The OPSD student never sees the reference solution; only the self-teacher's prompt holds it.",
    ("code", f"{OPSD_CODE} (teacher and student prompts)"),
    "sdtheory.lm.teachers.SelfTeacher",
    paper="opsd2026",
)
SDPO_ROUTING = claim(
    "methods.sdpo-sibling-routing",
    "A lone success and all-fail groups get no teacher; other rollouts get a successful sibling "
    "that is not themselves as the demonstration.",
    (
        "code",
        "lasgroup/SDPO@0e6d510:verl/trainer/ppo/ray_trainer.py "
        "(_maybe_build_self_distillation_batch)",
    ),
    "sdtheory.lm.methods",
    paper="sdpo2026",
)
SDPO_NO_TEACHER = claim(
    "methods.sdpo-no-teacher-no-loss",
    "With no sibling or feedback in the batch the SDPO loss and its gradient are exactly 0.",
    ("code", f"{SDPO_CODE} (compute_self_distillation_loss, self_distillation_mask)"),
    "sdtheory.lm.methods",
    paper="sdpo2026",
)
SDPO_IS_CLIP = claim(
    "methods.sdpo-is-clip",
    "Importance weights are clipped at is_clip and the log-ratio clamped at +-20.",
    ("code", f"{SDPO_CODE} (compute_self_distillation_loss)"),
    "sdtheory.lm.methods",
    paper="sdpo2026",
)
SRPO_ROUTING = claim(
    "methods.srpo-routing",
    "Correct rollouts go to GRPO; failed rollouts with a teacher go to self-distillation; failed "
    "rollouts without one fall back to GRPO.",
    _SRPO_3RD,
    "sdtheory.lm.methods",
    paper="srpo2026",
)
SRPO_ENTROPY = claim(
    "methods.srpo-entropy-weights",
    "Entropy weights on the distillation tokens have mean 1, decrease with the teacher's "
    "entropy and are all 1 at beta_H = 0.",
    _SRPO_3RD,
    "sdtheory.lm.methods",
    paper="srpo2026",
)
AVSD_TARGET = claim(
    "methods.avsd-target",
    "Agreeing views: the gate equals the proportionality term and the target matches a hand "
    "computation; symmetric disagreement: gate 0 and target = log q_G.",
    ("code", f"{AVSD_CODE} (gate_mode='avsd')"),
    "sdtheory.lm.methods.avsd.avsd_target",
    paper="avsd2026",
)
AVSD_BOUNDS = claim(
    "methods.avsd-target-bounds",
    "J >= 0, the gate lies in [0, 1] and log q_G <= log q* <= log q_A for any views.",
    ("derived", "Jensen's inequality on the views' log-probabilities; docs/lm/methods.md"),
    "sdtheory.lm.methods.avsd.avsd_target",
    paper="avsd2026",
)
ATESD_PREFIX = claim(
    "methods.atesd-prefix-view",
    "rho = 0 shows the answer only, rho = 1 the full solution, in between a prefix plus the "
    "answer.",
    _ATESD_3RD,
    "sdtheory.lm.methods.atesd.prefix_view",
    paper="atesd2026",
)
ATESD_PROGRESS = claim(
    "methods.atesd-learning-progress",
    "The learning-progress reward is the discounted sum of loss drops; rises count 0.",
    _ATESD_3RD,
    "sdtheory.lm.methods.atesd.learning_progress",
    paper="atesd2026",
)
ATESD_HOLD = claim(
    "methods.atesd-hold-reinforce",
    "rho is held for H student updates, and a positive advantage raises log pi(rho | s).",
    _ATESD_3RD,
    "sdtheory.lm.methods.atesd.ExposureController",
    paper="atesd2026",
)
ATESD_RESUME = claim(
    "methods.atesd-resume",
    "The exposure controller's state is restored exactly when a run resumes mid-hold.",
    ("derived", "implementation property of sdtheory.lm.methods.ExposureController.state_dict"),
    "sdtheory.lm.methods.atesd.ExposureController",
    paper="atesd2026",
)
GKD_FALLS = claim(
    "methods.gkd-loss-falls",
    "A tiny student distilled on-policy toward a sharp tiny teacher lowers the generalized JSD.",
    ("derived", "implementation check of sdtheory.lm.trainers with --method gkd"),
    "sdtheory.lm.trainers",
    paper="gkd2024",
)
