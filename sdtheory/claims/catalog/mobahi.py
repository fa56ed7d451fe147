"""Constrained pure self-distillation (Mobahi, Farajtabar & Bartlett 2020); sim `mobahi_rounds`.

We hold the paper's abstract only. The setting (an epsilon-constrained fit per round) is our
reading of it, consistent with the abstract; every property below is derived in
docs/theory/krr.md §3 and checked numerically.
"""

from __future__ import annotations

from .._registry import claim

MOBAHI = "mobahi2020"
DOC = "docs/theory/krr.md §3"

ACTIVE = claim(
    "mobahi.constraint-active",
    "Before collapse each round's c_t makes the constraint active: (1/n)||y_t - y_(t+1)||^2 = eps "
    "(unique root when ||y_t||^2 > n eps).",
    ("derived", f"{DOC} (root of phi(c) = sqrt(n eps))"),
    "sdtheory.theory.krr.mobahi_rounds",
    paper=MOBAHI,
)
C_INC = claim(
    "mobahi.c-increasing",
    "The regularisation c_t grows strictly from round to round and ||y_t|| shrinks "
    "(self-distillation amplifies regularisation).",
    (
        "derived",
        f"{DOC} (phi_(t+1)(c_t) < phi_t(c_t) and phi is increasing, so c_(t+1) > c_t; "
        'r_(t+1)^2 <= r_t^2 - 1); the title states the thesis: "Self-Distillation Amplifies '
        'Regularization in Hilbert Space" (arXiv:2002.05715)',
    ),
    "sdtheory.theory.krr.mobahi_rounds",
    paper=MOBAHI,
)
BOUNDS = claim(
    "mobahi.collapse-bounds",
    "The number of non-collapsed rounds t* satisfies r0 - 1 <= t* <= r0^2 with "
    "r0 = ||y||/sqrt(n eps). (The lower bound (r0 - 1)/kappa that a secondary source attributes "
    "to the paper follows for kappa >= 1 and is not checked separately.)",
    ("derived", f"{DOC} (collapse round); sdtheory.symbolic.krr.prove_mobahi_norm_drop"),
    "sdtheory.theory.krr.mobahi_rounds",
    paper=MOBAHI,
)
SPARSE = claim(
    "mobahi.sparsification",
    "Every ratio b_j/b_k (d_j > d_k) of the shrinkage product grows with the round, so "
    "small-eigenvalue directions are progressively suppressed (a 'nonlinear power iteration').",
    (
        "derived",
        f"{DOC} (each factor d_j (c + d_k) / (d_k (c + d_j)) exceeds 1); our form of the "
        "abstract's \"progressively limiting the number of basis functions that can be used to "
        'represent the solution" (arXiv:2002.05715); "nonlinear power iteration" is the '
        "sciencestack TL;DR's phrase",
    ),
    "sdtheory.theory.krr.mobahi_rounds",
    paper=MOBAHI,
)
