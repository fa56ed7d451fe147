"""Kernel self-distillation with ground-truth weight alpha (Borup & Andersen 2021).

Sims `krr_toy`, `krr_alpha_steps`, `krr_network`; theory `sdtheory.theory.krr`, `sdtheory.nets.krr`.
"""

from __future__ import annotations

from .._registry import claim

BORUP = "borup2021"
ABSTRACT = "arXiv:2102.13088 abstract"
NB = "Kennethborup/self_distillation@cb20d6c:toy_example.ipynb"

CLOSED = claim(
    "krr.closed-form-equals-refits",
    "Predictions after any number of steps (constant or per-step alpha, training or new points) "
    "equal explicit iterative ridge refits; computed from one eigendecomposition.",
    (
        "derived",
        "closed sum: docs/theory/krr.md §1, proof sdtheory.symbolic.krr.prove_closed_sum; the "
        f'recursion is read in {NB}; {ABSTRACT}: "any such function obtained with '
        'self-distillation can be calculated directly as a function of the initial fit"',
    ),
    "sdtheory.theory.krr.KernelSelfDistillation.predict",
    paper=BORUP,
)
LIMIT = claim(
    "krr.limit-amplified-ridge",
    "The infinite-step self-distilled predictor equals ridge regression with lambda/alpha.",
    (
        "code",
        f"{NB} (B_lim, Y_lim); proof sdtheory.symbolic.krr.prove_limit; {ABSTRACT}: "
        '"infinite distillation steps yields the same optimization problem as the original with '
        'amplified regularization"',
    ),
    "sdtheory.theory.krr.KernelSelfDistillation.predict",
    paper=BORUP,
)
RATE = claim(
    "krr.convergence-rate",
    "The step-tau predictions converge to the limit geometrically: "
    "B^(tau) - B^(inf) = ((1-alpha) A)^(tau-1) (A - B^(inf)), so the error decays at rate "
    "rho = (1 - alpha) d_max / (d_max + lambda).",
    ("derived", "docs/theory/krr.md; proof sdtheory.symbolic.krr.prove_rate"),
    "sdtheory.theory.krr.KernelSelfDistillation.convergence_rate",
    paper=BORUP,
)
SPARSE0 = claim(
    "krr.sparsification-alpha0",
    "For alpha = 0 every consecutive shrinkage ratio b_k/b_{k+1} (eigenvalues descending) grows "
    "without bound with the step: (a_k/a_{k+1})^tau.",
    ("derived", f"docs/theory/krr.md; the notebook plots Rk_no_GT ({NB})"),
    "sdtheory.theory.krr.KernelSelfDistillation.shrinkage",
    paper=BORUP,
)
SPARSE_A = claim(
    "krr.sparsification-bounded",
    "For alpha > 0 the consecutive shrinkage ratios converge to the finite ratios of "
    "alpha d/(alpha d + lambda) (sparsification is bounded; not necessarily monotone).",
    ("derived", f"docs/theory/krr.md; the notebook plots the ratios for alpha > 0 ({NB})"),
    "sdtheory.theory.krr.KernelSelfDistillation.shrinkage",
    paper=BORUP,
)
DAMPEN = claim(
    "krr.ground-truth-dampens",
    "On the toy, the closed form predicts the range of alpha over which ground truth dampens "
    "self-distillation's over-regularisation: for alpha above alpha_lo (the root of "
    "MSE_inf(alpha) = MSE_1, found on the closed-form limit ridge(lambda/alpha)) every later step "
    "and the limit have a test loss below the first fit's, and for alpha below alpha_lo the limit "
    "is worse than the first fit (alpha = 0: the zero function). Checked on a grid of alpha in "
    "[0, 1] with brute-force refits.",
    (
        "derived",
        "docs/theory/krr.md §1 (limit = ridge(lambda/alpha)); the thesis is the paper's title: "
        '"Ground-Truth Targets Dampen Regularization Imposed by Self-Distillation" '
        "(arXiv:2102.13088); the alpha range on the toy is ours",
    ),
    "sdtheory.theory.krr.KernelSelfDistillation.predict",
    paper=BORUP,
)
OPT = claim(
    "krr.optimal-alpha-derived",
    "Step-tau predictions are affine in alpha_tau, so the alpha minimising squared error to a "
    "target is <r, t - p>/||r||^2 (greedy per step); it equals the grid-search minimiser. "
    "Not the paper's own criterion, which we have not read.",
    (
        "derived",
        f"docs/theory/krr.md (optimal alpha), proof sdtheory.symbolic.krr.prove_optimal_alpha; "
        f'{ABSTRACT} (v2) states that a criterion exists: "we provide a closed form solution for '
        'the optimal choice of weighting parameter at each step"',
    ),
    "sdtheory.theory.krr.KernelSelfDistillation.optimal_alpha",
    paper=BORUP,
)
HEAT = claim(
    "krr.heatmap-limit",
    "Along every alpha > 0 column of the heatmap the loss approaches the loss of ridge with "
    "lambda/alpha, within the bound implied by the rate rho.",
    ("derived", "docs/theory/krr.md (limit and rate)"),
    "sdtheory.theory.krr.KernelSelfDistillation.predict",
    paper=BORUP,
)
NETWORK = claim(
    "krr.network-deviation-shrinks",
    "Self-distilling a two-layer network by gradient descent (one fresh fit per step) follows the "
    "kernel closed form with its empirical NTK, with a deviation that shrinks as the width grows: "
    "the log-log slope of the deviation against the width, measured per initialisation, is "
    "negative (lazy training predicts order width^-1/2 or faster; the slope is reported).",
    (
        "derived",
        "sdtheory/nets/krr.py docstring and docs/theory/krr.md §4: linearisation around theta_0 "
        "gives kernel ridge with the empirical NTK",
    ),
    "sdtheory.nets.krr.distill_network",
    paper=BORUP,
)
RF = claim(
    "krr.random-features-exact",
    "With only the readout trained (random features), gradient descent to convergence reproduces "
    "the closed form with the random-features kernel at every step, at any width.",
    ("derived", "sdtheory/nets/krr.py docstring: the readout objective is exactly kernel ridge"),
    "sdtheory.nets.krr.distill_network",
    paper=BORUP,
)
JAXREF = claim(
    "krr.jax-refits",
    "Explicit refits by JAX linear solves equal the numpy eigenbasis closed form.",
    ("derived", "docs/theory/krr.md (closed sum)"),
    "sdtheory.nets.krr.iterative_refits",
    paper=BORUP,
)
