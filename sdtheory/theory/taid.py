r"""TAID: temporally adaptive interpolated distillation (numpy, float64).

Shing et al., *TAID: Temporally Adaptive Interpolated Distillation for Efficient Knowledge
Transfer in Language Models*, ICLR 2025, arXiv:2501.16937 (bib key `taid2025`); official code
`SakanaAI/TAID` at commit `a062892` (`src/distil_losses/taid.py`).

Three pieces live here:

1. **The interpolated target** [code]. With a detached copy $q'$ of the student,
   $$p_t = \mathrm{softmax}\big((1-t)\,z_{q'} + t\,z_p\big),$$
   interpolated in *logit* space; $t=0$ is the student itself, $t=1$ the teacher. The TAID
   objective is $\mathrm{KL}(p_t\,\|\,q_\theta)$ (`interpolated_kl`); because $p_t$ is detached
   its gradient in the student logits is $q_\theta - p_t$ (`interpolated_kl_gradient`), the
   gradient of the cross-entropy $-\sum_y p_t \log q_\theta$ that the official code minimises.
2. **The adaptive schedule** [code], `TAIDSchedule`, a plain-float port of the official
   `update_t`: relative loss change, momentum, $\Delta t = \alpha\,\sigma(m)\,(1-t)$, a floor at the
   linear schedule and a cap at $t_{\rm end}$.
3. **The regression proxy of the collapse theory** [secondary + derived]: Mobahi et al.'s
   constrained self-distillation in the eigenbasis of the kernel, and the TAID proxy that
   interpolates the label between the current student and the teacher signal. The theorem is
   a *secondary reconstruction* of the paper's Section 4; its floor inequality and the
   non-collapse condition $r_0(r_0-1)\ge T(1+\kappa)$ are our own re-derivations
   (`docs/theory/taid.md`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..core import kl, log_softmax
from ..core._checks import as_float_array, broadcast_pair, check_positive_int
from . import krr

__all__ = [
    "ProxyRounds",
    "TAIDSchedule",
    "interpolated_kl",
    "interpolated_kl_gradient",
    "interpolated_log_probs",
    "linear_t",
    "noncollapse_condition",
    "noncollapse_r0",
    "self_distillation_rounds",
    "taid_proxy_rounds",
]

_REL_EPS = 1e-15  # the official code's guard in the relative change (prev + 1e-15)


def _check_t(t, name: str = "t") -> float:
    v = float(t)
    if not (0.0 <= v <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got {t!r}")
    return v


def _logits(x, name: str) -> np.ndarray:
    arr = as_float_array(x, name)
    if np.isposinf(arr).any():
        raise ValueError(f"{name} contains +inf")
    return arr


# ----------------------------------------------------------------------------- interpolation


def interpolated_log_probs(student_logits, teacher_logits, t: float) -> np.ndarray:
    r"""Log-probabilities of the TAID target $p_t=\mathrm{softmax}((1-t)z_s + t z_p)$.

    The mix is in logit space (official `compute_loss`); the student side is a constant (the
    official code detaches it). At the ends the unused side is dropped, so `-inf` logits (masked
    vocabulary) are exact: $t=0$ returns `log_softmax(student_logits)` and $t=1$
    `log_softmax(teacher_logits)`.

    Args:
      student_logits: student logits $z_s$ (..., V); `-inf` allowed.
      teacher_logits: teacher logits $z_p$ (..., V), broadcastable against `student_logits`.
      t: interpolation weight in $[0, 1]$.

    Returns:
      $\log p_t$ with the broadcast shape.

    Example:
      >>> import numpy as np
      >>> s, p = np.array([2.0, 0.0, -1.0]), np.array([-1.0, 3.0, 0.5])
      >>> lp = interpolated_log_probs(s, p, 0.25)
      >>> bool(np.allclose(lp, log_softmax(0.75 * s + 0.25 * p)))
      True
    """
    tv = _check_t(t)
    zs, zp = broadcast_pair(
        _logits(student_logits, "student_logits"),
        _logits(teacher_logits, "teacher_logits"),
        "student_logits",
        "teacher_logits",
    )
    if tv == 0.0:
        return log_softmax(zs)
    if tv == 1.0:
        return log_softmax(zp)
    return log_softmax((1.0 - tv) * zs + tv * zp)


def interpolated_kl(student_logits, teacher_logits, t: float) -> np.ndarray:
    r"""The TAID objective per row, $\mathrm{KL}(p_t\,\|\,q)$ with $q=\mathrm{softmax}(z_s)$.

    It is 0 at $t=0$ and the forward KL $\mathrm{KL}(p\|q)$ at $t=1$.

    Example:
      >>> import numpy as np
      >>> s, p = np.array([2.0, 0.0, -1.0]), np.array([-1.0, 3.0, 0.5])
      >>> bool(np.isclose(interpolated_kl(s, p, 1.0), kl(log_softmax(p), log_softmax(s))))
      True
    """
    log_pt = interpolated_log_probs(student_logits, teacher_logits, t)
    return kl(log_pt, log_softmax(_logits(student_logits, "student_logits")))


def interpolated_kl_gradient(student_logits, teacher_logits, t: float) -> np.ndarray:
    r"""Gradient of $\mathrm{KL}(p_t\|q_\theta)$ in the student logits with $p_t$ held fixed.

    It equals $q - p_t$, the gradient of the cross-entropy $-\sum_y p_t\log q$: the entropy of
    the detached target does not depend on $\theta$ (`sdtheory.symbolic.taid` proves it).
    """
    log_q = log_softmax(_logits(student_logits, "student_logits"))
    log_pt = interpolated_log_probs(student_logits, teacher_logits, t)
    return np.exp(log_q) - np.exp(log_pt)


# ----------------------------------------------------------------------------- schedule


def linear_t(step: int, total_steps: int, t_start: float = 0.4, t_end: float = 1.0) -> float:
    r"""The linear schedule $t_{\rm start}+(t_{\rm end}-t_{\rm start})\,s/S$ at step $s$ of $S$.

    This is the floor of the adaptive schedule and the whole of the non-adaptive one. The
    arithmetic follows the official code term for term (`progress = step / total` first).
    """
    _check_step(step, total_steps)
    progress = step / total_steps
    return t_start + (t_end - t_start) * progress


def _check_step(step, total_steps) -> None:
    total_steps = check_positive_int(total_steps, "total_steps")
    if isinstance(step, bool) or int(step) != step or not (0 <= step <= total_steps):
        raise ValueError(f"step must be an integer in [0, total_steps={total_steps}], got {step!r}")


def _sigmoid(x: float) -> float:
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class TAIDSchedule:
    r"""The adaptive interpolation schedule of TAID, a port of the official `update_t`.

    State: $t$ (starts at `t_start`), the previous loss (none before the first call) and a
    momentum $m$ (starts at 0). Each call with the loss $J_n$ measured at the current $t_n$:

    $$\delta_n=\frac{J_{n-1}-J_n}{J_{n-1}+10^{-15}},\quad m_n=\beta m_{n-1}+(1-\beta)\delta_n,\quad
      \Delta t_n=\alpha\,\sigma(m_n)\,(1-t_n),$$
    $$t_{n+1}=\min\Big(t_{\rm end},\ \max\big(t_{\rm start}+(t_{\rm end}-t_{\rm start})
      \tfrac{\mathrm{step}}{\mathrm{total\_steps}},\ t_n+\Delta t_n\big)\Big).$$

    The first call only records the loss (t, momentum unchanged; `delta_t` stays `None`). With
    `adaptive=False` the new $t$ is the linear floor itself (the momentum is still tracked, as in
    the official code). $t$ never decreases while `step` does not decrease.

    Everything is a plain Python float, so the schedule is device-agnostic and its state is
    trivially saved (`state_dict`/`load_state_dict`). `loss` may be a float, a numpy scalar or a
    0-d tensor (converted with `float`).

    Deliberate departures from the official code (`docs/theory/taid.md`):

    * call `update` **once per optimizer step**, not once per micro-batch (the official update
      runs inside `forward`, so gradient accumulation advances the momentum several times per
      step while the floor only moves with `global_step`);
    * **never on evaluation batches** (the official `validation_step` goes through the same
      `forward` and updates $t$ on held-out losses).

    Note that the official code feeds the *cross-entropy* $-\sum p_t\log q_\theta$ (the value it
    minimises) to the schedule, not the KL; `sdtheory.lm.methods.taid.taid_loss(..., value=
    "cross_entropy")` returns that quantity when official trajectories are wanted.

    Args:
      t_start: initial $t$, in $[0, 1)$.
      t_end: final $t$ and the cap, in $(0, 1]$, at least `t_start`.
      alpha: the "t learning rate" $\alpha\in[0,1]$.
      beta: momentum coefficient $\beta\in[0,1]$.
      adaptive: `False` gives the linear schedule (official `disable_adaptive=True`).

    Example:
      >>> s = TAIDSchedule(t_start=0.4, t_end=1.0, alpha=1.0, beta=0.5)
      >>> s.update(2.0, step=0, total_steps=10)   # first call: records the loss only
      0.4
      >>> m = 0.5 * 0.5                             # relative change (2 - 1) / 2 = 0.5
      >>> t = s.update(1.0, step=1, total_steps=10)
      >>> bool(math.isclose(t, 0.4 + 1.0 * _sigmoid(m) * 0.6))  # above the floor 0.46
      True
    """

    def __init__(
        self,
        t_start: float = 0.4,
        t_end: float = 1.0,
        alpha: float = 5e-4,
        beta: float = 0.99,
        adaptive: bool = True,
    ):
        t_start, t_end, alpha, beta = float(t_start), float(t_end), float(alpha), float(beta)
        if not (0.0 <= t_start < 1.0):
            raise ValueError(f"t_start must lie in [0, 1), got {t_start!r}")
        if not (0.0 < t_end <= 1.0):
            raise ValueError(f"t_end must lie in (0, 1], got {t_end!r}")
        if t_end < t_start:
            raise ValueError(f"t_end must be >= t_start={t_start}, got {t_end!r}")
        if not (0.0 <= alpha <= 1.0):
            raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
        if not (0.0 <= beta <= 1.0):
            raise ValueError(f"beta must lie in [0, 1], got {beta!r}")
        self.t_start, self.t_end, self.alpha, self.beta = t_start, t_end, alpha, beta
        self.adaptive = bool(adaptive)
        self.t: float = t_start
        self.momentum: float = 0.0
        self.prev_loss: float | None = None
        self.delta_t: float | None = None

    def __repr__(self) -> str:
        return (
            f"TAIDSchedule(t_start={self.t_start}, t_end={self.t_end}, alpha={self.alpha}, "
            f"beta={self.beta}, adaptive={self.adaptive}; t={self.t:.6g}, m={self.momentum:.3g})"
        )

    def floor(self, step: int, total_steps: int) -> float:
        """The linear schedule at `step` of `total_steps`."""
        return linear_t(step, total_steps, self.t_start, self.t_end)

    def update(self, loss, step: int, total_steps: int) -> float:
        """Advance the schedule with the loss of optimizer step `step` and return the new $t$.

        Args:
          loss: the TAID loss of this step, measured at the current `t` (finite).
          step: optimizer steps completed before this one (Lightning's `global_step` during the
            step), in `[0, total_steps]`.
          total_steps: optimizer steps of the whole run (`estimated_stepping_batches`).

        Returns:
          The $t$ to use for the next step (also stored in `.t`).
        """
        j = float(loss)
        if not math.isfinite(j):
            raise ValueError(f"loss must be finite, got {loss!r}")
        _check_step(step, total_steps)
        if self.prev_loss is None:
            self.prev_loss = j
            return self.t
        relative_change = (self.prev_loss - j) / (self.prev_loss + _REL_EPS)
        self.momentum = self.beta * self.momentum + (1 - self.beta) * relative_change
        delta_t = self.alpha * _sigmoid(self.momentum) * (1 - self.t)
        t_target = self.floor(step, total_steps)
        self.t = min(self.t_end, max(t_target, self.t + delta_t)) if self.adaptive else t_target
        self.prev_loss = j
        self.delta_t = delta_t
        return self.t

    _CONFIG = ("t_start", "t_end", "alpha", "beta", "adaptive")
    _STATE = ("t", "momentum", "prev_loss", "delta_t")

    def state_dict(self) -> dict:
        """Configuration and state as a dict of plain Python values (JSON-serialisable)."""
        return {k: getattr(self, k) for k in self._CONFIG + self._STATE}

    def load_state_dict(self, state: dict) -> None:
        """Restore the state saved by `state_dict`; the configuration must match."""
        missing = [k for k in self._CONFIG + self._STATE if k not in state]
        if missing:
            raise ValueError(f"state is missing keys {missing}")
        for k in self._CONFIG:
            if state[k] != getattr(self, k):
                raise ValueError(
                    f"state[{k!r}] = {state[k]!r} does not match this schedule's "
                    f"{k} = {getattr(self, k)!r}"
                )
        t = _check_t(state["t"], "state['t']")
        self.t = t
        self.momentum = float(state["momentum"])
        self.prev_loss = None if state["prev_loss"] is None else float(state["prev_loss"])
        self.delta_t = None if state["delta_t"] is None else float(state["delta_t"])


# ----------------------------------------------------------------------------- regression proxy


@dataclasses.dataclass(frozen=True)
class ProxyRounds:
    """Rounds of the regression proxy.

    Attributes:
      norms: $\\|z_t\\|/\\sqrt{K\\epsilon}$ for $t=0..R$ (the ratio $r_t$).
      c: per-round regularisation $c_t$ for rounds $1..R$ (`inf` where the fit collapsed: the
        zero function; `sdtheory.theory.krr.mobahi_constant`).
      fitted: whether round $t=1..R$ fits a non-zero function.
    """

    norms: np.ndarray
    c: np.ndarray
    fitted: np.ndarray

    @property
    def collapse_round(self) -> int | None:
        """The first round whose fit is the zero function, or `None`."""
        bad = np.flatnonzero(~self.fitted)
        return int(bad[0]) + 1 if bad.size else None

    @property
    def fitted_rounds(self) -> int:
        """Rounds fitted before the first collapse."""
        cr = self.collapse_round
        return len(self.fitted) if cr is None else cr - 1


def _spectrum_args(d, z0, k_eps, rounds, name_rounds):
    d = np.asarray(d, dtype=np.float64)
    z0 = np.asarray(z0, dtype=np.float64)
    if d.ndim != 1 or d.shape != z0.shape:
        raise ValueError(f"d and z0 must be 1-d of the same length, got {d.shape} and {z0.shape}")
    if not (np.isfinite(d).all() and (d > 0).all()):
        raise ValueError(f"d must be finite and > 0, got min {d.min()!r}")
    if not (float(k_eps) > 0):
        raise ValueError(f"k_eps must be > 0, got {k_eps!r}")
    return d, z0, float(k_eps), check_positive_int(rounds, name_rounds)


def self_distillation_rounds(d, z0, k_eps: float, rounds: int) -> ProxyRounds:
    r"""Mobahi-style pure self-distillation $z_t = A_{t-1} z_{t-1}$, $A=D(cI+D)^{-1}$.

    Round $t$ fits the previous round's predictions under the constraint; once the target's
    norm drops to $\sqrt{K\epsilon}$ the fit is zero and stays zero. [recalled + derived]
    """
    d, z, k_eps, rounds = _spectrum_args(d, z0, k_eps, rounds, "rounds")
    norms, cs, fitted = [math.sqrt(z @ z / k_eps)], [], []
    for _ in range(rounds):
        c = krr.mobahi_constant(z, d, math.sqrt(k_eps))
        cs.append(c)
        fitted.append(math.isfinite(c))
        z = d / (c + d) * z  # c = inf on collapse: the zero function
        norms.append(math.sqrt(z @ z / k_eps))
    return ProxyRounds(np.array(norms), np.array(cs), np.array(fitted))


def taid_proxy_rounds(d, z0, k_eps: float, T: int) -> ProxyRounds:
    r"""The TAID proxy: $\tilde z_t=(1-\tfrac tT)A_{t-1}\tilde z_{t-1}+\tfrac tT z_0$, $t=1..T$.

    Round $t$ fits the interpolated label $\tilde z_{t-1}$ (Mobahi's constrained solve, zero
    when $\|\tilde z_{t-1}\|^2\le K\epsilon$), then mixes its predictions with the teacher
    signal at weight $t/T$. Since every $A$ is diagonal with entries in $[0,1)$, the accumulated
    map $\bar A_t$ has entries in $[t/T, 1]$: the floor $\|\tilde z_t\|\ge\tfrac tT\|z_0\|$.
    [secondary reconstruction of the paper's Section 4; floor re-derived]
    """
    d, z0, k_eps, T = _spectrum_args(d, z0, k_eps, T, "T")
    z = z0.copy()
    norms, cs, fitted = [math.sqrt(z @ z / k_eps)], [], []
    for t in range(1, T + 1):
        c = krr.mobahi_constant(z, d, math.sqrt(k_eps))
        cs.append(c)
        fitted.append(math.isfinite(c))
        pred = d / (c + d) * z  # c = inf on collapse: the zero function
        w = t / T
        z = (1.0 - w) * pred + w * z0
        norms.append(math.sqrt(z @ z / k_eps))
    return ProxyRounds(np.array(norms), np.array(cs), np.array(fitted))


def noncollapse_r0(kappa: float, T: int) -> float:
    r"""The smallest $r_0$ of the corollary: $\tfrac12\big(1+\sqrt{1+4T(1+\kappa)}\big)$.

    Example:
      >>> round(noncollapse_r0(4.0, 100), 2)   # T=100, kappa=4 (docs/theory/taid.md)
      22.87
    """
    return 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * T * (1.0 + kappa)))


def noncollapse_condition(r0: float, kappa: float, T: int) -> bool:
    r"""$r_0(r_0-1)\ge T(1+\kappa)$: the early and late windows overlap (derived)."""
    return r0 * (r0 - 1.0) >= T * (1.0 + kappa)
