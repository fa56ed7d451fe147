r"""PACED-OPSD: OPSD with each rollout weighted by its problem's pass rate.

Per-problem weight $w(\hat p)=\hat p^{a}(1-\hat p)^{b}$ from the student's own pass rates
$\hat p$, re-estimated every step from the step's $k$ rollouts [paper: PACED abstract;
`sdtheory.theory.paced`]; the memory of past estimates and the normalisation to batch mean 1 are
ours. The two-stage FKL $\to$ RKL schedule is `--kl-switch-step` (shared by every divergence
method). Default divergence: OPSD's (forward KL), so PACED vs OPSD isolates the weighting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...theory.paced import beta_kernel_weight, pass_rate
from ..config import check_fields
from .distill import OPSD

__all__ = ["PACED", "PACEDConfig", "PassRateTable", "paced_weights"]


def paced_weights(
    successes, trials, alpha: float = 1.0, beta: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    r"""Pass rates $\hat p=S/K$ and PACED weights $w=\hat p^{\alpha}(1-\hat p)^{\beta}$.

    [paper: PACED abstract; `sdtheory.theory.paced`]. Problems the student always or never solves
    get weight 0 (for $\alpha,\beta>0$).

    Examples:
        >>> p, w = paced_weights([0, 1, 2, 4], 4)
        >>> bool(np.allclose(w, [0.0, 0.25 * 0.75, 0.25, 0.0]))
        True
    """
    p = pass_rate(successes, trials)
    return p, beta_kernel_weight(p, alpha, beta)


class PassRateTable:
    r"""Per-problem pass-rate estimates, re-estimated as training goes.

    `update(ids, p_now)` sets $\hat p_i \leftarrow \lambda\,\hat p_i + (1-\lambda)\,p_i^{\rm now}$
    for problems seen before and $\hat p_i \leftarrow p_i^{\rm now}$ on first sight ($\lambda$ =
    `memory`; 0 = the current rollouts only). The memory is ours (PACED's re-estimation rule was
    not retrieved).

    Examples:
        >>> t = PassRateTable(memory=0.5)
        >>> t.update([3], [1.0]).tolist(), t.update([3], [0.0]).tolist()
        ([1.0], [0.5])
    """

    def __init__(self, memory: float = 0.0):
        if not 0.0 <= float(memory) < 1.0:
            raise ValueError(f"memory must lie in [0, 1), got {memory!r}")
        self.memory = float(memory)
        self.table: dict[int, float] = {}

    def update(self, ids, p_now) -> np.ndarray:
        out = []
        for i, p in zip(ids, np.asarray(p_now, dtype=float), strict=True):
            i = int(i)
            old = self.table.get(i)
            new = float(p) if old is None else self.memory * old + (1 - self.memory) * float(p)
            self.table[i] = new
            out.append(new)
        return np.array(out)

    def state_dict(self) -> dict:
        return {"memory": self.memory, "table": dict(self.table)}

    def load_state_dict(self, state: dict) -> None:
        self.memory = float(state["memory"])
        self.table = {int(k): float(v) for k, v in state["table"].items()}


def _h(text: str, default):
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class PACEDConfig:
    _argument_group_name = "paced (OPSD with pass-rate weights)"

    paced_alpha: float = _h("PACED: exponent a of the weight p^a (1-p)^b", 1.0)
    paced_beta: float = _h("PACED: exponent b of the weight p^a (1-p)^b", 1.0)
    paced_memory: float = _h(
        "PACED (ours): pass-rate estimate = memory * previous + (1 - memory) * this step's "
        "k rollouts (0 = current rollouts only)",
        0.0,
    )
    paced_normalize: bool = _h("PACED (ours): divide the rollout weights by their mean", True)

    def __post_init__(self):
        check_fields(self, nonneg=("paced_alpha", "paced_beta"))
        if not 0.0 <= self.paced_memory < 1.0:
            raise ValueError(f"paced_memory must lie in [0, 1), got {self.paced_memory!r}")


def weight_histogram(w, alpha: float, beta: float, bins: int = 10) -> list[int]:
    r"""Problems per weight bin: counts of $w / w^*$ in `bins` equal bins of $[0, 1]$, with
    $w^* = \max_p p^\alpha (1-p)^\beta$ (at $p = \alpha/(\alpha+\beta)$) the kernel's peak
    (logged as `paced_weight_hist`; `sdtheory plot` draws it as a heat map over steps)."""
    peak = float(
        beta_kernel_weight(alpha / (alpha + beta) if alpha + beta > 0 else 0.5, alpha, beta)
    )
    # w <= peak exactly; the clip only absorbs rounding at the peak
    rel = np.clip(np.asarray(w, dtype=float) / peak, 0.0, 1.0) if peak > 0 else np.zeros(len(w))
    return np.histogram(rel, bins=bins, range=(0.0, 1.0))[0].tolist()


class PACED(OPSD):
    """OPSD whose divergence is weighted per rollout by its problem's pass-rate weight."""

    name = "paced"
    Config = PACEDConfig
    min_k = 2

    def __init__(self, ctx):
        super().__init__(ctx)
        self.table = PassRateTable(self.options.paced_memory)

    def sequence_weights(self, batch):
        o, group = self.options, batch.groups
        succ = torch.zeros(len(batch.problem_ids), dtype=torch.float64)
        succ.index_add_(0, group, batch.rewards.double())
        p_now, _ = paced_weights(succ.numpy().round().astype(int), self.cfg.run.k)
        p_hat = self.table.update(batch.problem_ids, p_now)
        w_prob = beta_kernel_weight(p_hat, o.paced_alpha, o.paced_beta)
        w = torch.tensor(w_prob, dtype=torch.float32)[group]
        if o.paced_normalize and float(w.mean()) > 0:
            w = w / w.mean()
        metrics = dict(
            pass_rate_mean=float(np.mean(p_hat)),
            paced_weight_mean=float(np.mean(w_prob)),
            paced_zero_frac=float(np.mean(w_prob == 0)),
            paced_weight_hist=weight_histogram(w_prob, o.paced_alpha, o.paced_beta),
        )
        return w, metrics

    def state_dict(self) -> dict:
        return {"table": self.table.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.table.load_state_dict(state["table"])
