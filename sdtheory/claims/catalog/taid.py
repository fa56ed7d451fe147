"""TAID: temporally adaptive interpolated distillation (Shing et al. 2025).

Sims `taid_schedule`, `taid_proxy`, `taid_toys`; theory `sdtheory.theory.taid`, loss
`sdtheory.lm.methods.taid`. The loss and schedule come from the official code; the collapse theorem of
the regression proxy from a secondary reconstruction ('TAID, distilled'), re-derived in
docs/theory/taid.md §4; we hold the abstract, not the paper's body.
"""

from __future__ import annotations

from .._registry import claim

TAID = "taid2025"
CODE = "SakanaAI/TAID@a062892:src/distil_losses/taid.py"
ABSTRACT = "arXiv:2501.16937 abstract"
_SEC = (
    "'TAID, distilled', a third-party reconstruction of the paper's regression-proxy analysis "
    "that matches the official code (the paper's own theorem text is not held)"
)

PARITY = claim(
    "taid.schedule-parity",
    "TAIDSchedule reproduces the official update_t: the t, momentum and delta_t trajectories "
    "agree to 1e-12 in float64 for any loss sequence, adaptive or not.",
    ("code", f"{CODE} (TAID.update_t)"),
    "sdtheory.theory.taid.TAIDSchedule",
    paper=TAID,
)
ENDS = claim(
    "taid.loss-ends",
    "The TAID loss KL(p_t || q) is 0 at t = 0 and the forward KL KL(p || q) at t = 1.",
    ("derived", "sdtheory.symbolic.taid.derive_endpoints; docs/theory/taid.md §2"),
    "sdtheory.lm.methods.taid.taid_loss",
    paper=TAID,
)
GRADIENT = claim(
    "taid.loss-gradient",
    "With p_t detached the TAID loss has the cross-entropy gradient (q - p_t) per position.",
    ("derived", "sdtheory.symbolic.taid.derive_gradient_gap; docs/theory/taid.md §2"),
    "sdtheory.lm.methods.taid.taid_loss",
    paper=TAID,
)
LINEAR_REGIME = claim(
    "taid.schedule-linear-regime",
    "If alpha * S <= (t_end - t_start) / (1 - t_start) (S = total optimizer steps), the adaptive "
    "schedule equals the linear one at every step; with the defaults that is S <= 2000.",
    ("derived", "docs/theory/taid.md §3"),
    "sdtheory.theory.taid.TAIDSchedule",
    paper=TAID,
)
FLOOR = claim(
    "taid.proxy-floor",
    "In the regression proxy the TAID label never shrinks below the injected teacher slice: "
    "||z~_t|| >= (t/T) ||z0|| for every round t (so no collapse once (t/T) r0 > 1).",
    ("secondary", _SEC + "; re-derived in docs/theory/taid.md §4"),
    "sdtheory.theory.taid.taid_proxy_rounds",
    paper=TAID,
)
NONCOLLAPSE = claim(
    "taid.proxy-noncollapse",
    "If r0 (r0 - 1) >= T (1 + kappa), i.e. ||y0|| >= (1 + sqrt(1 + 4T(1+kappa)))/2 sqrt(N eps), "
    "the TAID proxy fits a non-zero function in all T rounds.",
    (
        "secondary",
        _SEC + " (its corollary with gamma = 1); the r0(r0-1) form is derived, "
        "docs/theory/taid.md §4",
    ),
    "sdtheory.theory.taid.noncollapse_condition",
    paper=TAID,
)
SD_ROUNDS = claim(
    "taid.sd-rounds-bounds",
    "Pure self-distillation in the proxy fits t* non-zero rounds with r0 - 1 <= t* <= r0^2.",
    ("derived", "docs/theory/taid.md §4 and docs/theory/krr.md §3 (collapse round)"),
    "sdtheory.theory.taid.self_distillation_rounds",
    paper=TAID,
)
DIRECTIONS = claim(
    "taid.kl-directions",
    "With a student that cannot represent the teacher, reverse KL is mode-seeking (more mass on "
    "the teacher's modes, lower entropy, larger forward KL than forward KL's student) and forward "
    "KL mass-covering (higher entropy than the reverse-KL and TVD students).",
    ("derived", "classical property of the KL directions (Minka 2005); docs/theory/taid.md §5"),
    "sdtheory.lm.methods.taid.taid_loss",
    paper=TAID,
)
NO_COLLAPSE = claim(
    "taid.no-mode-collapse",
    "TAID stopped at an intermediate interpolation (t_end = 0.7, linear schedule from 0.4) does "
    "not mode-collapse: its student's forward KL to the teacher is below the reverse-KL "
    "student's at the same step budget (log ratio paired over teacher draws, both student "
    "families).",
    (
        "paper",
        f"{ABSTRACT}: \"We provide a theoretical analysis demonstrating TAID's ability to prevent "
        "mode collapse and empirically show its effectiveness in addressing the capacity gap "
        'while balancing mode averaging and mode collapse"; the toy and its metric are ours',
    ),
    "sdtheory.lm.methods.taid.taid_loss",
    paper=TAID,
)
ENDPOINT = claim(
    "taid.endpoint-is-fkl",
    "Trained until t is near 1, TAID ends at the forward-KL solution: for a student whose FKL "
    "problem has one solution (the unimodal student) its forward KL to the teacher equals the "
    "FKL-trained student's within 0.01 nats (paired over teacher draws). A student with several "
    "FKL stationary points (rank-2 logits) may end on another one: reported, not claimed.",
    (
        "derived",
        "the TAID objective at t = 1 is forward KL (sdtheory.symbolic.taid); "
        "docs/theory/taid.md §5",
    ),
    "sdtheory.lm.methods.taid.taid_loss",
    paper=TAID,
)
SCHEDULE = claim(
    "taid.schedule-in-training",
    "In training, the adaptive t never decreases and never falls below the linear schedule; "
    "after N steps both schedules end in [t_start + (t_end - t_start)(N-1)/N, t_end] (the last "
    "official update sees global_step = N-1, so the linear schedule never reaches t_end).",
    ("code", f"{CODE} (update_t)"),
    "sdtheory.theory.taid.TAIDSchedule",
    paper=TAID,
)
CAPACITY = claim(
    "taid.capacity-gap",
    "For a fixed student, TAID's advantage over forward KL at an equal step budget (excess "
    "forward KL over the student's best fit) is larger for the most complex teacher than for "
    "the simplest (paired over teacher draws).",
    (
        "secondary",
        "the capacity-gap experiment of arXiv:2501.16937 as described by " + _SEC + "; the "
        f'{ABSTRACT} says only "empirically show its effectiveness in addressing the capacity '
        'gap"; toy analogue, hypothesis',
    ),
    "sdtheory.lm.methods.taid.taid_loss",
    paper=TAID,
)
