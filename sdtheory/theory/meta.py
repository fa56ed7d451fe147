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
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from scipy import optimize

from ..core import kl, log_mix, log_softmax, total_variation
from ..core._checks import (
    NORMALISATION_ATOL,
    as_log_probs,
    broadcast_pair,
    check_positive,
    check_unit_interval,
)

Kind = Literal["arithmetic", "geometric"]
KINDS: tuple[str, ...] = ("arithmetic", "geometric")
AnchorFn = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def _check_steps(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {n!r}")
    return int(n)


def _lse(x, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """Log-sum-exp shifted by the max; a lean stand-in for scipy's (hot loops call it a lot)."""
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _log_probs(x, name: str) -> np.ndarray:
    """Log-probabilities on the last axis that must normalise (same contract as the core)."""
    arr = as_log_probs(x, name)
    total = _lse(arr, axis=-1)
    if not np.all(np.abs(total) <= NORMALISATION_ATOL):
        worst = float(np.max(np.abs(np.where(np.isfinite(total), total, np.inf))))
        raise ValueError(
            f"{name} does not normalise: |logsumexp| reaches {worst:.3g} "
            f"(tolerance {NORMALISATION_ATOL})"
        )
    return arr


def _normalised_pair(log_p, log_q):
    lp = _log_probs(log_p, "log_p")
    lq = _log_probs(log_q, "log_q")
    return broadcast_pair(lp, lq, "log_p", "log_q")


# ----------------------------------------------------------------------------- operators


def arithmetic_anchor(log_p, log_q, lam: float) -> np.ndarray:
    r"""Arithmetic (probability-space) anchoring: $\log(\lambda p + (1-\lambda) q)$.

    Args:
      log_p: log-probabilities of the anchor $p$ (..., k); must normalise.
      log_q: log-probabilities of the current student $q$ (..., k); must normalise.
      lam: anchoring weight $\lambda \in [0, 1]$ ($0$: no anchoring, $1$: reset to $p$).

    Returns:
      Log-probabilities of the meta-teacher, broadcast shape.

    Example:
      >>> import numpy as np
      >>> p, q = np.log([0.5, 0.5]), np.log([0.9, 0.1])
      >>> bool(np.allclose(np.exp(arithmetic_anchor(p, q, 0.25)), [0.8, 0.2]))
      True
    """
    lam = check_unit_interval(lam, "lam")
    lp, lq = _normalised_pair(log_p, log_q)
    return log_mix(lp, lq, lam)


def geometric_anchor(log_p, log_q, lam: float) -> np.ndarray:
    r"""Geometric (logit-space) anchoring: $\log \big(p^{\lambda} q^{1-\lambda} / Z\big)$.

    Equivalently $\log\mathrm{softmax}(\lambda \log p + (1-\lambda)\log q)$. Outcomes with
    $p_i = 0$ or $q_i = 0$ get probability 0 for $0 < \lambda < 1$ (the geometric mean keeps only
    the common support); $\lambda = 0$ returns $q$ and $\lambda = 1$ returns $p$ exactly.

    Args:
      log_p: log-probabilities of the anchor $p$ (..., k); must normalise.
      log_q: log-probabilities of the student $q$ (..., k); must normalise.
      lam: anchoring weight $\lambda \in [0, 1]$.

    Raises:
      ValueError: if $0 < \lambda < 1$ and $p$, $q$ have disjoint supports in some row.

    Example:
      >>> import numpy as np
      >>> p, q = np.log([0.8, 0.2]), np.log([0.2, 0.8])
      >>> bool(np.allclose(np.exp(geometric_anchor(p, q, 0.5)), [0.5, 0.5]))
      True
    """
    lam = check_unit_interval(lam, "lam")
    lp, lq = _normalised_pair(log_p, log_q)
    if lam == 0.0:
        return lq.copy()
    if lam == 1.0:
        return lp.copy()
    z = lam * lp + (1.0 - lam) * lq  # -inf wherever either is -inf; never NaN for 0<lam<1
    if np.isneginf(z).all(axis=-1).any():
        raise ValueError(
            "log_p and log_q have disjoint supports in some row: the geometric mean "
            f"p^lam q^(1-lam) vanishes everywhere (lam={lam})"
        )
    return z - _lse(z, axis=-1, keepdims=True)


ANCHORS: dict[str, AnchorFn] = {"arithmetic": arithmetic_anchor, "geometric": geometric_anchor}


def effective_weight(lam: float, n: int) -> float:
    r"""$1 - (1-\lambda)^n$: the single-step weight equivalent to $n$ anchored steps.

    Computed as `-expm1(n * log1p(-lam))`, accurate for tiny $\lambda$.
    """
    lam = check_unit_interval(lam, "lam")
    n = _check_steps(n)
    if n == 0:
        return 0.0
    if lam == 1.0:
        return 1.0
    return float(-np.expm1(n * np.log1p(-lam)))


class AnchoredOperator:
    r"""The anchored meta-teacher map $q \mapsto \Phi_\lambda(p_0, q)$ on log-probabilities.

    Our formalisation consistent with Flouro & Chadwick's abstract (arXiv:2601.13100); the
    exact operator of the paper is not known to us. `kind="arithmetic"` returns
    $\log(\lambda p_0 + (1-\lambda) q)$, `kind="geometric"` the log of the normalised
    $p_0^{\lambda} q^{1-\lambda}$.

    Under realizability (the student reproduces the meta-teacher exactly) the generations are
    $q_{n+1} = \Phi_\lambda(p_0, q_n)$, and (derived, `docs/theory/meta.md`):

    * arithmetic: $q_n - p_0 = (1-\lambda)^n (q_0 - p_0)$ and
      $\mathrm{KL}(p_0\|q_n) \le (1-\lambda)^n\,\mathrm{KL}(p_0\|q_0)$;
    * geometric: $\log(q_n/p_0) = (1-\lambda)^n \log(q_0/p_0) + c_n$, so the oscillation
      seminorm of $\log(q/p_0)$ contracts by exactly $1-\lambda$;
    * for $\lambda > 0$ the anchor is the unique fixed point, globally attractive.

    Args:
      anchor_log_probs: log-probabilities of $p_0$ (..., k); must normalise.
      lam: $\lambda \in [0, 1]$.
      kind: `"arithmetic"` or `"geometric"`.

    Example:
      >>> import numpy as np
      >>> from sdtheory.core import kl
      >>> p0, q0 = np.log([0.7, 0.2, 0.1]), np.log([0.1, 0.1, 0.8])
      >>> op = AnchoredOperator(p0, 0.3)
      >>> qs = op.iterate(q0, 5)
      >>> bool(np.all(kl(p0, qs[1:]) <= 0.7 ** np.arange(1, 6) * kl(p0, q0)))
      True
      >>> bool(np.allclose(qs[5], op.closed_form(q0, 5)))
      True
    """

    def __init__(self, anchor_log_probs, lam: float, kind: Kind = "arithmetic"):
        self.kind = _check_kind(kind)
        self.lam = check_unit_interval(lam, "lam")
        self.anchor = _log_probs(anchor_log_probs, "anchor_log_probs")
        self._phi = ANCHORS[self.kind]

    def __repr__(self) -> str:
        return f"AnchoredOperator(kind={self.kind!r}, lam={self.lam}, shape={self.anchor.shape})"

    @property
    def contraction_factor(self) -> float:
        r"""$1-\lambda$: the per-generation factor of the bounds above."""
        return 1.0 - self.lam

    @property
    def fixed_point(self) -> np.ndarray:
        r"""The anchor $p_0$: the unique fixed point for $\lambda > 0$ (derived).

        For $\lambda = 0$ every distribution is a fixed point; asking for "the" fixed point then
        raises `ValueError`.
        """
        if self.lam == 0.0:
            raise ValueError("lam must be > 0 for a unique fixed point; at lam=0 every q is fixed")
        return self.anchor.copy()

    def __call__(self, log_q) -> np.ndarray:
        """One generation: the meta-teacher's log-probabilities for student `log_q`."""
        return self._phi(self.anchor, log_q, self.lam)

    def iterate(self, log_q0, n: int) -> np.ndarray:
        r"""The realizable recursion $q_{k+1} = \Phi_\lambda(p_0, q_k)$, $k < n$.

        Returns:
          Array of shape `(n + 1,) + broadcast shape`: $q_0, \dots, q_n$ in log space.
        """
        n = _check_steps(n)
        q = np.broadcast_arrays(_log_probs(log_q0, "log_q0"), self.anchor)[0]
        out = [q.copy()]
        for _ in range(n):
            q = self(q)
            out.append(q)
        return np.stack(out)

    def closed_form(self, log_q0, n: int) -> np.ndarray:
        r"""$q_n$ directly: $\Phi_{w_n}(p_0, q_0)$ with $w_n = 1-(1-\lambda)^n$ (derived).

        For arithmetic anchoring this is $p_0 + (1-\lambda)^n (q_0 - p_0)$; for geometric
        anchoring $\mathrm{softmax}(w_n \log p_0 + (1-w_n)\log q_0)$.
        """
        return self._phi(self.anchor, log_q0, effective_weight(self.lam, n))


def soften(log_p, temperature: float) -> np.ndarray:
    r"""Temperature softening $p \mapsto p^{1/T} / Z$, i.e. $\log\mathrm{softmax}(\log p / T)$.

    $T > 1$ flattens, $T < 1$ sharpens; zeros stay zeros.

    Example:
      >>> import numpy as np
      >>> p = np.log([0.7, 0.2, 0.1])
      >>> bool(np.allclose(soften(soften(p, 2.0), 3.0), soften(p, 6.0)))
      True
    """
    t = check_positive(temperature, "temperature")
    lp = _log_probs(log_p, "log_p")
    return log_softmax(lp, temperature=t)


def _check_weights(weights, m: int) -> np.ndarray:
    if weights is None:
        return np.full(m, 1.0 / m)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (m,):
        raise ValueError(f"weights must have shape ({m},) (one per teacher), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"weights must be finite and >= 0, got {w.tolist()}")
    if not np.isclose(w.sum(), 1.0, rtol=0.0, atol=1e-9):
        raise ValueError(f"weights must sum to 1, got sum {w.sum()!r}")
    return w


def aggregate(
    teacher_log_probs, weights=None, kind: Kind = "arithmetic", temperature: float = 1.0
) -> np.ndarray:
    r"""Weighted aggregation of $M$ teachers into one anchor $\bar p_0$.

    * arithmetic: $\bar p_0 = \sum_j \pi_j p_j$ (log-sum-exp);
    * geometric: $\bar p_0 \propto \prod_j p_j^{\pi_j}$ (normalised weighted mean of log-probs);

    each teacher first softened to $p_j^{1/T}/Z_j$ when `temperature` $\ne 1$. Geometric
    aggregation is temperature-coherent: softening the teachers equals softening the aggregate.
    Arithmetic aggregation is not (derived; `sims/meta_multi_teacher.py` measures the gap).

    Args:
      teacher_log_probs: (M, ..., k) log-probabilities, teachers on the first axis.
      weights: $\pi$ of shape (M,), non-negative, summing to 1; uniform if None.
      kind: `"arithmetic"` or `"geometric"`.
      temperature: $T > 0$ applied to each teacher before aggregating.

    Example:
      >>> import numpy as np
      >>> ps = np.log([[0.8, 0.2], [0.2, 0.8]])
      >>> bool(np.allclose(np.exp(aggregate(ps, [0.5, 0.5])), [0.5, 0.5]))
      True
      >>> g = aggregate(ps, [0.75, 0.25], kind="geometric")
      >>> bool(np.isclose(g[0] - g[1], 0.75 * np.log(4) + 0.25 * np.log(0.25)))
      True
    """
    _check_kind(kind)
    lps = _log_probs(teacher_log_probs, "teacher_log_probs")
    if lps.ndim < 2:
        raise ValueError(
            f"teacher_log_probs must have shape (M, ..., k) with teachers first, got {lps.shape}"
        )
    w = _check_weights(weights, lps.shape[0])
    if temperature != 1.0:
        lps = soften(lps, temperature)
    keep = w > 0  # a teacher with weight 0 has no influence, even where its p_j = 0
    lps, w = lps[keep], w[keep]
    wb = w.reshape((-1,) + (1,) * (lps.ndim - 1))
    if kind == "arithmetic":
        return _lse(lps + np.log(wb), axis=0)
    z = np.sum(wb * lps, axis=0)
    if np.isneginf(z).all(axis=-1).any():
        raise ValueError("the teachers with positive weight have no common support in some row")
    return z - _lse(z, axis=-1, keepdims=True)


# ----------------------------------------------------------------------------- contraction


def kl_contraction_bound(kl0, lam: float, n) -> np.ndarray:
    r"""$(1-\lambda)^n\,\mathrm{KL}(p_0\|q_0)$: the arithmetic bound on $\mathrm{KL}(p_0\|q_n)$.

    Derived from joint convexity of KL (`docs/theory/meta.md`, §2); also an upper bound on the
    oscillation of $\log(q_n/p_0)$ under geometric anchoring when `kl0` is replaced by the
    initial oscillation.

    Example:
      >>> bool(np.isclose(kl_contraction_bound(2.0, 0.5, 3), 0.25))
      True
    """
    lam = check_unit_interval(lam, "lam")
    n = np.asarray(n)
    if (n < 0).any():
        raise ValueError(f"n must be >= 0, got {n.tolist()}")
    return np.asarray(kl0, dtype=np.float64) * (1.0 - lam) ** n


def oscillation(log_q, log_p) -> np.ndarray:
    r"""Oscillation seminorm $\|\log(q/p)\|_{\mathrm{osc}} = \max_i r_i - \min_i r_i$.

    Here $r = \log q - \log p$.

    Taken over the common support; $+\infty$ if the supports differ. It ignores additive
    constants, so normalisation does not change it, and it bounds both KLs:
    $\mathrm{KL}(p\|q) \le \|\log(q/p)\|_{\mathrm{osc}}$ (derived).

    Example:
      >>> import numpy as np
      >>> bool(np.isclose(oscillation(np.log([0.5, 0.5]), np.log([0.8, 0.2])), np.log(4)))
      True
    """
    lq = as_log_probs(log_q, "log_q")
    lp = as_log_probs(log_p, "log_p")
    lq, lp = broadcast_pair(lq, lp, "log_q", "log_p")
    fq, fp = np.isfinite(lq), np.isfinite(lp)
    both = fq & fp
    with np.errstate(invalid="ignore"):
        r = np.where(both, lq - lp, np.nan)
    hi = np.nanmax(np.where(both, r, -np.inf), axis=-1)
    lo = np.nanmin(np.where(both, r, np.inf), axis=-1)
    osc = np.where(both.any(axis=-1), hi - lo, np.inf)
    return np.where((fq != fp).any(axis=-1), np.inf, osc)


def contraction_profile(op: AnchoredOperator, log_q0, n: int) -> dict[str, np.ndarray]:
    r"""Per-generation distances to the anchor and the derived bounds, for one start $q_0$.

    Returns columns (length $n+1$): `generation`, `kl` $=\mathrm{KL}(p_0\|q_n)$, `kl_bound`
    $=(1-\lambda)^n\mathrm{KL}(p_0\|q_0)$ (a theorem only for arithmetic anchoring), `tv`,
    `tv_exact` $=(1-\lambda)^n\mathrm{TV}(p_0, q_0)$ (exact for arithmetic), `osc`, `osc_exact`
    $=(1-\lambda)^n \|\log(q_0/p_0)\|_{\mathrm{osc}}$ (exact for geometric).
    """
    qs = op.iterate(log_q0, n)
    if qs.ndim != 2:
        raise ValueError(f"log_q0 and the anchor must be single distributions, got {qs.shape[1:]}")
    gens = np.arange(n + 1)
    f = (1.0 - op.lam) ** gens
    k = kl(op.anchor, qs)
    t = total_variation(op.anchor, qs)
    o = oscillation(qs, op.anchor)
    return {
        "generation": gens,
        "kl": k,
        "kl_bound": f * k[0],
        "tv": t,
        "tv_exact": f * t[0],
        "osc": o,
        "osc_exact": f * o[0],
    }


# ----------------------------------------------------------------------------- axioms


class AxiomViolation(ValueError):
    """Raised by `AxiomReport.raise_if_failed` when an operator breaks an axiom."""


@dataclasses.dataclass(frozen=True)
class AxiomResult:
    """Outcome of one axiom check: `holds`, a human-readable `message`, the worst deviation."""

    axiom: str
    holds: bool
    message: str
    worst: float = 0.0

    def __bool__(self) -> bool:
        return self.holds

    def __str__(self) -> str:
        return f"[{'holds' if self.holds else 'FAILS'}] {self.axiom}: {self.message}"


@dataclasses.dataclass(frozen=True)
class AxiomReport:
    """All axiom results for one operator; truthy when every checked axiom holds."""

    results: tuple[AxiomResult, ...]

    @property
    def holds(self) -> bool:
        return all(r.holds for r in self.results)

    @property
    def failures(self) -> tuple[AxiomResult, ...]:
        return tuple(r for r in self.results if not r.holds)

    def __bool__(self) -> bool:
        return self.holds

    def __getitem__(self, axiom: str) -> AxiomResult:
        for r in self.results:
            if r.axiom == axiom:
                return r
        checked = [r.axiom for r in self.results]
        raise KeyError(f"axiom {axiom!r} was not checked; checked: {checked}")

    def __str__(self) -> str:
        return "\n".join(str(r) for r in self.results)

    def raise_if_failed(self) -> AxiomReport:
        """Raise `AxiomViolation` listing every failed axiom; return self otherwise."""
        if not self.holds:
            raise AxiomViolation("operator violates " + "; ".join(str(r) for r in self.failures))
        return self


class _OperatorError(Exception):
    pass


def _probe_pairs(trials: int, vocab: int, seed: int, full_support: bool = True):
    """Random (log p, log q) pairs: Dirichlet(1), Dirichlet(0.2) and sharp softmaxes."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(trials):
        if t % 3 == 0:
            z = rng.standard_normal((2, vocab))
        elif t % 3 == 1:
            z = np.log(rng.gamma(0.2, size=(2, vocab)) + 1e-300)
        else:
            z = 8.0 * rng.standard_normal((2, vocab))
        lp = log_softmax(z)
        if not full_support:
            lp[1, rng.choice(vocab, size=max(1, vocab // 3), replace=False)] = -np.inf
            lp[1] = lp[1] - _lse(lp[1])
        out.append((lp[0], lp[1]))
    return out


def _apply(phi, lp, lq, lam) -> np.ndarray:
    """Call a user operator and validate what it returns (shape, no NaN, no +inf)."""
    try:
        out = np.asarray(phi(lp.copy(), lq.copy(), float(lam)), dtype=np.float64)
    except Exception as e:  # the operator itself failed: report it, do not crash the check
        raise _OperatorError(f"operator raised {type(e).__name__}: {e} (lam={lam})") from e
    if out.shape != lp.shape:
        raise _OperatorError(f"operator returned shape {out.shape}, expected {lp.shape}")
    if np.isnan(out).any() or np.isposinf(out).any():
        raise _OperatorError(f"operator returned NaN or +inf at lam={lam:g}")
    total = float(_lse(out))
    if not abs(total) <= 1e-6:
        raise _OperatorError(
            f"operator output does not normalise at lam={lam:g}: its probabilities sum to "
            f"{math.exp(total):.12g}"
        )
    return out


def _guard(axiom: str, fn) -> AxiomResult:
    try:
        return fn()
    except _OperatorError as e:
        return AxiomResult(axiom, False, str(e), math.inf)


def _logdiff(a: np.ndarray, b: np.ndarray) -> float:
    """Max |a - b| over entries where both are finite; inf if the supports differ."""
    fa, fb = np.isfinite(a), np.isfinite(b)
    if (fa != fb).any():
        return math.inf
    return float(np.max(np.abs(a[fa] - b[fa]), initial=0.0))


def check_anchoring(
    phi: AnchorFn, *, trials: int = 12, vocab: int = 7, seed: int = 0, atol: float = 1e-9
) -> AxiomResult:
    r"""(A1) anchoring / identity: $\Phi_\lambda(p,p)=p$, $\Phi_0(p,q)=q$, $\Phi_1(p,q)=p$.

    Compared in log space (max absolute difference of log-probabilities) with tolerance `atol`.
    """

    def run():
        worst, where = 0.0, ""
        for lp, lq in _probe_pairs(trials, vocab, seed):
            cases = [
                (f"Phi_{lam:g}(p, p) = p", _apply(phi, lp, lp, lam), lp)
                for lam in (0.0, 0.3, 0.7, 1.0)
            ]
            cases += [
                ("Phi_0(p, q) = q", _apply(phi, lp, lq, 0.0), lq),
                ("Phi_1(p, q) = p", _apply(phi, lp, lq, 1.0), lp),
            ]
            for name, got, want in cases:
                d = _logdiff(got, want)
                if d > worst:
                    worst, where = d, name
        ok = worst <= atol
        msg = (
            f"identities hold to {worst:.2e} (tol {atol:g})"
            if ok
            else f"{where} is off by {worst:.3g} in log-probability (tol {atol:g})"
        )
        return AxiomResult("A1 anchoring", ok, msg, worst)

    return _guard("A1 anchoring", run)


def check_positivity(
    phi: AnchorFn, *, trials: int = 12, vocab: int = 7, seed: int = 1, atol: float = 1e-9
) -> AxiomResult:
    r"""(A2) probability preservation and positivity.

    For every $\lambda \in [0, 1]$ the output normalises ($|\log\sum_i m_i| \le$ `atol`), and it
    has full support whenever $p$ and $q$ do.
    """

    def run():
        worst = 0.0
        for lp, lq in _probe_pairs(trials, vocab, seed):
            for lam in np.linspace(0.0, 1.0, 6):
                out = _apply(phi, lp, lq, lam)
                if np.isneginf(out).any():
                    zeros = np.flatnonzero(np.isneginf(out)).tolist()
                    return AxiomResult(
                        "A2 positivity",
                        False,
                        f"output has zeros at outcomes {zeros} for lam={lam:g} although p and q "
                        "have full support",
                        math.inf,
                    )
                err = abs(float(_lse(out)))
                if err > worst:
                    worst = err
                if err > atol:
                    return AxiomResult(
                        "A2 positivity",
                        False,
                        f"output does not normalise at lam={lam:g}: sum of probabilities is "
                        f"{math.exp(float(_lse(out))):.12g}",
                        err,
                    )
        return AxiomResult(
            "A2 positivity",
            True,
            f"normalised to {worst:.2e}, full support on full-support inputs",
            worst,
        )

    return _guard("A2 positivity", run)


def check_support_recovery(
    phi: AnchorFn, *, trials: int = 12, vocab: int = 7, seed: int = 2
) -> AxiomResult:
    r"""(A2+, optional) strong positivity: $\Phi_\lambda(p, q)$ has full support for $\lambda > 0$
    whenever the anchor $p$ does, even if $q$ lost support.

    Arithmetic anchoring has it; geometric anchoring does not ($p^\lambda \cdot 0 = 0$), which is
    why geometric anchoring cannot undo support collapse under finite samples (derived).
    """

    def run():
        for lp, lq in _probe_pairs(trials, vocab, seed, full_support=False):
            for lam in (0.05, 0.5, 1.0):
                out = _apply(phi, lp, lq, lam)
                if np.isneginf(out).any():
                    zeros = np.flatnonzero(np.isneginf(out)).tolist()
                    return AxiomResult(
                        "A2+ support recovery",
                        False,
                        f"outcomes {zeros} stay at probability 0 for lam={lam:g} although the "
                        "anchor gives them positive mass",
                        math.inf,
                    )
        return AxiomResult(
            "A2+ support recovery", True, "full support whenever the anchor has it and lam > 0"
        )

    return _guard("A2+ support recovery", run)


def _largest_jump(f, t_grid: np.ndarray, steps: int = 36) -> tuple[float, float]:
    """Bisect towards the largest TV jump of the path t -> f(t); return (jump, t)."""
    vals = [f(t) for t in t_grid]
    tv = np.array([float(total_variation(vals[i], vals[i + 1])) for i in range(len(vals) - 1)])
    best_jump, best_t = 0.0, float(t_grid[0])
    for i in np.argsort(-tv)[:2]:
        a, b, fa, fb = float(t_grid[i]), float(t_grid[i + 1]), vals[i], vals[i + 1]
        for _ in range(steps):
            mid = 0.5 * (a + b)
            fm = f(mid)
            if total_variation(fa, fm) >= total_variation(fm, fb):
                b, fb = mid, fm
            else:
                a, fa = mid, fm
        jump = float(total_variation(fa, fb))
        if jump > best_jump:
            best_jump, best_t = jump, 0.5 * (a + b)
    return best_jump, best_t


def check_continuity(
    phi: AnchorFn, *, trials: int = 3, vocab: int = 7, seed: int = 3, jump_tol: float = 1e-6
) -> AxiomResult:
    r"""(A3) continuity in $(p, q, \lambda)$, probed along paths.

    Along a path in $\lambda$ (with $p$, $q$ fixed) and along logit-space paths from one $q$ to
    another and from one $p$ to another, the largest total-variation change between neighbouring
    grid points (the two largest) is bisected 36 times. A continuous operator's change vanishes;
    a jump of more than `jump_tol` surviving bisection (width about $5\cdot 10^{-13}$) is reported.
    This is a probe, not a proof: a discontinuity off the probed paths goes unseen.
    """

    def run():
        rng = np.random.default_rng(seed)
        grid = np.linspace(0.0, 1.0, 33)
        worst, where = 0.0, ""
        for lp, lq in _probe_pairs(trials, vocab, seed):
            za, zb = rng.standard_normal((2, vocab)) * 3.0
            paths = {
                "lam": lambda t, lp=lp, lq=lq: _apply(phi, lp, lq, t),
                "q": lambda t, lp=lp, a=za, b=zb: _apply(
                    phi, lp, log_softmax((1 - t) * a + t * b), 0.5
                ),
                "p": lambda t, lq=lq, a=za, b=zb: _apply(
                    phi, log_softmax((1 - t) * a + t * b), lq, 0.5
                ),
            }
            for name, f in paths.items():
                jump, t = _largest_jump(f, grid)
                if jump > worst:
                    worst, where = jump, f"along the {name}-path near t={t:.6g}"
        ok = worst <= jump_tol
        msg = (
            f"no jump above {jump_tol:g} (largest residual {worst:.2e})"
            if ok
            else f"jump of {worst:.3g} in total variation {where} (tol {jump_tol:g})"
        )
        return AxiomResult("A3 continuity", ok, msg, worst)

    return _guard("A3 continuity", run)


def check_monotone_anchoring(
    phi: AnchorFn,
    *,
    trials: int = 12,
    vocab: int = 7,
    seed: int = 4,
    rtol: float = 1e-9,
    atol: float = 1e-12,
) -> AxiomResult:
    r"""(A4) monotone anchoring: $\mathrm{KL}(p\|\Phi_\lambda(p, q))$ decreases weakly in $\lambda$.

    Checked on a grid of 41 values of $\lambda$ (tolerance `rtol`·value + `atol`). Both provided
    operators satisfy it: the map is convex in $\lambda$ and vanishes at $\lambda = 1$ (derived).
    """

    def run():
        lams = np.linspace(0.0, 1.0, 41)
        worst, where = 0.0, ""
        for lp, lq in _probe_pairs(trials, vocab, seed):
            d = np.array([float(kl(lp, _apply(phi, lp, lq, lam))) for lam in lams])
            with np.errstate(invalid="ignore"):
                rise = d[1:] - d[:-1] - (rtol * np.abs(d[:-1]) + atol)
            rise = np.where(np.isnan(rise), 0.0, rise)  # inf -> inf is not an increase
            i = int(np.argmax(rise))
            if rise[i] > worst:
                worst = float(rise[i])
                where = (
                    f"KL(p||Phi_lam) rises from {d[i]:.6g} at lam={lams[i]:g} to "
                    f"{d[i + 1]:.6g} at lam={lams[i + 1]:g}"
                )
        ok = worst <= 0.0
        msg = "KL(p || Phi_lam(p, q)) is non-increasing in lam" if ok else where
        return AxiomResult("A4 monotone anchoring", ok, msg, worst)

    return _guard("A4 monotone anchoring", run)


def check_temperature_coherence(
    phi: AnchorFn, *, trials: int = 12, vocab: int = 7, seed: int = 5, atol: float = 1e-9
) -> AxiomResult:
    r"""(A5) temperature coherence: $\Phi_\lambda(p^{1/T}, q^{1/T})\propto\Phi_\lambda(p,q)^{1/T}$.

    Checked for $T \in \{0.5, 2, 5\}$ and $\lambda \in \{0.25, 0.5, 0.75\}$ in log space. Geometric
    anchoring satisfies it exactly; arithmetic anchoring does not (derived), so for an arithmetic
    operator this check is expected to fail and reports by how much.
    """

    def run():
        worst, where = 0.0, ""
        for lp, lq in _probe_pairs(trials, vocab, seed):
            for t in (0.5, 2.0, 5.0):
                sp, sq = soften(lp, t), soften(lq, t)
                for lam in (0.25, 0.5, 0.75):
                    a = _apply(phi, sp, sq, lam)
                    b = soften(_apply(phi, lp, lq, lam), t)
                    d = _logdiff(a, b)
                    if d > worst:
                        worst, where = d, f"T={t:g}, lam={lam:g}"
        ok = worst <= atol
        msg = (
            f"commutes with softening to {worst:.2e}"
            if ok
            else f"softening then anchoring differs from anchoring then softening by {worst:.3g} "
            f"in log-probability at {where} (tol {atol:g})"
        )
        return AxiomResult("A5 temperature coherence", ok, msg, worst)

    return _guard("A5 temperature coherence", run)


AXIOMS: dict[str, Callable[..., AxiomResult]] = {
    "A1": check_anchoring,
    "A2": check_positivity,
    "A3": check_continuity,
    "A4": check_monotone_anchoring,
    "A5": check_temperature_coherence,
    "A2+": check_support_recovery,
}


def check_axioms(
    phi: AnchorFn,
    axioms: Sequence[str] = ("A1", "A2", "A3", "A4", "A5"),
    *,
    raise_on_failure: bool = False,
    vocab: int = 7,
    seed: int = 0,
) -> AxiomReport:
    r"""Run the candidate meta-teacher axioms on an operator $\Phi(\log p, \log q, \lambda)$.

    The axioms are our reconstruction in the style of the authors' predecessor papers
    (arXiv:2601.03195, 2601.09165), not quoted from arXiv:2601.13100: (A1) anchoring/identity,
    (A2) positivity, (A3) continuity, (A4) monotone anchoring, (A5) temperature coherence, and
    the optional (A2+) support recovery. Each check runs on random probe distributions
    (deterministic given `seed`) and says which identity failed and by how much.

    Args:
      phi: callable `(log_p, log_q, lam) -> log_m` on 1-D log-probability arrays; `log_p` is
        the anchor. An operator that raises or returns NaN is reported as failing.
      axioms: which checks to run, keys of `AXIOMS`.
      raise_on_failure: raise `AxiomViolation` instead of returning a failing report.
      vocab: size of the probe distributions.
      seed: offsets the probe seeds.

    Example:
      >>> bool(check_axioms(geometric_anchor))
      True
      >>> rep = check_axioms(arithmetic_anchor)
      >>> [r.axiom for r in rep.failures]
      ['A5 temperature coherence']
    """
    unknown = [a for a in axioms if a not in AXIOMS]
    if unknown:
        raise ValueError(f"axioms must be keys of {list(AXIOMS)}, got {unknown}")
    default_seeds = {"A1": 0, "A2": 1, "A3": 3, "A4": 4, "A5": 5, "A2+": 2}
    report = AxiomReport(
        tuple(AXIOMS[a](phi, vocab=vocab, seed=seed + default_seeds[a]) for a in axioms)
    )
    if raise_on_failure:
        report.raise_if_failed()
    return report


def check_aggregation_axioms(
    agg: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    raise_on_failure: bool = False,
    seed: int = 0,
) -> AxiomReport:
    r"""Aggregation axioms for $\mathcal A(\{p_j\}, \pi)$, called as `agg(teacher_log_probs, w)`.

    Restricted to two teachers with weights $(\lambda, 1-\lambda)$, an aggregation operator is an
    anchoring operator, and the five aggregation axioms of the predecessor paper (preservation,
    positivity, continuity, weight monotonicity, temperature coherence; arXiv:2601.09165) become
    A1–A5 above. Added: preservation for three identical teachers. Our reconstruction, not the
    paper's wording.
    """

    def phi(lp, lq, lam):
        return agg(np.stack([lp, lq]), np.array([lam, 1.0 - lam]))

    report = check_axioms(phi, seed=seed)

    def three():
        worst = 0.0
        for lp, _ in _probe_pairs(6, 7, seed + 7):
            try:
                out = np.asarray(agg(np.stack([lp, lp, lp]), np.array([0.2, 0.3, 0.5])), float)
            except Exception as e:
                raise _OperatorError(f"operator raised {type(e).__name__}: {e}") from e
            worst = max(worst, _logdiff(out, lp))
        return AxiomResult(
            "preservation (3 teachers)", worst <= 1e-9, f"A(p, p, p) = p to {worst:.2e}", worst
        )

    report = AxiomReport(report.results + (_guard("preservation (3 teachers)", three),))
    if raise_on_failure:
        report.raise_if_failed()
    return report


# ----------------------------------------------------------------------------- capacity limits


class ExponentialFamily:
    r"""Log-linear student family $q_\theta \propto h\,e^{T\theta}$, fitted by moment matching.

    The M-projection $\arg\min_\theta \mathrm{KL}(m\|q_\theta)$ is the $\theta$ with
    $\mathbb E_{q_\theta}[T] = \mathbb E_m[T]$; `fit` solves these moment equations by damped
    Newton (Jacobian = covariance of $T$ under $q_\theta$).

    Args:
      statistics: (k, r) sufficient statistics $T$, one row per outcome.
      base_log_measure: (k,) $\log h$; zeros if None.

    Example:
      >>> fam = ExponentialFamily.discretized_gaussian(9)
      >>> lm = np.log(np.full(9, 1 / 9))
      >>> bool(np.allclose(fam.moments(fam.project(lm)), fam.moments(lm)))
      True
    """

    def __init__(self, statistics, base_log_measure=None):
        t = np.asarray(statistics, dtype=np.float64)
        if t.ndim != 2 or not np.isfinite(t).all():
            raise ValueError(f"statistics must be a finite (k, r) matrix, got shape {t.shape}")
        self.statistics = t
        k = t.shape[0]
        if base_log_measure is None:
            base_log_measure = np.zeros(k)
        h = np.asarray(base_log_measure, dtype=np.float64)
        if h.shape != (k,) or not np.isfinite(h).all():
            raise ValueError(f"base_log_measure must be finite with shape ({k},), got {h.shape}")
        self.base = h

    @classmethod
    def discretized_gaussian(cls, k: int) -> ExponentialFamily:
        """Unimodal family on ordered outcomes: statistics $(y, y^2)$, $y$ evenly in $[-1, 1]$."""
        if isinstance(k, bool) or int(k) != k or k < 3:
            raise ValueError(f"k must be an integer >= 3, got {k!r}")
        y = np.linspace(-1.0, 1.0, int(k))
        return cls(np.stack([y, y**2], axis=1))

    @property
    def dim(self) -> int:
        return self.statistics.shape[1]

    def log_probs(self, theta) -> np.ndarray:
        """$\\log q_\\theta$."""
        z = self.base + self.statistics @ np.asarray(theta, dtype=np.float64)
        return z - _lse(z)

    def moments(self, log_p) -> np.ndarray:
        r"""$\mathbb E_p[T]$."""
        lp = as_log_probs(log_p, "log_p")
        return np.exp(lp) @ self.statistics

    def _check_target(self, log_m) -> np.ndarray:
        lm = _log_probs(log_m, "log_m")
        if lm.shape != self.base.shape:
            raise ValueError(f"log_m must have shape {self.base.shape}, got {lm.shape}")
        return lm

    def fit(self, log_m, theta0=None, tol: float = 1e-11, max_iter: int = 200) -> np.ndarray:
        r"""Natural parameters of the M-projection of $m$, by moment matching.

        Damped Newton on the moment equations; stops when $\max|\mathbb E_q[T]-\mathbb E_m[T]|
        \le$ `tol`$\cdot(1+\max|\mathbb E_m[T]|)$, or at the rounding floor (no step reduces
        the residual any more while it is below $10^{-8}$ relative).
        """
        lm = self._check_target(log_m)
        mu = np.exp(lm) @ self.statistics
        th = np.zeros(self.dim) if theta0 is None else np.array(theta0, dtype=np.float64)
        scale = 1.0 + np.abs(mu).max()

        def residual(th):
            return np.exp(self.log_probs(th)) @ self.statistics - mu

        resid = residual(th)
        for _ in range(max_iter):
            err = np.abs(resid).max()
            if err <= tol * scale:
                return th
            q = np.exp(self.log_probs(th))
            tc = self.statistics - q @ self.statistics
            cov = (tc * q[:, None]).T @ tc
            step = np.linalg.lstsq(cov, -resid, rcond=None)[0]
            s = 1.0
            while s > 1e-10:  # backtrack until the moment residual shrinks
                new = residual(th + s * step)
                if np.abs(new).max() < err:
                    break
                s *= 0.5
            else:
                if err <= 1e-8 * scale:
                    return th  # rounding floor reached
                break
            th, resid = th + s * step, new
        raise RuntimeError(
            f"moment matching did not converge (residual {np.abs(resid).max():.2e}); the "
            "target's moments may lie on the boundary of the family's moment set"
        )

    def project(self, log_m, theta0=None) -> np.ndarray:
        r"""$\Pi_{\mathcal Q}(m) = \arg\min_{q \in \mathcal Q}\mathrm{KL}(m\|q)$ in log space."""
        return self.log_probs(self.fit(log_m, theta0))


class LowRankSoftmax(ExponentialFamily):
    r"""Softmax over a rank-$r$ logit subspace, $q_\theta = \mathrm{softmax}(b + U\theta)$.

    Fitted by KL minimisation.

    `fit` minimises $\mathrm{KL}(m\|q_\theta)$ over $\theta \in \mathbb R^r$ with scipy's
    `trust-exact` (exact gradient $U^\top(q_\theta - m)$ and Hessian), or by Newton steps on
    the KL from a warm start `theta0`. The family is log-linear,
    so the result must agree with moment matching (`ExponentialFamily.fit`); the tests check it.

    Args:
      basis: (k, r) matrix $U$ spanning the logit subspace.
      bias: (k,) base logits $b$; zeros if None.
    """

    @classmethod
    def random(cls, k: int, rank: int, rng: np.random.Generator) -> LowRankSoftmax:
        """A Gaussian basis $U \\in \\mathbb R^{k\\times r}$ (columns scaled by $1/\\sqrt r$)."""
        if not (1 <= rank < k):
            raise ValueError(f"rank must satisfy 1 <= rank < k={k}, got {rank!r}")
        return cls(rng.standard_normal((k, rank)) / np.sqrt(rank))

    def __init__(self, basis, bias=None):
        super().__init__(basis, bias)

    def fit(self, log_m, theta0=None, tol: float = 1e-12, max_iter: int = 500) -> np.ndarray:
        lm = self._check_target(log_m)
        m = np.exp(lm)
        u = self.statistics

        def f(th):  # KL(m || q_theta) up to the constant -H(m)
            z = self.base + u @ th
            return float(_lse(z) - m @ z)

        def grad(th):
            return u.T @ (np.exp(self.log_probs(th)) - m)

        def hess(th):
            q = np.exp(self.log_probs(th))
            uc = u - q @ u
            return (uc * q[:, None]).T @ uc

        scale = 1.0 + np.abs(m @ u).max()
        if theta0 is not None:
            # warm start (the recursion's previous fit): Newton steps on the KL, which converge
            # quadratically from nearby; fall back to the trust region if they do not
            th = np.asarray(theta0, dtype=np.float64).copy()
            for _ in range(8):
                g = grad(th)
                if np.abs(g).max() <= tol * scale:
                    return th
                th = th - np.linalg.lstsq(hess(th), g, rcond=None)[0]
            if np.abs(grad(th)).max() <= tol * scale:
                return th
        th0 = np.zeros(self.dim) if theta0 is None else np.asarray(theta0, dtype=np.float64)
        res = optimize.minimize(
            f,
            th0,
            jac=grad,
            hess=hess,
            method="trust-exact",
            options={"gtol": tol, "maxiter": max_iter},
        )
        # The objective's rounding floor (eps * KL) stops the trust region once the gradient is
        # ~1e-8; finish with plain Newton steps on the stationarity condition, which do not need
        # the objective to resolve changes below eps.
        th = res.x
        for _ in range(5):
            g = grad(th)
            if np.abs(g).max() <= tol * scale:
                break
            th = th - np.linalg.lstsq(hess(th), g, rcond=None)[0]
        if np.abs(grad(th)).max() > 1e-9 * scale:
            raise RuntimeError(f"KL minimisation did not converge: {res.message}")
        return th


def projected_iterates(
    op: AnchoredOperator, family: ExponentialFamily, log_q0, n: int
) -> np.ndarray:
    r"""Capacity-limited recursion $q_{k+1} = \Pi_{\mathcal Q}(\Phi_\lambda(p_0, q_k))$.

    The start is projected too: $q_0 = \Pi_{\mathcal Q}(q_0)$. Returns $(n+1, k)$ log-probs.
    Simulation only: no theorem is claimed for this recursion (`docs/theory/meta.md`, §4).
    """
    n = _check_steps(n)
    th = family.fit(log_q0)
    out = [family.log_probs(th)]
    for _ in range(n):
        th = family.fit(op(out[-1]), theta0=th)
        out.append(family.log_probs(th))
    return np.stack(out)


def projected_fixed_point(
    op: AnchoredOperator,
    family: ExponentialFamily,
    log_q0=None,
    tol: float = 1e-11,
    max_iter: int = 20000,
) -> tuple[np.ndarray, int]:
    r"""Iterate `projected_iterates` until $\mathrm{TV}(q_{k+1}, q_k) \le$ `tol`.

    Returns:
      `(log_q_star, iterations)`.

    Raises:
      RuntimeError: if `max_iter` iterations do not reach `tol`.
    """
    if op.lam == 0.0:
        raise ValueError("lam must be > 0: at lam=0 every member of the family is a fixed point")
    lq = family.log_probs(np.zeros(family.dim)) if log_q0 is None else log_q0
    th = family.fit(lq)
    q = family.log_probs(th)
    for it in range(1, max_iter + 1):
        th = family.fit(op(q), theta0=th)
        q_new = family.log_probs(th)
        if float(total_variation(q, q_new)) <= tol:
            return q_new, it
        q = q_new
    raise RuntimeError(f"no fixed point within tol={tol} after max_iter={max_iter} iterations")


# ----------------------------------------------------------------------------- finite samples


def finite_sample_generations(
    log_p0,
    lam: float,
    n_samples: int,
    generations: int,
    rng: np.random.Generator,
    kind: Kind = "arithmetic",
    replicates: int = 1,
) -> np.ndarray:
    r"""Generations of categorical students fitted by maximum likelihood to $N$ samples.

    $q_0 = p_0$; for $n \ge 0$, draw $N$ samples from the meta-teacher
    $m_n = \Phi_\lambda(p_0, q_n)$ and set $q_{n+1}$ to their empirical frequencies (the
    categorical MLE). At $\lambda = 0$ this is the Wright–Fisher chain: an outcome that reaches
    count 0 never returns (support collapse). Arithmetic anchoring with $\lambda>0$ puts mass
    $\ge \lambda p_0$ back on every outcome; geometric anchoring does not.

    Args:
      log_p0: anchor log-probabilities (k,).
      lam: $\lambda \in [0, 1]$.
      n_samples: $N \ge 1$ samples per generation.
      generations: number of refits $G \ge 0$.
      rng: numpy Generator.
      kind: `"arithmetic"` or `"geometric"`.
      replicates: independent chains run side by side.

    Returns:
      Integer counts, shape `(replicates, generations + 1, k)`; generation 0 holds
      $N p_0$ (real-valued, as the exact start), later rows are multinomial counts, so
      $q_n$ = `counts[:, n] / n_samples`.
    """
    lam = check_unit_interval(lam, "lam")
    _check_kind(kind)
    lp0 = _log_probs(log_p0, "log_p0")
    if lp0.ndim != 1:
        raise ValueError(f"log_p0 must be one distribution (k,), got shape {lp0.shape}")
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    generations = _check_steps(generations, "generations")
    if isinstance(replicates, bool) or int(replicates) != replicates or replicates < 1:
        raise ValueError(f"replicates must be an integer >= 1, got {replicates!r}")
    n_samples, replicates = int(n_samples), int(replicates)
    k = lp0.shape[0]
    p0 = np.exp(lp0)
    counts = np.zeros((replicates, generations + 1, k))
    counts[:, 0] = n_samples * p0
    q = np.broadcast_to(p0, (replicates, k)).copy()
    for g in range(1, generations + 1):
        if kind == "arithmetic":
            m = lam * p0 + (1.0 - lam) * q
        else:
            with np.errstate(divide="ignore"):
                m = np.exp(geometric_anchor(lp0, np.log(q), lam))
        m = m / m.sum(axis=-1, keepdims=True)
        c = rng.multinomial(n_samples, m)
        counts[:, g] = c
        q = c / n_samples
    return counts


def _check_count(v, name: str, minimum: int = 1) -> int:
    if isinstance(v, bool) or int(v) != v or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _decay(lam: float, n_samples: int) -> float:
    n_samples = _check_count(n_samples, "n_samples")
    return (1.0 - lam) ** 2 * (1.0 - 1.0 / n_samples)


def _generations(generations) -> np.ndarray:
    n = np.asarray(generations, dtype=np.float64)
    if (n < 0).any() or (n != np.round(n)).any():
        raise ValueError(f"generations must be integers >= 0, got {generations!r}")
    return n


def finite_sample_chi2(k: int, n_samples: int, lam: float, generations) -> np.ndarray:
    r"""Exact $\mathbb E\,\chi^2(q_n, p_0)$, $\chi^2=\sum_i (q_i-p_i)^2/p_i$, arithmetic anchoring.

    With $q_0 = p_0$ and $a = (1-\lambda)^2(1-1/N)$ (derived, `docs/theory/meta.md` §5):
    $$\mathbb E\,\chi^2(q_n, p_0) = \frac{(k-1)(1-a^n)}{N(1-a)}
      \xrightarrow{n\to\infty} \frac{k-1}{N\lambda(2-\lambda) + (1-\lambda)^2}\quad(\lambda>0),$$
    a stationary level of order $(k-1)/(2\lambda N)$; at $\lambda = 0$ it grows to $k-1$ (the
    value of a point mass drawn from $p_0$). Independent of $p_0$ beyond $k$.

    Example:
      >>> bool(np.isclose(finite_sample_chi2(10, 100, 0.0, 1), 9 / 100))
      True
    """
    lam = check_unit_interval(lam, "lam")
    k = _check_count(k, "k", 2)
    a = _decay(lam, n_samples)
    n = _generations(generations)
    return (k - 1) * (-np.expm1(n * np.log(a)) if a > 0 else (n > 0) * 1.0) / (n_samples * (1 - a))


def finite_sample_heterozygosity(log_p0, n_samples: int, lam: float, generations) -> np.ndarray:
    r"""Exact $\mathbb E[1 - \sum_i q_{n,i}^2]$ for arithmetic anchoring with $q_0 = p_0$ (derived).

    $$\mathbb E[1-\textstyle\sum_i q_{n,i}^2] = H_0 - H_0\,\frac{1-a^n}{N(1-a)},\qquad
      H_0 = 1 - \textstyle\sum_i p_{0,i}^2,$$
    which at $\lambda = 0$ is the Wright–Fisher law $H_0 (1-1/N)^n$.
    """
    lam = check_unit_interval(lam, "lam")
    lp0 = _log_probs(log_p0, "log_p0")
    h0 = 1.0 - float(np.sum(np.exp(2 * lp0)))
    a = _decay(lam, n_samples)
    n = _generations(generations)
    frac = (-np.expm1(n * np.log(a)) if a > 0 else (n > 0) * 1.0) / (n_samples * (1 - a))
    return h0 - h0 * frac


def finite_sample_sq_error(log_p0, n_samples: int, lam: float, generations) -> np.ndarray:
    r"""Exact $\mathbb E\,\|q_n - p_0\|_2^2$ for arithmetic anchoring with $q_0 = p_0$ (derived).

    $$\mathbb E\,\|q_n - p_0\|_2^2 = H_0\,\frac{1-a^n}{N(1-a)}
      \xrightarrow{n\to\infty} \frac{H_0}{N\lambda(2-\lambda)+(1-\lambda)^2},$$
    with $H_0 = 1-\sum_i p_{0,i}^2$ and $a = (1-\lambda)^2(1-1/N)$. Unlike $\chi^2$, whose
    weights $1/p_{0,i}$ give heavy tails when $p_0$ has rare outcomes, this error is bounded
    by 2, so Monte Carlo means of it have reliable standard errors.

    Example:
      >>> p0 = np.log([0.5, 0.5])
      >>> bool(np.isclose(finite_sample_sq_error(p0, 10, 0.0, 1), 0.5 / 10))
      True
    """
    lp0 = _log_probs(log_p0, "log_p0")
    h0 = 1.0 - float(np.sum(np.exp(2 * lp0)))
    return h0 - finite_sample_heterozygosity(lp0, n_samples, lam, generations)
