"""Claims checked by `sdtheory validate` (real runs: SmolLM2-135M-Instruct, trained networks).

Two kinds of entries:

* **New claims at language-model or trained-network scale** (ids `validate.<experiment>.*`):
  predictions that only a real run states, e.g. that a trained network's self-distillation
  surface agrees with the closed form on its empirical NTK.
* **Claims that a sim already checks on a toy** keep their id here (one id per claim at every
  scale; `CheckResult.scale` records `lm-cpu`, `lm-cpu-long`, ...). They are declared where the
  sims declare them; the few that validate needs are re-declared below *identically* (so
  re-registration is a no-op) until the catalog modules of their area hold them.

Every prediction is stated here, with its source, before any run; the experiments in
`sdtheory.lm.validate` measure and decide them with the one rule (`sdtheory.claims`).
"""

from __future__ import annotations

from .. import claim

PACED_V3 = "arXiv:2603.11178 v3 abstract"
OPSD_V2 = "arXiv:2601.18734 v2 abstract"
TAID_ABS = "arXiv:2501.16937 abstract"

# ----------------------------------------------------------------------------------------------
# Re-declared sim claims (identical to their sims' declarations; the same claim at LM scale)

PACED_SNR_MASTERED = claim(
    "paced.snr-collapse-mastered",
    "The cross-problem gradient SNR collapses as the student pass rate p -> 1 (mastered "
    "problems): the top pass-rate bin has SNR well below the peak.",
    ("paper", "arXiv:2603.11178 v3 abstract (v1: 'provably vanishes at both extremes')"),
    "sdtheory.nets.paced.measure_snr_curve",
    paper="paced2026",
)
PACED_SNR_UNREACHABLE = claim(
    "paced.snr-collapse-unreachable",
    "The cross-problem gradient SNR collapses as p -> 0 (out-of-reach problems): the bottom "
    "pass-rate bin has SNR well below the peak.",
    ("paper", "arXiv:2603.11178 v3 abstract (v1: 'provably vanishes at both extremes')"),
    "sdtheory.nets.paced.measure_snr_curve",
    paper="paced2026",
)
PACED_DEFAULT_EFF = claim(
    "paced.default-kernel-efficiency",
    "On the measured per-bin signal ||E g|| and noise tr Cov g, the default weight p(1-p) reaches "
    "SNR efficiency >= 0.9 of the optimal weights s/v (common-direction model).",
    ("derived", "docs/theory/paced.md §2, applied to the measured curve"),
    "sdtheory.theory.paced.snr_efficiency",
    paper="paced2026",
)
PACED_BETA_DELTA = claim(
    "paced.beta-fit-delta",
    "A Beta kernel fitted to w* = p^a (1-p)^b h(p) with implied misspecification delta reaches "
    "SNR efficiency >= 1 - delta^2.",
    ("derived", "docs/theory/paced.md §2-3; sdtheory/symbolic/paced.py"),
    "sdtheory.theory.paced.implied_delta",
    paper="paced2026",
)
KRR_NETWORK_DEVIATION = claim(
    "krr.network-deviation-shrinks",
    "Self-distilling a two-layer network by gradient descent (one fresh fit per step) follows the "
    "kernel closed form with its empirical NTK, with a deviation that shrinks as the width grows "
    "(lazy training; expected order width^-1/2).",
    (
        "derived",
        "sdtheory/nets/krr.py docstring: linearisation around theta_0 gives kernel ridge "
        "with the empirical NTK (Jacot et al. 2018; Lee et al. 2019)",
    ),
    "sdtheory.nets.krr.distill_network",
    paper="borup2021",
)
KRR_RANDOM_FEATURES = claim(
    "krr.random-features-exact",
    "With only the readout trained (random features), gradient descent to convergence reproduces "
    "the closed form with the random-features kernel at every step, at any width.",
    ("derived", "sdtheory/nets/krr.py docstring: the readout objective is exactly kernel ridge"),
    "sdtheory.nets.krr.distill_network",
    paper="borup2021",
)
KRR_LIMIT = claim(
    "krr.limit-amplified-ridge",
    "The infinite-step self-distilled predictor equals ridge regression with lambda/alpha.",
    (
        "code",
        "Kennethborup/self_distillation@cb20d6c toy_example.ipynb (B_lim, Y_lim); "
        "proof derived in docs/theory/krr.md",
    ),
    "sdtheory.theory.krr.KernelSelfDistillation.predict",
    paper="borup2021",
)
KRR_OPTIMAL_ALPHA = claim(
    "krr.optimal-alpha-derived",
    "Step-tau predictions are affine in alpha_tau, so the alpha minimising squared error to a "
    "target is <r, t - p>/||r||^2 (greedy per step); it equals the grid-search minimiser. "
    "DERIVED: not the paper's own criterion, which was not retrievable.",
    ("derived", "docs/theory/krr.md (optimal alpha); spec 1.2.5"),
    "sdtheory.theory.krr.KernelSelfDistillation.optimal_alpha",
    paper="borup2021",
)
META_CONTRACTION = claim(
    "meta.arithmetic-kl-contraction",
    "Arithmetic anchoring: KL(p0||q_n) <= (1-lam)^n KL(p0||q0), one step at a time.",
    (
        "derived",
        "docs/theory/meta.md §2 (joint convexity of KL); sdtheory.symbolic.meta (two-point case)",
    ),
    "sdtheory.theory.meta.kl_contraction_bound",
    paper="flouro2026",
)
TAID_DIRECTIONS = claim(
    "taid.toy-kl-directions",
    "With a low-capacity student, reverse KL is mode-seeking (more mass on the teacher's "
    "modes, lower entropy, large forward KL) and forward KL mass-covering (mode averaging: the "
    "highest entropy of FKL, RKL, TVD and skew KL).",
    ("derived", "classical property of the KL directions (Minka 2005); docs/theory/taid.md §5"),
    "sims/taid_toys.py",
    paper="taid2025",
)
TAID_SCHEDULE = claim(
    "taid.toy-schedule",
    "In training, the adaptive t never decreases and never falls below the linear schedule; "
    "after N steps both schedules end in [t_start + (t_end - t_start)(N-1)/N, t_end] (the last "
    "official update sees global_step = N-1, so the linear schedule never reaches t_end).",
    ("code", "SakanaAI/TAID a062892 src/distil_losses/taid.py update_t"),
    "sdtheory.theory.taid.TAIDSchedule",
    paper="taid2025",
)
METHODS_PACED_VS_OPSD = claim(
    "methods.paced-vs-opsd",
    "At equal rollout compute, PACED pass-rate weighting of OPSD reaches a higher held-out "
    "accuracy than unweighted OPSD.",
    ("paper", "arXiv:2603.11178 v3 abstract: up to +8.2 over unweighted distillation"),
    "sdtheory.lm.methods",
    paper="paced2026",
)

