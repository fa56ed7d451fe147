r"""GRPO: group-relative advantages over the $k$ samples of each problem and the per-token
surrogate $-A_i\,\pi_\theta(y_t)/\mathrm{sg}(\pi_\theta(y_t))$ (`shared.grpo_loss`).

$A_i=(r_i-\bar r_g)/(s_g+10^{-4})$ with $s_g$ the sample std of the group (`--scale-rewards
false` drops it). Log-probabilities are taken at the sampling temperature, as TRL does. One
gradient step per generation batch, so the PPO ratio is 1 and clipping never binds (it is not
implemented). `--distill-weight w` adds w times OPSD's distillation loss with the
privileged-context self-teacher.
"""

from __future__ import annotations

from .distill import OPSD

__all__ = ["GRPO"]


class GRPO(OPSD):
    """GRPO, optionally mixed with OPSD's distillation term (`--distill-weight`)."""

    name = "grpo"
    default_weights = (0.0, 1.0)
