"""The report writer: markdown, a self-contained HTML page and `results.json`.

Checks that need a larger scale are listed in their own section and never enter the counts.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from ._results import VERDICTS, CheckResult


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and len(v) > 6:
        return "[" + ", ".join(_fmt(x) for x in v[:6]) + ", …]"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


_MARK = {
    "held": "✅ held",
    "failed": "❌ failed",
    "inconclusive": "⚠️ inconclusive",
    "needs-scale": "⏳ needs a larger scale",
}


def needs_flags(r: CheckResult) -> str:
    """The flags that decide a `needs-scale` check: `--scale X`, or the flags it names."""
    n = r.needs or "cpu-long"
    return n if n.startswith("--") else f"--scale {n}"


def verdict_counts(results: Iterable[CheckResult]) -> dict[str, int]:
    """Counts per verdict; `needs-scale` is reported beside the counted three, never among them."""
    out = dict.fromkeys(VERDICTS, 0)
    for r in results:
        out[r.verdict] += 1
    return out


def summary_line(results: Sequence[CheckResult]) -> str:
    """`N checks: a held, b failed, c inconclusive` (+ how many need a larger scale)."""
    k = verdict_counts(results)
    counted = k["held"] + k["failed"] + k["inconclusive"]
    line = (
        f"{counted} checks: {k['held']} held, {k['failed']} failed, "
        f"{k['inconclusive']} inconclusive."
    )
    if k["needs-scale"]:
        line += f" {k['needs-scale']} more need a larger scale (not counted)."
    return line


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
    summary = summary_line(all_results)
    md = [f"# {title}", ""]
    if preamble:
        md += [preamble, ""]
    md += [summary, ""]
    failed = [r for r in all_results if r.verdict == "failed"]
    if failed:
        md += ["Failed: " + ", ".join(f"`{r.claim_id}`" for r in failed) + ".", ""]
    if not sections:
        md += ["No sims are registered yet, so there is nothing to check.", ""]
    for name, results, figures in sections:
        md += [f"## {name}", ""]
        counted = [r for r in results if r.counted]
        later = [r for r in results if not r.counted]
        if counted:
            md += [
                "| claim | verdict | predicted | measured | tolerance / band | source |",
                "|---|---|---|---|---|---|",
            ]
            for r in counted:
                md.append(
                    f"| `{r.claim_id}` | {_MARK[r.verdict]} | {_fmt(r.predicted)} | "
                    f"{_fmt(r.measured)} | {_fmt(r.tolerance)} | {r.source} |"
                )
            md.append("")
            for r in counted:
                if r.details:
                    md.append(f"- `{r.claim_id}`: {r.statement} {r.details}".rstrip())
            md.append("")
        elif not later:
            md += ["(no checks)", ""]
        if later:
            md += ["Needs a larger scale (not counted):", ""]
            for r in later:
                md.append(
                    f"- `{r.claim_id}` (`{needs_flags(r)}`): {r.statement} {r.details}".rstrip()
                )
            md.append("")
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
.inconclusive{color:#9a6700}.needs-scale{color:#57606a}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
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
                "<th>measured</th><th>tolerance / band</th><th>source</th></tr>"
            )
            for r in sorted(results, key=lambda r: not r.counted):
                shown = r.verdict if r.counted else f"needs {needs_flags(r)}"
                parts.append(
                    f"<tr><td><code>{esc(r.claim_id)}</code></td><td>{esc(r.statement)}"
                    f"{'<br><small>' + esc(r.details) + '</small>' if r.details else ''}</td>"
                    f"<td class='{r.verdict}'>{esc(shown)}</td><td>{esc(_fmt(r.predicted))}</td>"
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
