r"""Candidate meta-teacher axioms as predicates a user can run on an operator of their own.

Each check probes the operator on random distributions (deterministic given `seed`) and reports
the worst deviation it found and where; `check_axioms` runs several into an `AxiomReport`. The
axioms are our reconstruction (`docs/theory/meta.md` §1), not quoted from arXiv:2601.13100.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from scipy.special import logsumexp

from ...core import kl, log_softmax, total_variation
from ...core._checks import as_log_probs
from ._common import AnchorFn
from ._operators import soften


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
    """The operator under test raised or returned an invalid distribution."""


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
            lp[1] = log_softmax(lp[1])
        out.append((lp[0], lp[1]))
    return out


def _checked(call: Callable[[], np.ndarray], shape: tuple[int, ...], where: str) -> np.ndarray:
    """Call a user operator and validate what it returns (shape; the core's log-prob checks)."""
    try:
        out = np.asarray(call(), dtype=np.float64)
    except Exception as e:  # the operator itself failed: report it, do not crash the check
        raise _OperatorError(f"operator raised {type(e).__name__}: {e} ({where})") from e
    if out.shape != shape:
        raise _OperatorError(f"operator returned shape {out.shape}, expected {shape} ({where})")
    try:
        return as_log_probs(out, f"operator output ({where})", validate=True)
    except ValueError as e:  # NaN, +inf, or it does not normalise
        raise _OperatorError(str(e)) from None


def _apply(phi: AnchorFn, lp: np.ndarray, lq: np.ndarray, lam: float) -> np.ndarray:
    return _checked(lambda: phi(lp.copy(), lq.copy(), float(lam)), lp.shape, f"lam={lam:g}")


def _logdiff(a: np.ndarray, b: np.ndarray) -> float:
    """Max |a - b| over entries where both are finite; inf if the supports differ."""
    fa, fb = np.isfinite(a), np.isfinite(b)
    if (fa != fb).any():
        return math.inf
    return float(np.max(np.abs(a[fa] - b[fa]), initial=0.0))


def _decide(
    axiom: str, deviations: Iterable[tuple[float, str]], tol: float, holds: str
) -> AxiomResult:
    """The skeleton every check shares: the worst deviation over the probes decides.

    `deviations` yields `(deviation, what failed and by how much)` per probe, lazily; the axiom
    holds when the worst deviation is at most `tol`, and `holds` (a format string that may use
    `{worst}`) says so. An infinite deviation (support lost) ends the probing. An operator that
    raises or returns an invalid distribution fails the axiom with that reason.
    """
    worst, where = 0.0, ""
    try:
        for dev, what in deviations:
            if dev > worst:
                worst, where = dev, what
                if math.isinf(dev):
                    break
    except _OperatorError as e:
        return AxiomResult(axiom, False, str(e), math.inf)
    ok = worst <= tol
    return AxiomResult(axiom, ok, holds.format(worst=worst) if ok else where, worst)


def check_anchoring(
    phi: AnchorFn, *, trials: int = 12, vocab: int = 7, seed: int = 0, atol: float = 1e-9
) -> AxiomResult:
    r"""(A1) anchoring / identity: $\Phi_\lambda(p,p)=p$, $\Phi_0(p,q)=q$, $\Phi_1(p,q)=p$.

    Compared in log space (max absolute difference of log-probabilities) with tolerance `atol`.
    """

    def deviations():
        for lp, lq in _probe_pairs(trials, vocab, seed):
            cases = [(f"Phi_{lam:g}(p, p) = p", lp, lam, lp) for lam in (0.0, 0.3, 0.7, 1.0)]
            cases += [("Phi_0(p, q) = q", lq, 0.0, lq), ("Phi_1(p, q) = p", lq, 1.0, lp)]
            for name, q, lam, want in cases:
                d = _logdiff(_apply(phi, lp, q, lam), want)
                yield d, f"{name} is off by {d:.3g} in log-probability (tol {atol:g})"

    ok = f"identities hold to {{worst:.2e}} (tol {atol:g})"
    return _decide("A1 anchoring", deviations(), atol, ok)


def check_positivity(
    phi: AnchorFn, *, trials: int = 12, vocab: int = 7, seed: int = 1, atol: float = 1e-9
) -> AxiomResult:
    r"""(A2) probability preservation and positivity.

    For every $\lambda \in [0, 1]$ the output normalises ($|\log\sum_i m_i| \le$ `atol`), and it
    has full support whenever $p$ and $q$ do.
    """

    def deviations():
        for lp, lq in _probe_pairs(trials, vocab, seed):
            for lam in np.linspace(0.0, 1.0, 6):
                out = _apply(phi, lp, lq, lam)
                zeros = np.flatnonzero(np.isneginf(out)).tolist()
                if zeros:
                    yield (
                        math.inf,
                        f"output has zeros at outcomes {zeros} for lam={lam:g} although p and q "
                        "have full support",
                    )
                total = float(logsumexp(out))
                yield (
                    abs(total),
                    f"output does not normalise at lam={lam:g}: sum of probabilities is "
                    f"{math.exp(total):.12g}",
                )

    ok = "normalised to {worst:.2e}, full support on full-support inputs"
    return _decide("A2 positivity", deviations(), atol, ok)


def check_support_recovery(
    phi: AnchorFn, *, trials: int = 12, vocab: int = 7, seed: int = 2
) -> AxiomResult:
    r"""(A2+, optional) strong positivity: $\Phi_\lambda(p, q)$ has full support for $\lambda > 0$
    whenever the anchor $p$ does, even if $q$ lost support.

    Arithmetic anchoring has it; geometric anchoring does not ($p^\lambda \cdot 0 = 0$), which is
    why geometric anchoring cannot undo support collapse under finite samples (derived).
    """

    def deviations():
        for lp, lq in _probe_pairs(trials, vocab, seed, full_support=False):
            for lam in (0.05, 0.5, 1.0):
                zeros = np.flatnonzero(np.isneginf(_apply(phi, lp, lq, lam))).tolist()
                if zeros:
                    yield (
                        math.inf,
                        f"outcomes {zeros} stay at probability 0 for lam={lam:g} although the "
                        "anchor gives them positive mass",
                    )

    ok = "full support whenever the anchor has it and lam > 0"
    return _decide("A2+ support recovery", deviations(), 0.0, ok)


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

    def deviations():
        rng = np.random.default_rng(seed)
        grid = np.linspace(0.0, 1.0, 33)
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
                yield (
                    jump,
                    f"jump of {jump:.3g} in total variation along the {name}-path near "
                    f"t={t:.6g} (tol {jump_tol:g})",
                )

    ok = f"no jump above {jump_tol:g} (largest residual {{worst:.2e}})"
    return _decide("A3 continuity", deviations(), jump_tol, ok)


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

    def deviations():
        lams = np.linspace(0.0, 1.0, 41)
        for lp, lq in _probe_pairs(trials, vocab, seed):
            d = np.array([float(kl(lp, _apply(phi, lp, lq, lam))) for lam in lams])
            with np.errstate(invalid="ignore"):
                rise = d[1:] - d[:-1] - (rtol * np.abs(d[:-1]) + atol)
            rise = np.where(np.isnan(rise), 0.0, rise)  # inf -> inf is not an increase
            i = int(np.argmax(rise))
            yield (
                float(rise[i]),
                f"KL(p||Phi_lam) rises from {d[i]:.6g} at lam={lams[i]:g} to "
                f"{d[i + 1]:.6g} at lam={lams[i + 1]:g}",
            )

    ok = "KL(p || Phi_lam(p, q)) is non-increasing in lam"
    return _decide("A4 monotone anchoring", deviations(), 0.0, ok)


def check_temperature_coherence(
    phi: AnchorFn, *, trials: int = 12, vocab: int = 7, seed: int = 5, atol: float = 1e-9
) -> AxiomResult:
    r"""(A5) temperature coherence: $\Phi_\lambda(p^{1/T}, q^{1/T})\propto\Phi_\lambda(p,q)^{1/T}$.

    Checked for $T \in \{0.5, 2, 5\}$ and $\lambda \in \{0.25, 0.5, 0.75\}$ in log space. Geometric
    anchoring satisfies it exactly; arithmetic anchoring does not (derived), so for an arithmetic
    operator this check is expected to fail and reports by how much.
    """

    def deviations():
        for lp, lq in _probe_pairs(trials, vocab, seed):
            for t in (0.5, 2.0, 5.0):
                sp, sq = soften(lp, t), soften(lq, t)
                for lam in (0.25, 0.5, 0.75):
                    d = _logdiff(_apply(phi, sp, sq, lam), soften(_apply(phi, lp, lq, lam), t))
                    yield (
                        d,
                        "softening then anchoring differs from anchoring then softening by "
                        f"{d:.3g} in log-probability at T={t:g}, lam={lam:g} (tol {atol:g})",
                    )

    ok = "commutes with softening to {worst:.2e}"
    return _decide("A5 temperature coherence", deviations(), atol, ok)


AXIOMS: dict[str, Callable[..., AxiomResult]] = {
    "A1": check_anchoring,
    "A2": check_positivity,
    "A3": check_continuity,
    "A4": check_monotone_anchoring,
    "A5": check_temperature_coherence,
    "A2+": check_support_recovery,
}
_DEFAULT_SEEDS = {"A1": 0, "A2": 1, "A3": 3, "A4": 4, "A5": 5, "A2+": 2}


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
      >>> from sdtheory.theory.meta import arithmetic_anchor, geometric_anchor
      >>> bool(check_axioms(geometric_anchor))
      True
      >>> rep = check_axioms(arithmetic_anchor)
      >>> [r.axiom for r in rep.failures]
      ['A5 temperature coherence']
    """
    unknown = [a for a in axioms if a not in AXIOMS]
    if unknown:
        raise ValueError(f"axioms must be keys of {list(AXIOMS)}, got {unknown}")
    report = AxiomReport(
        tuple(AXIOMS[a](phi, vocab=vocab, seed=seed + _DEFAULT_SEEDS[a]) for a in axioms)
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

    def three_identical():
        w = np.array([0.2, 0.3, 0.5])
        for lp, _ in _probe_pairs(6, 7, seed + 7):
            out = _checked(lambda lp=lp: agg(np.stack([lp, lp, lp]), w), lp.shape, "A(p, p, p)")
            d = _logdiff(out, lp)
            yield d, f"A(p, p, p) = p is off by {d:.3g} in log-probability (tol 1e-09)"

    three = _decide(
        "preservation (3 teachers)", three_identical(), 1e-9, "A(p, p, p) = p to {worst:.2e}"
    )
    report = AxiomReport(check_axioms(phi, seed=seed).results + (three,))
    if raise_on_failure:
        report.raise_if_failed()
    return report
