"""The claim registry, check results and the report writer.

A *claim* is one prediction of a theory, stated so that a run can confirm or refute it. Theory
modules compute predictions; sims (and `sdtheory validate`) measure them and return
`CheckResult`s; `write_report` puts prediction, measurement, tolerance and verdict side by side.

Sims declare claims at import time with `claim(...)` and return check results from their run;
`simio.save_checks` writes them to `checks.json` in the run directory, which is what
`sdtheory reproduce` reads back.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

SourceKind = Literal["paper", "code", "derived", "secondary"]
Verdict = Literal["held", "failed", "inconclusive"]

_SOURCE_KINDS = ("paper", "code", "derived", "secondary")


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a claim comes from.

    `kind` is `paper` (with section in `ref`), `code` (with repository and commit), `derived`
    (our own derivation; `ref` says where it is written down) or `secondary` (a third-party
    reconstruction, not checked against the paper).
    """

    kind: SourceKind
    ref: str

    def __post_init__(self):
        if self.kind not in _SOURCE_KINDS:
            raise ValueError(f"kind must be one of {_SOURCE_KINDS}, got {self.kind!r}")
        if not self.ref:
            raise ValueError("ref must name the paper section, the code or the derivation")

    def __str__(self) -> str:
        return f"{self.kind}: {self.ref}"


@dataclasses.dataclass(frozen=True)
class Claim:
    """One checkable prediction.

    Attributes:
      id: dotted id, e.g. `krr.limit-amplified-ridge`.
      statement: the prediction in one or two sentences.
      source: where it comes from.
      module: the function or class that computes the prediction.
      paper: bib key of the paper page under `papers/`, if any.
    """

    id: str
    statement: str
    source: Source
    module: str
    paper: str | None = None


REGISTRY: dict[str, Claim] = {}


def register(c: Claim) -> Claim:
    """Add a claim to the registry; re-registering the same claim is a no-op."""
    old = REGISTRY.get(c.id)
    if old is not None and old != c:
        raise ValueError(f"claim id {c.id!r} is already registered with a different definition")
    REGISTRY[c.id] = c
    return c


def claim(
    id: str,
    statement: str,
    source: Source | tuple[str, str],
    module: str,
    paper: str | None = None,
) -> Claim:
    """Create and register a claim. `source` may be a `(kind, ref)` pair."""
    src = source if isinstance(source, Source) else Source(*source)
    return register(Claim(id=id, statement=statement, source=src, module=module, paper=paper))


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of checking one claim in one run.

    `predicted` and `measured` are numbers or short strings; `tolerance` says how close counts
    as agreement (a number, or a description such as `"<= bound"`).
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

    def to_json(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in dataclasses.asdict(self).items()}

    @staticmethod
    def from_json(d: dict[str, Any]) -> CheckResult:
        return CheckResult(**d)


def _jsonable(v):
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _result(c: Claim, predicted, measured, tolerance, ok: bool | None, details, figure):
    verdict: Verdict = "inconclusive" if ok is None else ("held" if ok else "failed")
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
    )


def check_close(
    c: Claim,
    predicted: float,
    measured: float,
    *,
    atol: float = 0.0,
    rtol: float = 0.0,
    details: str = "",
    figure: str | None = None,
) -> CheckResult:
    """Held when |measured - predicted| <= atol + rtol * |predicted|."""
    p, m = float(predicted), float(measured)
    tol = atol + rtol * abs(p)
    ok = None if not (math.isfinite(p) and math.isfinite(m)) else abs(m - p) <= tol
    return _result(c, p, m, tol, ok, details, figure)


def check_bound(
    c: Claim,
    bound: float,
    measured: float,
    *,
    direction: Literal["<=", ">="] = "<=",
    slack: float = 0.0,
    details: str = "",
    figure: str | None = None,
) -> CheckResult:
    """Held when measured <= bound + slack (or >= bound - slack)."""
    b, m = float(bound), float(measured)
    if direction == "<=":
        ok = m <= b + slack
    elif direction == ">=":
        ok = m >= b - slack
    else:
        raise ValueError(f"direction must be '<=' or '>=', got {direction!r}")
    return _result(c, b, m, f"{direction} bound (slack {slack:.3g})", ok, details, figure)


def check_true(
    c: Claim,
    condition: bool,
    *,
    predicted: Any = True,
    measured: Any = None,
    tolerance: Any = "exact",
    details: str = "",
    figure: str | None = None,
) -> CheckResult:
    """Held when `condition` is true; `predicted`/`measured` describe what was compared."""
    meas = bool(condition) if measured is None else measured
    return _result(c, predicted, meas, tolerance, bool(condition), details, figure)


