"""Anchored recursive (meta-)distillation on the simplex (Flouro & Chadwick 2026, abstract only).

Sims `meta_contraction`, `meta_capacity`, `meta_finite_sample`, `meta_multi_teacher`; theory
`sdtheory.theory.meta`. Everything beyond the abstract is our formalisation (docs/theory/meta.md).
"""

from __future__ import annotations

from .._registry import claim

FLOURO = "flouro2026"
DOC = "docs/theory/meta.md"

ABSTRACT = claim(
    "meta.abstract-contraction",
    "Anchored recursive distillation contracts in KL, converges geometrically to the base "
    "teacher, and has a unique, globally attractive fixed point (checked in our formalisation: "
    "arithmetic and geometric anchoring, realizable students).",
    (
        "paper",
        'arXiv:2601.13100 abstract: "Under mild realizability and convexity assumptions, we show '
        "that anchored recursive distillation induces contraction in KL divergence, yielding "
        "geometric convergence to base teacher distributions and a unique, globally attractive "
        'fixed point"; the operators and constants are our formalisation (docs/theory/meta.md)',
    ),
    "sdtheory.theory.meta.AnchoredOperator",
    paper=FLOURO,
)
KL_BOUND = claim(
    "meta.arithmetic-kl-contraction",
    "Arithmetic anchoring: KL(p0||q_n) <= (1-lam)^n KL(p0||q0), one step at a time.",
    ("derived", f"{DOC} §2 (joint convexity of KL); sdtheory.symbolic.meta (two-point case)"),
    "sdtheory.theory.meta.kl_contraction_bound",
    paper=FLOURO,
)
EXACT = claim(
    "meta.arithmetic-exact-iterate",
    "Arithmetic anchoring: q_n - p0 = (1-lam)^n (q0 - p0) exactly, so TV contracts by (1-lam).",
    ("derived", f"{DOC} §2; sdtheory.symbolic.meta.derive_arithmetic_iterate"),
    "sdtheory.theory.meta.AnchoredOperator.closed_form",
    paper=FLOURO,
)
OSC = claim(
    "meta.geometric-osc-contraction",
    "Geometric anchoring: log(q_n/p0) = (1-lam)^n log(q0/p0) + c_n, so the oscillation seminorm "
    "of log(q/p0) contracts by exactly (1-lam) and KL(p0||q_n) <= (1-lam)^n osc_0.",
    ("derived", f"{DOC} §3; sdtheory.symbolic.meta.derive_geometric_log_ratio"),
    "sdtheory.theory.meta.oscillation",
    paper=FLOURO,
)
FIXED = claim(
    "meta.unique-fixed-point",
    "For lam > 0 the anchor p0 is the unique fixed point of q -> Phi_lam(p0, q) and attracts "
    "every start: TV(q_n, p0) <= (1-lam)^n (arithmetic), osc(q_n, p0) = (1-lam)^n osc_0 "
    "(geometric).",
    ("derived", f"{DOC} §2-3; sdtheory.symbolic.meta.derive_fixed_point"),
    "sdtheory.theory.meta.AnchoredOperator.fixed_point",
    paper=FLOURO,
)
RATE = claim(
    "meta.kl-asymptotic-rate",
    "The bound (1-lam)^n is loose asymptotically: KL(p0||q_n) ~ chi2/2 decays like (1-lam)^(2n) "
    "for both operators (slope of log KL per generation = 2 log(1-lam)).",
    ("derived", f"{DOC} §2-3 (second-order expansion of KL)"),
    "sdtheory.theory.meta.contraction_profile",
    paper=FLOURO,
)
CAP_ARITH = claim(
    "meta.capacity-arithmetic-fixed-point",
    "For a log-linear student family (rank-r softmax, exponential family) and arithmetic "
    "anchoring, the projected recursion's moments satisfy mu(q_n) - mu(p0) = (1-lam)^n "
    "(mu(q_0) - mu(p0)), so its fixed point is exactly the direct projection Pi_Q(p0).",
    ("derived", f"{DOC} §4 (the M-projection depends on m only through E_m[T], affine in m)"),
    "sdtheory.theory.meta.projected_fixed_point",
    paper=FLOURO,
)
CAP_GEO = claim(
    "meta.capacity-geometric-fixed-point",
    "Simulation only, no theorem: with geometric anchoring the projected recursion converges to "
    "a fixed point q* that differs from Pi_Q(p0); KL(p0||q*) >= KL(p0||Pi_Q(p0)), gap reported.",
    ("derived", f"{DOC} §4 (a hypothesis of our formalisation, checked by simulation)"),
    "sdtheory.theory.meta.projected_fixed_point",
    paper=FLOURO,
)
COLLAPSE = claim(
    "meta.finite-sample-collapse",
    "Without anchoring (lam = 0) an outcome whose count reaches 0 never returns: the support "
    "shrinks monotonically and E[1 - sum q_n^2] = H0 (1-1/N)^n (Wright-Fisher).",
    ("derived", f"{DOC} §5"),
    "sdtheory.theory.meta.finite_sample_heterozygosity",
    paper=FLOURO,
)
STATIONARY = claim(
    "meta.finite-sample-stationary",
    "With arithmetic anchoring lam > 0 the error is stationary at a level set by N: "
    "E||q_n - p0||^2 = H0 (1-a^n)/(N(1-a)) and E chi2(q_n, p0) = (k-1)(1-a^n)/(N(1-a)), "
    "a = (1-lam)^2 (1-1/N), tending to H0 or (k-1) over N lam(2-lam) + (1-lam)^2.",
    ("derived", f"{DOC} §5; sdtheory.symbolic.meta.derive_finite_sample_variance"),
    "sdtheory.theory.meta.finite_sample_sq_error",
    paper=FLOURO,
)
NO_RECOVERY = claim(
    "meta.geometric-no-support-recovery",
    "Geometric anchoring p0^lam q^(1-lam) keeps zeros of q at zero, so with finite samples it "
    "loses support like lam = 0, while arithmetic anchoring with the same lam keeps it.",
    ("derived", f"{DOC} §5 (axiom A2+)"),
    "sdtheory.theory.meta.geometric_anchor",
    paper=FLOURO,
)
MULTI = claim(
    "meta.multi-teacher-fixed-point",
    "With an aggregated anchor A(p_1..p_M; pi) the anchored recursion converges to A itself at "
    "the single-teacher rate: KL(A||q_n) <= (1-lam)^n KL(A||q_0) (arithmetic anchoring) or "
    "<= (1-lam)^n osc_0 (geometric); it does not converge to any single teacher.",
    ("derived", f"{DOC} §6"),
    "sdtheory.theory.meta.aggregate",
    paper=FLOURO,
)
COHERENT = claim(
    "meta.geometric-temperature-coherence",
    "Geometric aggregation and geometric anchoring commute with softening p -> p^(1/T)/Z: "
    "A(p_j^(1/T)) = A(p_j)^(1/T)/Z exactly (axiom A5).",
    ("derived", f"{DOC} §6"),
    "sdtheory.theory.meta.aggregate",
    paper=FLOURO,
)
INCOHERENT = claim(
    "meta.arithmetic-temperature-incoherence",
    "Arithmetic aggregation and anchoring do not commute with softening (A5 fails); the gap in "
    "log-probability is O(1) for T far from 1.",
    ("derived", f"{DOC} §6"),
    "sdtheory.theory.meta.aggregate",
    paper=FLOURO,
)
AXIOMS = claim(
    "meta.axioms-provided-operators",
    "Geometric anchoring/aggregation satisfy A1-A5; arithmetic anchoring/aggregation satisfy "
    "A1-A4 and A2+ (support recovery) and fail only A5; geometric fails A2+.",
    (
        "derived",
        f"{DOC} §1 (axioms reconstructed from the predecessor papers' abstracts, not quoted from "
        'arXiv:2601.13100, whose abstract says only: "We define structural axioms for valid '
        'meta-teacher construction")',
    ),
    "sdtheory.theory.meta.check_axioms",
    paper=FLOURO,
)