# ----------------------------------------------------------------------------------------------
# New claims at language-model / trained-network scale

PACED_WEIGHTS_VANISH = claim(
    "validate.paced.implied-weights-vanish",
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
    "validate.paced.default-beats-uniform-efficiency",
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
    "validate.kernel.lazy-agreement",
    "A network self-distilled by gradient descent on real data (scikit-learn digits, label "
    "noise), in the NTK parametrisation at the largest width run, has a held-out error surface "
    "over (alpha, step) within 5% (mean relative deviation) of the closed form on its empirical "
    "NTK at initialisation, computed before training.",
    ("derived", "sdtheory/nets/regimes.py docstring: linearisation at theta_0 gives kernel ridge"),
    "sdtheory.nets.regimes.predicted_surface",
    paper="borup2021",
)
KERNEL_RANK = claim(
    "validate.kernel.rank-correlation",
    "In the same lazy setting the predicted and trained error surfaces rank the (alpha, step) "
    "cells alike: Spearman correlation > 0.9.",
    ("derived", "consequence of validate.kernel.lazy-agreement (docs/lm/validate.md)"),
    "sdtheory.nets.regimes.spearman",
    paper="borup2021",
)
KERNEL_BEST_CELL = claim(
    "validate.kernel.best-cell",
    "The (alpha, step) that the closed form predicts best gives a trained held-out error within "
    "2% of the best trained cell (relative regret < 0.02), in the lazy setting.",
    ("derived", "consequence of validate.kernel.lazy-agreement (docs/lm/validate.md)"),
    "sdtheory.nets.regimes.predicted_surface",
    paper="borup2021",
)
KERNEL_RICH = claim(
    "validate.kernel.rich-departs",
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
    "validate.krr.last-block-ntk",
    "Self-distilling SmolLM2's last transformer block (fresh fit from the pretrained block each "
    "step, ridge penalty towards it, fixed readout of the mean-pooled output) gives held-out "
    "errors within 10% of the closed form on the block's empirical NTK, in every (alpha, step).",
    ("derived", "linearisation of the block at its pretrained weights (docs/lm/validate.md)"),
    "sdtheory.lm.validate.krr",
    paper="borup2021",
)

TAID_BEATS = claim(
    "validate.taid.beats-fkl-rkl",
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
    "validate.taid.capacity-gap",
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
    "validate.meta.unrealisable-floor",
    "A student that cannot represent p0 does not follow the contraction bound to 0: after N "
    "generations its held-out KL(p0||q_N) stays above (1-lam)^N KL(p0||q_0).",
    ("derived", "docs/theory/meta.md (projected iterates; realizability is needed)"),
    "sdtheory.theory.meta.projected_fixed_point",
    paper="flouro2026",
)
META_DRIFT = claim(
    "validate.meta.no-anchor-drift",
    "Without the anchor (lam = 0) finite-sample generations drift away from p0: held-out "
    "KL(p0||q_N) > KL(p0||q_0).",
    ("derived", "docs/theory/meta.md (lam = 0 is the identity; finite-sample drift)"),
    "sdtheory.theory.meta.finite_sample_generations",
    paper="flouro2026",
)

OPSD_TOKENS = claim(
    "validate.opsd.token-efficiency",
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
