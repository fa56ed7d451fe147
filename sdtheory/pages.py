"""Every verdict where a reader looks: the verdict blocks of the paper pages and the README.

Committed results live in `docs/results/<name>.json`, one file per run (the `sdtheory reproduce`
snapshot, `sdtheory validate` per scale), each
`{"name", "scale", "run": "what, where, when", "results": [CheckResult as JSON + "paper"]}`.
`sdtheory pages` rewrites, from those files only, the blocks between
`<!-- verdicts:begin KEY -->` and `<!-- verdicts:end -->` in

- `papers/<key>/README.md` (KEY = the paper key): every committed verdict of the paper's claims,
  with its scale, failures included;
- `papers/README.md` (KEY = `index`): counts per paper and scale;
- `README.md` (KEY = `readme`): the headline counts per run, every failure with its scale, and
  whether the GPU scale has been run on a GPU.

`sdtheory pages --check` exits 1 when a page disagrees with the committed results (the test
`tests/test_pages.py` runs it), and `sdtheory pages --snapshot DIR --name NAME --scale SCALE
--run TEXT` copies a report's `results.json` into `docs/results/NAME.json`, adding each claim's
paper key from the registry.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from .claims._report import _fmt

BLOCK = re.compile(
    r"(<!-- verdicts:begin (?P<key>[\w-]+) -->\n)(?P<body>.*?)(<!-- verdicts:end -->)", re.DOTALL
)
SHOWN = {
    "held": "held",
    "failed": "**failed**",
    "inconclusive": "inconclusive",
    "needs-scale": "needs a larger scale",
}


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def load_snapshots(folder: Path) -> list[dict]:
    """Every `docs/results/*.json`, sorted by name."""
    snaps = []
    for p in sorted(Path(folder).glob("*.json")):
        d = json.loads(p.read_text(encoding="utf-8"))
        for key in ("name", "scale", "run", "results"):
            if key not in d:
                raise ValueError(f"{p}: a results file needs the key {key!r}")
        snaps.append(d)
    return snaps


def _measured(r: dict) -> str:
    band = r.get("band")
    if isinstance(band, list) and len(band) == 2:
        return f"{_fmt(r.get('measured'))} [{_fmt(band[0])}, {_fmt(band[1])}]"
    return _fmt(r.get("measured"))


def render_paper(key: str, snaps: Sequence[dict]) -> str:
    rows = []
    for s in snaps:
        for r in s["results"]:
            if r.get("paper") != key:
                continue
            verdict = SHOWN[r["verdict"]]
            if r["verdict"] == "needs-scale" and r.get("needs"):
                verdict += f" (`{r['needs']}`)"
            rows.append(
                f"| `{r['claim_id']}` | {s['scale']} | {verdict} | {_fmt(r.get('predicted'))} "
                f"| {_measured(r)} | {s['name']} |"
            )
    if not rows:
        return "No committed results check this paper's claims yet.\n"
    runs = sorted({s["name"] for s in snaps if any(r.get("paper") == key for r in s["results"])})
    lines = [
        "| claim | scale | verdict | predicted | measured [95 % band] | run |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Runs: " + "; ".join(f"{s['name']}: {s['run']}" for s in snaps if s["name"] in runs) + ".",
    ]
    return "\n".join(lines) + "\n"


def _counts(results: Sequence[dict]) -> Counter:
    return Counter(r["verdict"] for r in results)


def render_index(snaps: Sequence[dict]) -> str:
    keys = sorted({r["paper"] for s in snaps for r in s["results"] if r.get("paper")})
    lines = [
        "| paper | run (scale) | held | failed | inconclusive | needs a larger scale | failed claims |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in keys:
        for s in snaps:
            rs = [r for r in s["results"] if r.get("paper") == key]
            if not rs:
                continue
            k = _counts(rs)
            failed = ", ".join(f"`{r['claim_id']}`" for r in rs if r["verdict"] == "failed")
            lines.append(
                f"| {key} | {s['name']} ({s['scale']}) | {k['held']} | {k['failed']} | "
                f"{k['inconclusive']} | {k['needs-scale']} | {failed or '—'} |"
            )
    return "\n".join(lines) + "\n"


def render_readme(snaps: Sequence[dict]) -> str:
    lines = []
    for s in snaps:
        k = _counts(s["results"])
        counted = k["held"] + k["failed"] + k["inconclusive"]
        line = (
            f"- **{s['name']}** (scale `{s['scale']}`; {s['run']}): {counted} checks, "
            f"{k['held']} held, {k['failed']} failed, {k['inconclusive']} inconclusive"
        )
        if k["needs-scale"]:
            line += f"; {k['needs-scale']} more need a larger scale (not counted)"
        failed = [r["claim_id"] for r in s["results"] if r["verdict"] == "failed"]
        if failed:
            line += ". Failed: " + ", ".join(f"`{c}`" for c in failed)
        lines.append(line + ".")
    if not any(s["scale"] == "gpu" for s in snaps):
        lines.append(
            "- The GPU scale (`scripts/gpu_validate.sh`, the bundle's `gpu_session.sh`) **has "
            "not been run on a GPU**: no results at scale `gpu` are committed; its sizes are "
            "estimates (`docs/lm/gpu.md`) and its 300 s budget is what bounds the run."
        )
    lines.append("")
    lines.append("Per paper and scale: `papers/README.md`; claim by claim: each paper's page.")
    return "\n".join(lines) + "\n"


def render(key: str, snaps: Sequence[dict]) -> str:
    if key == "index":
        return render_index(snaps)
    if key == "readme":
        return render_readme(snaps)
    return render_paper(key, snaps)


def rewrite(text: str, snaps: Sequence[dict]) -> str:
    """`text` with every verdict block re-rendered from `snaps`."""

    def sub(m: re.Match) -> str:
        return m.group(1) + render(m.group("key"), snaps) + m.group(4)

    return BLOCK.sub(sub, text)


def pages(root: Path) -> list[Path]:
    return [
        root / "README.md",
        root / "papers" / "README.md",
        *sorted(root.glob("papers/*/README.md")),
    ]


def update(root: Path | None = None, *, check: bool = False) -> list[Path]:
    """Rewrite the verdict blocks (or, with `check`, only report) and return the stale pages."""
    root = repo_root() if root is None else Path(root)
    snaps = load_snapshots(root / "docs" / "results")
    stale = []
    for p in pages(root):
        if not p.exists():
            continue
        old = p.read_text(encoding="utf-8")
        new = rewrite(old, snaps)
        if new != old:
            stale.append(p)
            if not check:
                p.write_text(new, encoding="utf-8")
    return stale


def snapshot(report_dir: Path, name: str, scale: str, run: str, root: Path | None = None) -> Path:
    """Copy `report_dir/results.json` to `docs/results/<name>.json`, adding paper keys."""
    from .claims import REGISTRY, catalog

    catalog.load_all()
    try:  # the validate claims still live with their experiments (they need torch)
        from .lm import validate

        for exp in validate.EXPERIMENTS:
            validate.load_experiment(exp)
    except ImportError:
        pass
    root = repo_root() if root is None else Path(root)
    results = json.loads((Path(report_dir) / "results.json").read_text(encoding="utf-8"))
    for r in results:
        c = REGISTRY.get(r["claim_id"])
        r["paper"] = c.paper if c is not None else None
    out = root / "docs" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    body = {"name": name, "scale": scale, "run": run, "results": results}
    out.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out
