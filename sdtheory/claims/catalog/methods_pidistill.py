"""pi-Distill and PI-OPSD (`sdtheory.lm.methods.pidistill`; page `papers/pidistill2026/README.md`)."""

from __future__ import annotations

from .._registry import claim

_SPEC = "a third-party account (author blog and survey table) read via the methods spec §1.2"
_MOD = "sdtheory.lm.methods.pidistill"

JOINT = claim(
    "methods.pidistill-joint-gradient",
    "One set of weights is trained through both forwards: the teacher term's gradient enters only "
    "through the forward after the privileged information, the student term's only through the "
    "forward without it, and the loss is linear in alpha (alpha = 0.5 trains both).",
    (
        "secondary",
        f"joint objective J = alpha J_T + (1 - alpha) J_S with shared parameters: {_SPEC}",
    ),
    _MOD,
    paper="pidistill2026",
)
IS_WEIGHT = claim(
    "methods.pidistill-is-weight",
    "On the teacher's samples the student term's gradient per token is -(1 - alpha) A "
    "min(pi_S / pi_T, c) times that of log pi_S, the teacher term's -alpha A times that of log "
    "pi_T (the exact student term was not retrieved: this form is ours).",
    ("derived", "sdtheory/lm/methods/pidistill.py, pidistill_surrogate docstring"),
    "sdtheory.lm.methods.pidistill.pidistill_surrogate",
    paper="pidistill2026",
)
TEACHER_SAMPLES = claim(
    "methods.pidistill-teacher-samples",
    "pi-Distill's rollouts are sampled from the teacher, the student's network after the "
    "privileged view; evaluation samples the student without it.",
    ("secondary", f"'one set of samples drawn from the teacher': {_SPEC}"),
    _MOD,
    paper="pidistill2026",
)
PIOPSD_RKL = claim(
    "methods.piopsd-reverse-kl",
    "PI-OPSD trains GRPO on student rollouts plus beta KL(pi_S || sg pi_T) to the same network "
    "after the privileged view; no gradient reaches the teacher's forward.",
    (
        "paper",
        'arXiv:2602.04942 abstract: "trains using Reinforcement Learning (RL) with a reverse '
        'KL-penalty between the student and the PI-conditioned teacher"',
    ),
    _MOD,
    paper="pidistill2026",
)
VS_PIOPSD = claim(
    "methods.pidistill-vs-piopsd",
    "At equal rollout compute, pi-Distill reaches a higher held-out accuracy than PI-OPSD "
    "(paired over seeds).",
    (
        "secondary",
        "a third-party summary of arXiv:2602.04942 (sciencestack.ai): pi-Distill "
        "'often delivering the strongest gains and OPSD offering a robust alternative'",
    ),
    "sdtheory.lm.methods",
    paper="pidistill2026",
)