# ----------------------------------------------------------------------------- report


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and len(v) > 6:
        return "[" + ", ".join(_fmt(x) for x in v[:6]) + ", …]"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


_MARK = {"held": "✅ held", "failed": "❌ failed", "inconclusive": "⚠️ inconclusive"}


def write_report(
    sections: Sequence[tuple[str, Sequence[CheckResult], Sequence[Path]]],
    out_dir: Path,
    *,
    title: str = "sdtheory reproduce",
    preamble: str = "",
) -> tuple[Path, Path]:
    """Write `report.md`, a self-contained `report.html` (figures inlined) and `results.json`.

    Args:
      sections: `(name, results, figure_paths)` per sim or experiment.
      out_dir: where the report goes; figure links in the markdown are relative to it.
      title: page title.
      preamble: a paragraph under the title (scale, machine, run time).

    Returns:
      The paths of the markdown and HTML reports.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_results = [r for _, rs, _ in sections for r in rs]
    counts = {
        v: sum(r.verdict == v for r in all_results) for v in ("held", "failed", "inconclusive")
    }
    summary = (
        f"{len(all_results)} checks: {counts['held']} held, {counts['failed']} failed, "
        f"{counts['inconclusive']} inconclusive."
    )
    md = [f"# {title}", ""]
    if preamble:
        md += [preamble, ""]
    md += [summary, ""]
    if not sections:
        md += ["No sims are registered yet, so there is nothing to check.", ""]
    for name, results, figures in sections:
        md += [f"## {name}", ""]
        if results:
            md += [
                "| claim | verdict | predicted | measured | tolerance | source |",
                "|---|---|---|---|---|---|",
            ]
            for r in results:
                md.append(
                    f"| `{r.claim_id}` | {_MARK[r.verdict]} | {_fmt(r.predicted)} | "
                    f"{_fmt(r.measured)} | {_fmt(r.tolerance)} | {r.source} |"
                )
            md.append("")
            for r in results:
                if r.details:
                    md.append(f"- `{r.claim_id}`: {r.statement} {r.details}".rstrip())
            md.append("")
        else:
            md += ["(no checks)", ""]
        for fig in figures:
            rel = Path(fig).resolve().relative_to(out_dir.resolve()).as_posix()
            md += [f"![{Path(fig).stem}]({rel})", ""]
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(md), encoding="utf-8")

    html_path = out_dir / "report.html"
    html_path.write_text(_html(title, preamble, summary, sections), encoding="utf-8")
    (out_dir / "results.json").write_text(
        json.dumps([r.to_json() for r in all_results], indent=2), encoding="utf-8"
    )
    return md_path, html_path


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.held{color:#1a7f37}.failed{color:#cf222e;font-weight:bold}
.inconclusive{color:#9a6700}img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
code{background:#f6f8fa;padding:1px 4px}"""


def _html(title, preamble, summary, sections) -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if preamble:
        parts.append(f"<p>{esc(preamble)}</p>")
    parts.append(f"<p><b>{esc(summary)}</b></p>")
    for name, results, figures in sections:
        parts.append(f"<h2>{esc(name)}</h2>")
        if results:
            parts.append(
                "<table><tr><th>claim</th><th>statement</th><th>verdict</th><th>predicted</th>"
                "<th>measured</th><th>tolerance</th><th>source</th></tr>"
            )
            for r in results:
                parts.append(
                    f"<tr><td><code>{esc(r.claim_id)}</code></td><td>{esc(r.statement)}"
                    f"{'<br><small>' + esc(r.details) + '</small>' if r.details else ''}</td>"
                    f"<td class='{r.verdict}'>{esc(r.verdict)}</td><td>{esc(_fmt(r.predicted))}</td>"
                    f"<td>{esc(_fmt(r.measured))}</td><td>{esc(_fmt(r.tolerance))}</td>"
                    f"<td>{esc(r.source)}</td></tr>"
                )
            parts.append("</table>")
        for fig in figures:
            data = base64.b64encode(Path(fig).read_bytes()).decode("ascii")
            parts.append(
                f"<figure><img alt='{esc(Path(fig).stem)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{esc(Path(fig).name)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def load_checks(path: Path) -> list[CheckResult]:
    """Read the `checks.json` a sim wrote."""
    return [CheckResult.from_json(d) for d in json.loads(Path(path).read_text())]


def verdict_counts(results: Iterable[CheckResult]) -> dict[str, int]:
    out = {"held": 0, "failed": 0, "inconclusive": 0}
    for r in results:
        out[r.verdict] += 1
    return out
