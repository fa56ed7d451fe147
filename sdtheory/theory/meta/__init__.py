r"""Recursive meta-distillation: anchored operators on the simplex, contraction, and drift.

Our formalisation consistent with Flouro & Chadwick's abstract (arXiv:2601.13100, [flouro2026]).
The paper's body was not available; the abstract states that anchored recursive distillation,
"under mild realizability and convexity assumptions", contracts in KL towards the base teachers
with a unique, globally attractive fixed point. Every formula below is **our own derivation**
(`derived`), written down in `docs/theory/meta.md` and proved symbolically in
`sdtheory.symbolic.meta`; none of the axioms or constants is quoted from the paper.

Setting. $p_0$ is the anchor (a base teacher, or an aggregate of several), $q_n$ the student of
generation $n$ and $m_n = \Phi_\lambda(p_0, q_n)$ the meta-teacher that trains generation $n+1$:

* arithmetic anchoring $\Phi_\lambda(p, q) = \lambda p + (1-\lambda) q$;
* geometric anchoring $\Phi_\lambda(p, q) \propto p^{\lambda} q^{1-\lambda}$.

Both satisfy the semigroup identity $\Phi_\mu(p, \Phi_\lambda(p, q)) = \Phi_{1-(1-\lambda)(1-\mu)}
(p, q)$, so $n$ anchored generations equal one step with weight $1-(1-\lambda)^n$
(`AnchoredOperator.closed_form`). Everything works in log space, on the last axis.

Contents:

* operators: `arithmetic_anchor`, `geometric_anchor`, `AnchoredOperator`, `soften`,
  `aggregate`;
* axioms as predicates a user can run on an operator of their own: `check_axioms`,
  `check_aggregation_axioms` and the single checks `check_anchoring`, `check_positivity`,
  `check_continuity`, `check_monotone_anchoring`, `check_temperature_coherence`,
  `check_support_recovery`;
* contraction: `kl_contraction_bound`, `oscillation`, `contraction_profile`;
* capacity-limited students (simulation only): `LowRankSoftmax` (fit by KL minimisation),
  `ExponentialFamily` (fit by moment matching), `projected_iterates`, `projected_fixed_point`;
* finite-sample generations: `finite_sample_generations`, `finite_sample_chi2`,
  `finite_sample_heterozygosity`, `finite_sample_sq_error`.

One private module per item above (`_operators`, `_contraction`, `_axioms`, `_capacity`,
`_finite_sample`, with `_common` for the input checks they share); import from
`sdtheory.theory.meta`.
"""

from ._axioms import AXIOMS as AXIOMS
from ._axioms import AxiomReport as AxiomReport
from ._axioms import AxiomResult as AxiomResult
from ._axioms import AxiomViolation as AxiomViolation
from ._axioms import check_aggregation_axioms as check_aggregation_axioms
from ._axioms import check_anchoring as check_anchoring
from ._axioms import check_axioms as check_axioms
from ._axioms import check_continuity as check_continuity
from ._axioms import check_monotone_anchoring as check_monotone_anchoring
from ._axioms import check_positivity as check_positivity
from ._axioms import check_support_recovery as check_support_recovery
from ._axioms import check_temperature_coherence as check_temperature_coherence
from ._capacity import ExponentialFamily as ExponentialFamily
from ._capacity import LowRankSoftmax as LowRankSoftmax
from ._capacity import projected_fixed_point as projected_fixed_point
from ._capacity import projected_iterates as projected_iterates
from ._common import KINDS as KINDS
from ._common import AnchorFn as AnchorFn
from ._common import Kind as Kind
from ._contraction import contraction_profile as contraction_profile
from ._contraction import kl_contraction_bound as kl_contraction_bound
from ._contraction import oscillation as oscillation
from ._finite_sample import finite_sample_chi2 as finite_sample_chi2
from ._finite_sample import finite_sample_generations as finite_sample_generations
from ._finite_sample import finite_sample_heterozygosity as finite_sample_heterozygosity
from ._finite_sample import finite_sample_sq_error as finite_sample_sq_error
from ._operators import ANCHORS as ANCHORS
from ._operators import AnchoredOperator as AnchoredOperator
from ._operators import aggregate as aggregate
from ._operators import arithmetic_anchor as arithmetic_anchor
from ._operators import effective_weight as effective_weight
from ._operators import geometric_anchor as geometric_anchor
from ._operators import soften as soften

__all__ = [
    "ANCHORS",
    "AXIOMS",
    "KINDS",
    "AnchorFn",
    "AnchoredOperator",
    "AxiomReport",
    "AxiomResult",
    "AxiomViolation",
    "ExponentialFamily",
    "Kind",
    "LowRankSoftmax",
    "aggregate",
    "arithmetic_anchor",
    "check_aggregation_axioms",
    "check_anchoring",
    "check_axioms",
    "check_continuity",
    "check_monotone_anchoring",
    "check_positivity",
    "check_support_recovery",
    "check_temperature_coherence",
    "contraction_profile",
    "effective_weight",
    "finite_sample_chi2",
    "finite_sample_generations",
    "finite_sample_heterozygosity",
    "finite_sample_sq_error",
    "geometric_anchor",
    "kl_contraction_bound",
    "oscillation",
    "projected_fixed_point",
    "projected_iterates",
    "soften",
]
