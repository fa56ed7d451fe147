"""PS-KD (`sdtheory.lm.methods.pskd`) and the soft-target cross-entropy it uses
(`sdtheory.lm.losses`); paper page `papers/pskd2021/README.md`."""

from __future__ import annotations

from .._registry import claim

CODE = "lgcnsai/PS-KD-Pytorch@9aa0828:main.py"

TARGETS = claim(
    "methods.pskd-targets",
    "The target of an example at epoch t is (1 - alpha_t) y + alpha_t p^(t-1) with alpha_t = "
    "alpha_T (t+1)/T; the stored prediction starts as the one-hot label and is replaced by the "
    "softmax of the forward pass that trains on the example.",
    ("code", f"{CODE} (train, alpha_t update, all_predictions)"),
    "sdtheory.lm.methods.pskd.PSKD",
    paper="pskd2021",
)
FUSED = claim(
    "methods.pskd-fused",
    "The fused (chunked) soft-target cross-entropy equals the plain one on logits: value and "
    "student gradients to 1e-10 in float64, and the one-hot target gives the NLL.",
    ("derived", "sdtheory.lm.losses._soft (module docstring: the closed-form logit gradient)"),
    "sdtheory.lm.losses.fused_linear_soft_target_cross_entropy",
    paper="pskd2021",
)
RESUME = claim(
    "methods.pskd-resume",
    "The stored predictions are restored exactly when a run resumes, so a resumed run equals "
    "an uninterrupted one bit for bit.",
    ("derived", "implementation property of sdtheory.lm.methods.pskd.TargetStore"),
    "sdtheory.lm.methods.pskd.TargetStore",
    paper="pskd2021",
)
PSKD_VS_SFT = claim(
    "methods.pskd-vs-sft",
    "At equal steps on the same worked solutions, PS-KD reaches a higher held-out accuracy than "
    "plain SFT (paired over seeds).",
    (
        "paper",
        'arXiv:2006.12000 abstract: "it is confirmed that PS-KD achieves not only better '
        'accuracy"; images, detection and translation there, the tiny-model setting is ours',
    ),
    "sdtheory.lm.methods.pskd.PSKD",
    paper="pskd2021",
)
