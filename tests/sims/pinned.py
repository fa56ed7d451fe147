"""The verdict of every claim of every sim at its fast defaults (pinned; seed-independent).

`tests/sims/test_sims_smoke.py` checks the map at the default seed and
`tests/sims/test_seed_stability_*.py` at seeds 1-4: a verdict that changes, either way, is noticed
and explained. Why the non-held ones are what they are:

- `methods.*` comparisons: one paired seed at the fast defaults, so no t band: not run at this
  scale (`needs-scale`, not counted); `--seeds 3 --steps 30` decides them.
- `paced.snr-collapse-unreachable`, `paced.default-kernel-efficiency`: failed, honestly. The
  toy student's forward-KL SNR is highest in the lowest pass-rate bin, and p(1-p) reaches about
  half of the optimal SNR (papers/paced2026/README.md).
- `paced.snr-collapse-mastered`: inconclusive; the top bin is about half the best interior bin
  and its bootstrap band straddles one half.
- `taid.capacity-gap`: inconclusive; TAID's advantage at the most complex teacher is not
  distinguishable from its advantage at the simplest over 5 teacher draws (no effect at this
  scale).
"""

VERDICTS: dict[str, dict[str, str]] = {
    "kl_estimators": {
        "core.k1-unbiased": "held",
        "core.k3-unbiased": "held",
        "core.k3-nonnegative": "held",
        "core.k3-lower-variance": "held",
        "core.k2-second-order": "held",
    },
    "krr_alpha_steps": {
        "krr.convergence-rate": "held",
        "krr.optimal-alpha-derived": "held",
        "krr.heatmap-limit": "held",
    },
    "krr_network": {
        "krr.network-deviation-shrinks": "held",
        "krr.random-features-exact": "held",
        "krr.jax-refits": "held",
    },
    "krr_toy": {
        "krr.closed-form-equals-refits": "held",
        "krr.limit-amplified-ridge": "held",
        "krr.sparsification-alpha0": "held",
        "krr.sparsification-bounded": "held",
        "krr.ground-truth-dampens": "held",
    },
    "lm_methods": {
        "methods.all-complete": "held",
        "methods.paced-vs-opsd": "needs-scale",
        "methods.srpo-vs-grpo": "needs-scale",
        "methods.atesd-vs-opsd": "needs-scale",
        "methods.avsd-vs-opsd": "needs-scale",
        "methods.opsd-vs-grpo": "needs-scale",
        "methods.sdzero-vs-grpo": "needs-scale",
        "methods.pidistill-vs-piopsd": "needs-scale",
        "methods.effopd-vs-opsd": "needs-scale",
        "methods.unisd-vs-opsd": "needs-scale",
        "methods.vpd-vs-grpo": "needs-scale",
        "methods.sod-vs-grpo": "needs-scale",
        "methods.skillsd-vs-grpo": "needs-scale",
        "methods.curiosft-vs-sft": "needs-scale",
        "methods.pskd-vs-sft": "needs-scale",
        "methods.curiosft-entropy": "needs-scale",
    },
    "meta_capacity": {
        "meta.capacity-arithmetic-fixed-point": "held",
        "meta.capacity-geometric-fixed-point": "held",
    },
    "meta_contraction": {
        "meta.abstract-contraction": "held",
        "meta.arithmetic-kl-contraction": "held",
        "meta.arithmetic-exact-iterate": "held",
        "meta.geometric-osc-contraction": "held",
        "meta.unique-fixed-point": "held",
        "meta.kl-asymptotic-rate": "held",
    },
    "meta_finite_sample": {
        "meta.finite-sample-collapse": "held",
        "meta.finite-sample-stationary": "held",
        "meta.geometric-no-support-recovery": "held",
    },
    "meta_multi_teacher": {
        "meta.multi-teacher-fixed-point": "held",
        "meta.geometric-temperature-coherence": "held",
        "meta.arithmetic-temperature-incoherence": "held",
        "meta.axioms-provided-operators": "held",
    },
    "mobahi_rounds": {
        "mobahi.constraint-active": "held",
        "mobahi.c-increasing": "held",
        "mobahi.collapse-bounds": "held",
        "mobahi.sparsification": "held",
    },
    "paced_finite_k": {
        "paced.finite-k-bias": "held",
        "paced.zero-weight-fraction": "held",
        "paced.finite-k-efficiency": "held",
    },
    "paced_robustness": {
        "paced.optimal-weights": "held",
        "paced.misspec-aggregate": "held",
        "paced.misspec-pointwise": "held",
        "paced.two-point-tight": "held",
        "paced.misspec-order": "held",
        "paced.beta-fit-recovers": "held",
        "paced.beta-fit-delta": "held",
    },
    "paced_snr": {
        "paced.snr-collapse-mastered": "inconclusive",
        "paced.snr-collapse-unreachable": "failed",
        "paced.snr-binned-estimator": "held",
        "paced.default-kernel-efficiency": "failed",
    },
    "paced_training": {
        "paced.weighted-progress": "held",
        "paced.weighted-forgetting": "held",
    },
    "paced_two_stage": {
        "paced.fkl-covers": "held",
        "paced.rkl-seeks": "held",
        "paced.two-stage-consolidates": "held",
    },
    "taid_proxy": {
        "taid.proxy-floor": "held",
        "taid.proxy-noncollapse": "held",
        "taid.sd-rounds-bounds": "held",
    },
    "taid_schedule": {
        "taid.schedule-parity": "held",
        "taid.loss-ends": "held",
        "taid.loss-gradient": "held",
        "taid.schedule-linear-regime": "held",
    },
    "taid_toys": {
        "taid.kl-directions": "held",
        "taid.no-mode-collapse": "held",
        "taid.endpoint-is-fkl": "held",
        "taid.schedule-in-training": "held",
        "taid.capacity-gap": "inconclusive",
    },
}
