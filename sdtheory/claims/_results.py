"""Check results and the deterministic checks (identities, exact bounds, conditions).

Deterministic checks compare a closed form with something that has no sampling noise (brute
force, an iterated recursion, a solver's output): `check_close`, `check_bound`, `check_true`.
Anything measured with noise — over seeds, rollouts, problems or bins — goes through the decision
rule in `sdtheory.claims._rule` instead. In both, a non-finite measurement is **failed**.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

from ._registry import Claim

Verdict = Literal["held", "failed", "inconclusive", "needs-scale"]
VERDICTS: tuple[Verdict, ...] = ("held", "failed", "inconclusive", "needs-scale")


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of checking one claim in one run.

    `predicted` and `measured` are numbers or short strings; `tolerance` says how close counts
    as agreement (a number, or a description such as `"<= bound"`). Statistical checks also
    carry the 95 % `band` of the measured quantity, the number of units `n` behind it and the
    `rule` that decided. A `needs-scale` verdict means the check cannot decide at this scale:
    `needs` names the scale that can (`--scale cpu-long`), and it is not counted.
    """

    claim_id: str
    predicted: Any
    measured: Any
    tolerance: Any
    verdict: Verdict
    source: str
    statement: str = ""
    details: str = ""
    figure: str | None = None
    scale: str = "sim"
    band: Any = None
    n: int | None = None
    rule: str = ""
    needs: str | None = None

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_json(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in dataclasses.asdict(self).items()}

    @staticmethod
    def from_json(d: dict[str, Any]) -> CheckResult:
        return CheckResult(**d)

    @property
    def counted(self) -> bool:
        """Whether this result enters the held/failed/inconclusive counts."""
        return self.verdict != "needs-scale"


def _jsonable(v):
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _finite(*values) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def make_result(
    c: Claim,
    predicted,
    measured,
    tolerance,
    verdict: Verdict,
    *,
    details: str = "",
    figure: str | None = None,
    scale: str = "sim",
    band=None,
    n: int | None = None,
    rule: str = "",
    needs: str | None = None,
) -> CheckResult:
    """Build a `CheckResult` for claim `c` (the one constructor every check goes through)."""
    return CheckResult(
        claim_id=c.id,
        predicted=_jsonable(predicted),
        measured=_jsonable(measured),
        tolerance=_jsonable(tolerance),
        verdict=verdict,
        source=str(c.source),
        statement=c.statement,
        details=details,
        figure=figure,
        scale=scale,
        band=_jsonable(band),
        n=n,
        rule=rule,
        needs=needs,
    )


def _nonfinite(details: str, *named) -> str:
    bad = ", ".join(f"{k}={v}" for k, v in named if not _finite(v))
    return f"non-finite measurement ({bad}). {details}".strip()


def check_close(
    c: Claim,
    predicted: float,
    measured: float,
    *,
    atol: float = 0.0,
    rtol: float = 0.0,
    details: str = "",
    figure: str | None = None,
    scale: str = "sim",
) -> CheckResult:
    """Deterministic: held when |measured - predicted| <= atol + rtol·|predicted|.

    A non-finite prediction or measurement is failed, with the reason in `details`.
    """
    p, m = float(predicted), float(measured)
    tol = atol + rtol * abs(p)
    if not _finite(p, m):
        return make_result(
            c,
            p,
            m,
            tol,
            "failed",
            scale=scale,
            figure=figure,
            details=_nonfinite(details, ("predicted", p), ("measured", m)),
        )
    verdict: Verdict = "held" if abs(m - p) <= tol else "failed"
    return make_result(
        c, p, m, tol, verdict, details=details, figure=figure, scale=scale, rule="deterministic"
    )


def check_bound(
    c: Claim,
    bound: float,
    measured: float,
    *,
    direction: Literal["<=", ">="] = "<=",
    slack: float = 0.0,
    details: str = "",
    figure: str | None = None,
    scale: str = "sim",
) -> CheckResult:
    """Deterministic: held when measured <= bound + slack (or >= bound - slack)."""
    if direction not in ("<=", ">="):
        raise ValueError(f"direction must be '<=' or '>=', got {direction!r}")
    b, m = float(bound), float(measured)
    tol = f"{direction} bound (slack {slack:.3g})"
    if not _finite(b, m):
        return make_result(
            c,
            b,
            m,
            tol,
            "failed",
            scale=scale,
            figure=figure,
            details=_nonfinite(details, ("bound", b), ("measured", m)),
        )
    ok = m <= b + slack if direction == "<=" else m >= b - slack
    return make_result(
        c,
        b,
        m,
        tol,
        "held" if ok else "failed",
        details=details,
        figure=figure,
        scale=scale,
        rule="deterministic",
    )


def check_true(
    c: Claim,
    condition: bool,
    *,
    predicted: Any = True,
    measured: Any = None,
    tolerance: Any = "exact",
    details: str = "",
    figure: str | None = None,
    scale: str = "sim",
) -> CheckResult:
    """Deterministic: held when `condition` is true; `predicted`/`measured` describe it."""
    meas = bool(condition) if measured is None else measured
    return make_result(
        c,
        predicted,
        meas,
        tolerance,
        "held" if condition else "failed",
        details=details,
        figure=figure,
        scale=scale,
        rule="deterministic",
    )


def needs_scale(
    c: Claim,
    needs: str,
    *,
    predicted: Any = None,
    measured: Any = None,
    details: str = "",
    scale: str = "sim",
    n: int | None = None,
) -> CheckResult:
    """A check that cannot decide at this scale: listed, not counted; `needs` names the scale."""
    return make_result(
        c, predicted, measured, None, "needs-scale", details=details, scale=scale, n=n, needs=needs
    )
