"""Claims checked by `sdtheory validate` (real runs: SmolLM2-135M-Instruct, trained networks).

Two kinds of entries:

* **New claims at language-model or trained-network scale** (ids `validate.<experiment>.*`):
  predictions that only a real run states, e.g. that a trained network's self-distillation
  surface agrees with the closed form on its empirical NTK.
* **Claims that a sim already checks on a toy** keep their id (one id per claim at every scale;
  `CheckResult.scale` records `lm-cpu`, `lm-cpu-long`, ...): they are declared in their area's
  catalog module and only named here.

Every prediction is stated here, with its source, before any run; the experiments in
`sdtheory.lm.validate` measure and decide them with the one rule (`sdtheory.claims`).
"""

from __future__ import annotations

from .. import claim
from . import krr as _krr
from . import meta as _meta
from . import methods as _methods
from . import paced as _paced
from . import taid as _taid

PACED_V3 = "arXiv:2603.11178 v3 abstract"
OPSD_V2 = "arXiv:2601.18734 v2 abstract"
TAID_ABS = "arXiv:2501.16937 abstract"

# ----------------------------------------------------------------------------------------------
# Claims a sim also checks (declared in their area's catalog module; the same claim at LM scale)

PACED_SNR_MASTERED = _paced.MASTERED
PACED_SNR_UNREACHABLE = _paced.UNREACHABLE
PACED_DEFAULT_EFF = _paced.DEFAULT_EFF
PACED_BETA_DELTA = _paced.FIT_DELTA
KRR_NETWORK_DEVIATION = _krr.NETWORK
KRR_RANDOM_FEATURES = _krr.RF
KRR_LIMIT = _krr.LIMIT
KRR_OPTIMAL_ALPHA = _krr.OPT
META_CONTRACTION = _meta.KL_BOUND
TAID_DIRECTIONS = _taid.DIRECTIONS
TAID_SCHEDULE = _taid.SCHEDULE
METHODS_PACED_VS_OPSD = _methods.PACED_VS_OPSD

# ----------------------------------------------------------------------------------------------
# New claims at language-model / trained-network scale

PACED_WEIGHTS_VANISH = claim(
    "validate.paced-implied-weights-vanish",
    "On SmolLM2, the SNR-optimal weight s/v implied by the measured cross-problem gradients "
    "(s = ||mean g||, v = tr Cov g per pass-rate bin) is lower for the problems never solved "
    "(p = 0) and for those always solved (p = 1) than in the middle bin: the optimal weight "
    "vanishes toward both ends, as a Beta kernel p^a (1-p)^b with a, b > 0 does.",
    (
        "paper",
        f'{PACED_V3}: "We prove the Beta kernel w(p) = p^alpha(1-p)^beta is the leading-order '
        'optimal weight family arising from the SNR boundary-collapse structure"; the s/v '
        "model is ours (docs/theory/paced.md §2)",
    ),
    "sdtheory.theory.paced.optimal_weights",
    paper="paced2026",
)
PACED_DEFAULT_VS_UNIFORM = claim(
    "validate.paced-default-beats-uniform-efficiency",
    "On SmolLM2's measured (signal, noise) curve, the default weight p(1-p) has a higher SNR "
    "efficiency than uniform weights (the weighting concentrates on the informative problems).",
    (
        "derived",
        f'docs/theory/paced.md §2 applied to the measured curve; motivated by {PACED_V3}: "wasting '
        'compute on problems the student has already mastered or cannot yet solve"',
    ),
    "sdtheory.theory.paced.snr_efficiency",
    paper="paced2026",
)

