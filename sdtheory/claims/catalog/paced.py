"""PACED: pass-rate weighting of distillation (Xu et al. 2026; abstracts v1 and v3 only).

Sims `paced_finite_k`, `paced_robustness`, `paced_snr`, `paced_training`, `paced_two_stage`;
theory `sdtheory.theory.paced`, `sdtheory.nets.paced`, `sdtheory.nets.paced_modes`.
"""

from __future__ import annotations

from .._registry import claim

PACED = "paced2026"
V1 = "arXiv:2603.11178v1 abstract"
V3 = "arXiv:2603.11178v3 abstract"
_FINITE = (
    "derived",
    "docs/theory/paced.md §1; sdtheory/symbolic/paced.py::derive_plugin_expectation",
)
_ROBUST = ("derived", "docs/theory/paced.md §2-3; sdtheory/symbolic/paced.py")
_MODES = ("derived", "docs/theory/paced.md §5 (mass-covering vs mode-seeking KL)")

BIAS = claim(
    "paced.finite-k-bias",
    "With K rollouts E[p_hat(1-p_hat)] = (1-1/K) p(1-p); K/(K-1) p_hat(1-p_hat) is unbiased.",
    _FINITE,
    "sdtheory.theory.paced.unbiased_variance",
    paper=PACED,
)
ZERO = claim(
    "paced.zero-weight-fraction",
    "With alpha, beta > 0 a problem gets weight exactly 0 with probability p^K + (1-p)^K.",
    _FINITE,
    "sdtheory.theory.paced.zero_weight_probability",
    paper=PACED,
)
EFF = claim(
    "paced.finite-k-efficiency",
    "The SNR efficiency of p_hat(1-p_hat) weights (model s = p(1-p), v = 1) equals "
    "(sum E[w]s)^2 / (sum E[w^2] v sum s^2/v) for many problems; it tends to 1 as K grows.",
    _FINITE,
    "sdtheory.theory.paced.expected_beta_weight",
    paper=PACED,
)
OPT = claim(
    "paced.optimal-weights",
    "SNR efficiency is <= 1 for every weighting and equals 1 exactly at w* proportional to s/v "
    "(Cauchy-Schwarz).",
    _ROBUST,
    "sdtheory.theory.paced.optimal_weights",
    paper=PACED,
)
AGG = claim(
    "paced.misspec-aggregate",
    "With w = w*(1+eps), |eps_i| <= delta, the aggregate SNR efficiency is >= 1 - delta^2 "
    "(random and adversarial eps).",
    _ROBUST,
    "sdtheory.theory.paced.misspecification_bound",
    paper=PACED,
)
POINT = claim(
    "paced.misspec-pointwise",
    "Pointwise, one SGD step with weight w*(1+eps) makes (1 - eps^2) of the optimal expected "
    "progress, so >= 1 - delta^2 of it.",
    _ROBUST,
    "sdtheory.theory.paced.pointwise_progress",
    paper=PACED,
)
TWO_POINT = claim(
    "paced.two-point-tight",
    "The floor 1 - delta^2 is attained: eps = +delta on SNR mass (1-delta)/2 and -delta on the "
    "rest (the Kantorovich extreme).",
    _ROBUST,
    "sdtheory.theory.paced.two_point_construction",
    paper=PACED,
)
ORDER = claim(
    "paced.misspec-order",
    "Under bounded multiplicative misspecification delta the worst-case efficiency loss is "
    "O(delta^2) (in our definitions it is exactly delta^2 at the worst case: slope 2 in log-log).",
    (
        "paper",
        f'{V1}: "under bounded multiplicative misspecification, worst-case efficiency loss is '
        'only O(δ^2)"; efficiency and delta are our definitions (docs/theory/paced.md §2)',
    ),
    "sdtheory.theory.paced.misspecification_bound",
    paper=PACED,
)
FIT = claim(
    "paced.beta-fit-recovers",
    "The Beta-kernel fits (least squares, boundary, minimax) recover the exponents of an exact "
    "Beta kernel w* = c p^a (1-p)^b.",
    _ROBUST,
    "sdtheory.theory.paced.fit_beta_kernel",
    paper=PACED,
)
FIT_DELTA = claim(
    "paced.beta-fit-delta",
    "A Beta kernel fitted to w* = p^a (1-p)^b h(p) with implied misspecification delta reaches "
    "SNR efficiency >= 1 - delta^2.",
    _ROBUST,
    "sdtheory.theory.paced.implied_delta",
    paper=PACED,
)
_BELL = (
    "paper",
    f'{V3}: "the cross-problem gradient signal-to-noise ratio (SNR) follows a bell curve over '
    'student pass rate, collapsing at both extremes"; measured here on a trained toy student '
    "(sdtheory.nets.paced), the collapse criterion (end bin below half the median "
    "interior bin) is ours",
)
MASTERED = claim(
    "paced.snr-collapse-mastered",
    "The cross-problem gradient SNR collapses as the student pass rate p -> 1 (mastered "
    "problems): the SNR of the top pass-rate bin is below half the median SNR of the "
    "interior bins (decided on a bootstrap band over problems).",
    _BELL,
    "sdtheory.nets.paced.measure_snr_curve",
    paper=PACED,
)
UNREACHABLE = claim(
    "paced.snr-collapse-unreachable",
    "The cross-problem gradient SNR collapses as p -> 0 (out-of-reach problems): the SNR of the "
    "bottom pass-rate bin is below half the median SNR of the interior bins (decided on "
    "a bootstrap band over problems).",
    _BELL,
    "sdtheory.nets.paced.measure_snr_curve",
    paper=PACED,
)
ESTIMATOR = claim(
    "paced.snr-binned-estimator",
    "On gradients drawn from the SNR model g = s(p) u + xi, the binned, debiased estimator "
    "recovers every bin's SNR (mean s)^2 / (Var s + mean v) within its bootstrap error.",
    ("derived", "docs/theory/paced.md §2"),
    "sdtheory.nets.paced.measure_snr_curve",
    paper=PACED,
)
DEFAULT_EFF = claim(
    "paced.default-kernel-efficiency",
    "On the measured per-bin signal ||E g|| and noise tr Cov g, the default weight p(1-p) reaches "
    "SNR efficiency >= 0.9 of the optimal weights s/v (common-direction model).",
    ("derived", "docs/theory/paced.md §2, applied to the measured curve"),
    "sdtheory.theory.paced.snr_efficiency",
    paper=PACED,
)
PROGRESS = claim(
    "paced.weighted-progress",
    "At equal gradient compute, Beta-kernel weighting by the student's pass rate makes more "
    "progress than uniform distillation (held-out pass rate after the same number of steps, "
    "paired over seeds).",
    (
        "paper",
        f'{V3}: "improving over unweighted distillation by up to +8.2"; the toy setting and '
        "metric are ours",
    ),
    "sdtheory.nets.paced.weighted_distillation",
    paper=PACED,
)
FORGET = claim(
    "paced.weighted-forgetting",
    "Beta-kernel weighting forgets little on easy held-out problems: its pass-rate drop there "
    "exceeds uniform distillation's by less than 0.01 (paired over seeds).",
    (
        "paper",
        f'{V3}: "while reducing forgetting to 1.4% and 0.6% in distillation and '
        'self-distillation"; the easy-problem measure and the 0.01 margin are ours',
    ),
    "sdtheory.nets.paced.weighted_distillation",
    paper=PACED,
)
COVERS = claim(
    "paced.fkl-covers",
    "Forward KL from the teacher covers the teacher's modes: its coverage exceeds reverse KL's "
    "(paired over random starts).",
    _MODES,
    "sdtheory.nets.paced_modes.train",
    paper=PACED,
)
SEEKS = claim(
    "paced.rkl-seeks",
    "Reverse KL is mode-seeking: its precision (student mass on the teacher's high-density set) "
    "exceeds forward KL's (paired over random starts).",
    _MODES,
    "sdtheory.nets.paced_modes.train",
    paper=PACED,
)
CONSOLIDATES = claim(
    "paced.two-stage-consolidates",
    "Forward-then-reverse KL, at the same total steps, ends on a heavier teacher mode than "
    "reverse KL alone from the same start (teacher weight of the mode the student sits on, "
    "paired over random starts): the forward phase moves the student to the mass-covering "
    "solution, from which the reverse phase consolidates.",
    (
        "paper",
        f'{V1}: "A forward-KL-then-reverse-KL schedule yields the strongest results in our '
        'setting ... supporting a mode-coverage-then-consolidation interpretation"; the toy '
        "and the mode-weight prediction are ours (docs/theory/paced.md §5)",
    ),
    "sdtheory.nets.paced_modes.train",
    paper=PACED,
)
