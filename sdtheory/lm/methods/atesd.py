r"""ATESD: OPSD whose teacher sees a learned prefix of the worked solution.

[paper + third-party review; every hyper-parameter ours] The teacher's view is the first
$\lfloor\rho m\rfloor$ of the $m$ solution steps plus the final answer (`prefix_view`). The
reveal ratio $\rho\sim\mathrm{Beta}$ comes from a small learned controller, held for $H$ steps,
then updated by REINFORCE on the discounted learning progress of the hold
(`ExposureController`, `learning_progress`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..config import check_fields
from ..teachers import privileged_messages
from .distill import OPSD

__all__ = ["ATESD", "ATESDConfig", "ExposureController", "learning_progress", "prefix_view"]


def prefix_view(task, problem, rho: float) -> str:
    """ATESD teacher view [paper + third-party review]: the first $\\lfloor\\rho m\\rfloor$ of the
    $m$ solution steps plus the final answer, always kept. $\\rho=1$ is the full solution.

    Examples:
        >>> from sdtheory.lm.tasks import make_task, Problem
        >>> p = Problem("1+2+3", "6", steps=("1+2 = 3", "3+3 = 6"))
        >>> prefix_view(make_task("chain_sum"), p, 0.5)
        '1+2 = 3\\n...\\nThe final answer is 6.'
    """
    if not 0.0 <= float(rho) <= 1.0:
        raise ValueError(f"rho must lie in [0, 1], got {rho!r}")
    answer = f"The final answer is {problem.answer}."
    n = math.floor(float(rho) * len(problem.steps))
    if n == 0:
        return answer
    if n >= len(problem.steps):
        return "\n".join(problem.steps)
    return task.privileged_view(problem, "partial", rho) + "\n" + answer


def learning_progress(losses, gamma: float) -> float:
    r"""Discounted learning progress $\sum_{i\ge1}\gamma^{i-1}\max(0,\ell_{i-1}-\ell_i)$ over a
    loss sequence [third-party review of ATESD; the window is ours: the hold itself].

    Examples:
        >>> learning_progress([3.0, 2.0, 2.5, 1.5], gamma=0.5)
        1.25
    """
    x = [float(v) for v in losses]
    return float(sum(gamma**i * max(0.0, x[i] - x[i + 1]) for i in range(len(x) - 1)))


class ExposureController(torch.nn.Module):
    r"""ATESD's reveal-ratio policy: $(a,b)=1+\mathrm{softplus}(f_\phi(s))$, $\rho\sim
    \mathrm{Beta}(a,b)$ held for `hold` steps, then a REINFORCE step on the discounted learning
    progress of the hold [paper + third-party review; every hyper-parameter here is ours].

    State $s$: (fraction of training done, EMA of past $\rho$, EMA of the distillation loss, EMA
    of the rollout reward). $f_\phi$: Linear-tanh-Linear. Controller loss:
    $-(R-b)\log\pi_\phi(\rho|s)+c\,\max(0,H[\pi_\phi]-H_{\rm target})^2$, $b$ an EMA baseline of
    past rewards (0 before the first), Adam with learning rate `lr`.
    """

    _SCALARS = ("stats", "decisions", "rho", "raw", "state_vec", "losses", "baseline")

    def __init__(
        self,
        *,
        hold=4,
        gamma=0.9,
        lr=0.05,
        hidden=16,
        entropy_target=-1.0,
        entropy_coef=0.1,
        rho_min=0.0,
        rho_max=1.0,
        ema=0.9,
        seed=0,
    ):
        super().__init__()
        if hold < 1:
            raise ValueError(f"hold must be >= 1, got {hold!r}")
        if not 0.0 <= rho_min <= rho_max <= 1.0:
            raise ValueError(f"need 0 <= rho_min <= rho_max <= 1, got {rho_min!r}, {rho_max!r}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
        self.hold, self.gamma, self.ema = int(hold), float(gamma), float(ema)
        self.entropy_target, self.entropy_coef = float(entropy_target), float(entropy_coef)
        self.rho_min, self.rho_max, self.seed = float(rho_min), float(rho_max), int(seed)
        g = torch.Generator().manual_seed(seed)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 2)
        )
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.stats = [0.0, 0.5, 0.0, 0.0]  # progress, ema rho, ema loss, ema reward
        self.decisions, self.rho, self.raw, self.state_vec = 0, None, None, None
        self.losses: list[float] = []
        self.baseline: float | None = None

    def policy(self, state: torch.Tensor) -> torch.distributions.Beta:
        # the controller is tiny and samples Beta draws: fp32 even inside a bf16 autocast region
        with torch.autocast(state.device.type, enabled=False):
            ab = 1.0 + torch.nn.functional.softplus(self.net(state.float()))
        return torch.distributions.Beta(ab[..., 0], ab[..., 1])

    def current(self, progress: float) -> float:
        """$\\rho$ for this step: a fresh draw at the start of each hold, else the held one."""
        if self.rho is None:
            self.stats[0] = float(progress)
            self.state_vec = list(self.stats)
            with torch.no_grad():
                dist = self.policy(torch.tensor(self.state_vec))
                g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.decisions)
                u = torch._standard_gamma(dist.concentration1.expand(1), generator=g)
                v = torch._standard_gamma(dist.concentration0.expand(1), generator=g)
                raw = float((u / (u + v)).clamp(1e-6, 1 - 1e-6))
            self.raw = raw
            self.rho = min(self.rho_max, max(self.rho_min, raw))
            self.losses = []
        return self.rho

    def observe(self, loss: float, reward: float) -> dict:
        """Record one training step; at the end of a hold, update the policy. Returns metrics."""
        e = self.ema
        self.stats[1] = e * self.stats[1] + (1 - e) * float(self.rho)
        self.stats[2] = e * self.stats[2] + (1 - e) * float(loss)
        self.stats[3] = e * self.stats[3] + (1 - e) * float(reward)
        self.losses.append(float(loss))
        if len(self.losses) < self.hold:
            return {}
        r = learning_progress(self.losses, self.gamma)
        adv = 0.0 if self.baseline is None else r - self.baseline
        self.baseline = r if self.baseline is None else e * self.baseline + (1 - e) * r
        dist = self.policy(torch.tensor(self.state_vec))
        logp = dist.log_prob(torch.tensor(self.raw))
        ent = dist.entropy()
        loss_c = -adv * logp + self.entropy_coef * (ent - self.entropy_target).clamp(min=0) ** 2
        self.opt.zero_grad()
        loss_c.backward()
        self.opt.step()
        self.decisions += 1
        self.rho = None
        return {
            "atesd_reward": r,
            "atesd_advantage": adv,
            "atesd_alpha": float(dist.concentration1.detach()),
            "atesd_beta": float(dist.concentration0.detach()),
            "atesd_policy_entropy": float(ent.detach()),
        }

    def extra_state(self) -> dict:
        scalars = [getattr(self, k) for k in self._SCALARS]
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "scalars": scalars}

    def load_extra_state(self, s: dict) -> None:
        self.net.load_state_dict(s["net"])
        self.opt.load_state_dict(s["opt"])
        for k, v in zip(self._SCALARS, s["scalars"], strict=True):
            setattr(self, k, v)


def _h(text: str, default):
    return field(default=default, metadata={"help": "ATESD (ours): " + text})


@dataclass(frozen=True)
class ATESDConfig:
    _argument_group_name = "atesd (learned solution-prefix exposure)"

    atesd_hold: int = _h("steps each drawn rho is held (H)", 4)
    atesd_gamma: float = _h("discount of the learning-progress reward", 0.9)
    atesd_lr: float = _h("Adam learning rate of the exposure policy", 0.05)
    atesd_hidden: int = _h("hidden width of the policy MLP", 16)
    atesd_entropy_target: float = _h("policy entropy above this is penalised", -1.0)
    atesd_entropy_coef: float = _h("weight of the entropy penalty", 0.1)
    atesd_rho_min: float = _h("lower clip of the reveal ratio", 0.0)
    atesd_rho_max: float = _h("upper clip of the reveal ratio", 1.0)

    def __post_init__(self):
        check_fields(
            self,
            ints={"atesd_hold": 1, "atesd_hidden": 1},
            unit=("atesd_gamma", "atesd_rho_min", "atesd_rho_max"),
            nonneg=("atesd_entropy_coef",),
            positive=("atesd_lr",),
        )
        if self.atesd_rho_min > self.atesd_rho_max:
            raise ValueError(
                f"atesd_rho_min ({self.atesd_rho_min}) must be <= atesd_rho_max "
                f"({self.atesd_rho_max})"
            )


class ATESD(OPSD):
    """OPSD with the teacher's view a prefix of the solution chosen by `ExposureController`."""

    name = "atesd"
    Config = ATESDConfig
    default_beta = 0.5
    needs_distill = True  # the controller learns from the distillation loss

    def __init__(self, ctx):
        super().__init__(ctx)
        o = self.options
        self.ctrl = ExposureController(
            hold=o.atesd_hold,
            gamma=o.atesd_gamma,
            lr=o.atesd_lr,
            hidden=o.atesd_hidden,
            entropy_target=o.atesd_entropy_target,
            entropy_coef=o.atesd_entropy_coef,
            rho_min=o.atesd_rho_min,
            rho_max=o.atesd_rho_max,
            seed=self.cfg.run.seed,
        )

    def teacher_messages(self, batch):
        rho = self.ctrl.current(batch.step / self.cfg.run.steps)
        return [privileged_messages(p, prefix_view(self.ctx.task, p, rho)) for p in batch.rows]

    def loss(self, batch):
        loss, metrics = super().loss(batch)
        metrics["atesd_rho"] = self.ctrl.rho
        return loss, metrics

    def after_step(self, batch, metrics):
        return self.ctrl.observe(metrics["distill_loss"], metrics["reward"])

    def state_dict(self) -> dict:
        return {"controller": self.ctrl.extra_state()}

    def load_state_dict(self, state: dict) -> None:
        self.ctrl.load_extra_state(state["controller"])
