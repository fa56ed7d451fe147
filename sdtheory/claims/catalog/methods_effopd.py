"""EffOPD (`sdtheory.lm.methods.effopd`; paper page `papers/effopd2026/README.md`)."""

from __future__ import annotations

from .._registry import claim

_CODE = "caiyuchen-ustc/EffOPD@f972ad5:EffOPD/verl/verl/workers/fsdp_workers.py"
_MOD = "sdtheory.lm.methods.effopd"

CHECKPOINTS = claim(
    "methods.effopd-checkpoints",
    "The extrapolation search runs after the updates of steps 1, 2, 4, 8, ... (powers of two).",
    ("code", f"{_CODE} (update_actor: (global_step & (global_step - 1)) == 0)"),
    "sdtheory.lm.methods.effopd.is_checkpoint",
    paper="effopd2026",
)
ACCEPTANCE = claim(
    "methods.effopd-acceptance",
    "Candidates theta_t + j c Delta (the code's factors a_1 = c, a_(j+1) = a_j / (1 + a_j)) are "
    "scored in order; each strict improvement is accepted, the first non-improvement ends the "
    "search, and the best weights are left applied.",
    ("code", f"{_CODE} (_iterative_test_and_modify)"),
    "sdtheory.lm.methods.effopd.extrapolation_search",
    paper="effopd2026",
)
MODULES = claim(
    "methods.effopd-attn-mlp",
    "Only attention and MLP weights are extrapolated (embeddings, norms and the output layer are "
    "not), Delta is measured from the weights accepted at the previous checkpoint (the initial "
    "weights at first), and the optimiser state is left as it is.",
    ("code", f"{_CODE} (_should_modify_param, _update_base_params)"),
    _MOD,
    paper="effopd2026",
)
COMPUTE = claim(
    "methods.effopd-compute",
    "Every validation score costs n_val x eval_k rollouts; the run logs them and the total "
    "rollout compute (training + validation).",
    ("derived", "sdtheory/lm/methods/effopd.py, validation_cost docstring"),
    "sdtheory.lm.methods.effopd.validation_cost",
    paper="effopd2026",
)
VS_OPSD = claim(
    "methods.effopd-vs-opsd",
    "At equal rollout compute with the validation rollouts counted, OPSD with EffOPD's "
    "extrapolation reaches a higher held-out accuracy than OPSD alone (paired over seeds).",
    (
        "paper",
        'arXiv:2605.11739 abstract: "achieves an average training acceleration of '
        '3x while maintaining comparable final performance"; counting the validation cost is ours',
    ),
    "sdtheory.lm.methods",
    paper="effopd2026",
)