KERNEL_LAZY_AGREEMENT = claim(
    "validate.kernel-lazy-agreement",
    "A network self-distilled by gradient descent on real data (scikit-learn digits, label "
    "noise), in the NTK parametrisation at the largest width run, has a held-out error surface "
    "over (alpha, step) within 5% (mean relative deviation) of the closed form on its empirical "
    "NTK at initialisation, computed before training.",
    ("derived", "sdtheory/nets/regimes.py docstring: linearisation at theta_0 gives kernel ridge"),
    "sdtheory.nets.regimes.predicted_surface",
    paper="borup2021",
)
KERNEL_RANK = claim(
    "validate.kernel-rank-correlation",
    "In the same lazy setting the predicted and trained error surfaces rank the (alpha, step) "
    "cells alike: Spearman correlation > 0.9.",
    ("derived", "consequence of validate.kernel-lazy-agreement (docs/lm/validate.md)"),
    "sdtheory.nets.regimes.spearman",
    paper="borup2021",
)
KERNEL_BEST_CELL = claim(
    "validate.kernel-best-cell",
    "The (alpha, step) that the closed form predicts best gives a trained held-out error within "
    "2% of the best trained cell (relative regret < 0.02), in the lazy setting.",
    ("derived", "consequence of validate.kernel-lazy-agreement (docs/lm/validate.md)"),
    "sdtheory.nets.regimes.predicted_surface",
    paper="borup2021",
)
KERNEL_RICH = claim(
    "validate.kernel-rich-departs",
    "In the mean-field scaling (output scale kappa = width^-1/2, the rich regime) the same "
    "closed form stops predicting: the mean relative deviation of the trained surface exceeds "
    "5% at the largest width.",
    (
        "derived",
        "sdtheory/nets/regimes.py docstring: parameters move by O(1/kappa), so the linearisation "
        "error does not vanish when kappa -> 0 (lazy-training scaling of Chizat, Oyallon & Bach)",
    ),
    "sdtheory.nets.regimes.self_distill_surface",
    paper="borup2021",
)
KRR_LAST_BLOCK = claim(
    "validate.krr-last-block-ntk",
    "Self-distilling SmolLM2's last transformer block (fresh fit from the pretrained block each "
    "step, ridge penalty towards it, fixed readout of the mean-pooled output) gives held-out "
    "errors within 10% of the closed form on the block's empirical NTK, in every (alpha, step).",
    ("derived", "linearisation of the block at its pretrained weights (docs/lm/validate.md)"),
    "sdtheory.lm.validate.krr",
    paper="borup2021",
)

TAID_BEATS = claim(
    "validate.taid-beats-fkl-rkl",
    "At equal steps, a student trained with TAID has a lower held-out KL(teacher||student) than "
    "the better of the forward-KL and reverse-KL students, for each student size (paired seeds).",
    (
        "paper",
        f"{TAID_ABS}: \"Our comprehensive experiments demonstrate TAID's superior performance "
        'across various model sizes"; the metric (held-out forward KL) is ours',
    ),
    "sdtheory.lm.methods.taid.taid_loss",
    paper="taid2025",
)
TAID_GAP = claim(
    "validate.taid-capacity-gap",
    "TAID's edge (relative reduction of held-out KL(teacher||student) against the better "
    "baseline) grows with the teacher-student capacity gap: across student sizes it has a "
    "negative slope in log(student parameters), i.e. the smallest student gains most.",
    (
        "paper",
        f'{TAID_ABS}: "empirically show its effectiveness in addressing the capacity gap"; the '
        "quantitative form (slope in log parameters) is ours",
    ),
    "sdtheory.lm.methods.taid.taid_loss",
    paper="taid2025",
)

META_FLOOR = claim(
    "validate.meta-unrealisable-floor",
    "A student that cannot represent p0 does not follow the contraction bound to 0: after N "
    "generations its held-out KL(p0||q_N) stays above (1-lam)^N KL(p0||q_0).",
    ("derived", "docs/theory/meta.md (projected iterates; realizability is needed)"),
    "sdtheory.theory.meta.projected_fixed_point",
    paper="flouro2026",
)
META_DRIFT = claim(
    "validate.meta-no-anchor-drift",
    "Without the anchor (lam = 0) finite-sample generations drift away from p0: held-out "
    "KL(p0||q_N) > KL(p0||q_0).",
    ("derived", "docs/theory/meta.md (lam = 0 is the identity; finite-sample drift)"),
    "sdtheory.theory.meta.finite_sample_generations",
    paper="flouro2026",
)

OPSD_TOKENS = claim(
    "validate.opsd-token-efficiency",
    "OPSD reaches GRPO's held-out accuracy with fewer rollout tokens: at equal rollout tokens "
    "its accuracy gain over the initial model is at least GRPO's.",
    (
        "paper",
        f'{OPSD_V2}: "achieving 8-12x token efficiency compared to reinforcement learning '
        'methods such as GRPO"',
    ),
    "sdtheory.lm.validate.opsd",
    paper="opsd2026",
)
