"""Skill-SD (`sdtheory.lm.methods.skillsd`, `skills`); paper page
`papers/skillsd2026/README.md`. No official code was found: the loss is the methods spec's
derived form and the skill memory is ours."""

from __future__ import annotations

from .._registry import claim

_ABSTRACT = "arXiv:2604.10674 abstract"

UCB = claim(
    "methods.skillsd-ucb",
    "Skills are retrieved by UCB1 (unpulled arms first, then mean + c sqrt(2 ln N / n)); a "
    "step's picks spread over the arms; on Bernoulli arms the bandit pulls the best arm most.",
    (
        "secondary",
        "a third-party summary of arXiv:2604.10674 (arxivlens): 'Skill retrieval relies on a "
        "lightweight UCB bandit'; the UCB1 form, the spreading and the reward are ours",
    ),
    "sdtheory.lm.methods.skills.SkillMemory",
    paper="skillsd2026",
)
TEACHER_PROMPT = claim(
    "methods.skillsd-teacher-prompt",
    "Retrieved skills condition only the teacher: the teacher prompt is the student's prompt "
    "plus the skills, and the student's prompt never holds them.",
    (
        "paper",
        f'{_ABSTRACT}: "These skills serve as dynamic privileged information conditioning only '
        'the teacher, while the student always acts under the plain task prompt"',
    ),
    "sdtheory.lm.teachers.skill_messages",
    paper="skillsd2026",
)
IW_RKL = claim(
    "methods.skillsd-iw-rkl",
    "The distillation term is -mean_t rho_t sg(log q(y_t) - log p(y_t)) log p(y_t) over "
    "assistant tokens, rho_t = min(p/p_old, clip) detached, added to the GRPO loss.",
    ("derived", "methods spec 1.9 (the paper's exact weight was not found)"),
    "sdtheory.lm.methods.skillsd.SkillSD",
    paper="skillsd2026",
)
MEMORY = claim(
    "methods.skillsd-memory",
    "After each step every picked arm gets its rollouts' bandit reward (2R-1) mean(log q - log "
    "p) and the step's first success and first failure become skills; the memory is restored "
    "exactly when a run resumes.",
    ("derived", "ours: sdtheory.lm.methods.skills (module docstring)"),
    "sdtheory.lm.methods.skillsd.SkillSD",
    paper="skillsd2026",
)
SKILLSD_VS_GRPO = claim(
    "methods.skillsd-vs-grpo",
    "At equal rollout compute in the calculator environment, Skill-SD reaches a higher "
    "held-out accuracy than GRPO (paired over seeds).",
    (
        "paper",
        f'{_ABSTRACT}: "Skill-SD substantially outperforms the standard RL baseline, improving '
        'both vanilla GRPO (+14.0%/+10.9% on AppWorld/Sokoban)"; the tiny-model setting is ours',
    ),
    "sdtheory.lm.methods.skillsd.SkillSD",
    paper="skillsd2026",
)
