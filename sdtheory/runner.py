"""Run named items (sims, experiments), each in its own folder, and write one report.

The one runner behind `sdtheory reproduce` and `sdtheory validate`. An `Item` is a name and a
function of its run folder that writes its files there and returns its check results. The
runner creates the folder, prints progress, times the item, turns a crash into one failed
`CheckResult` with the traceback's last line (the other items still run), saves the results to
`checks.json` in the folder, and writes `report.md`, `report.html` and `results.json` through
`sdtheory.claims.write_report` (which lists `needs-scale` results apart from the counts).

Light: no torch, JAX or matplotlib; an item imports what it needs when it runs.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from . import claims, simio

__all__ = ["Item", "ItemRun", "run_items", "write_report"]


@dataclasses.dataclass(frozen=True)
class Item:
    """One unit of work for `run_items`.

    Attributes:
      name: unique within one run.
      run: `run(run_dir) -> results`; `run_dir` exists when it is called.
      folder: the run folder relative to the report directory (default: `name`).
      title: the report's section heading (default: `name`).
      about: a short description for the progress line.
      crash_id: claim id of the failed result that replaces a crash (default: `<name>.run`).
      crash_statement: statement of that result (default: "`<name>` runs").
      crash_source: source of that result.
      scale: scale of that result (`CheckResult.scale`).
    """

    name: str
    run: Callable[[Path], Sequence[claims.CheckResult]]
    folder: str | None = None
    title: str | None = None
    about: str = ""
    crash_id: str | None = None
    crash_statement: str | None = None
    crash_source: str = "derived: it must run"
    scale: str = "sim"


@dataclasses.dataclass(frozen=True)
class ItemRun:
    """What one item left: its results, figures and run time; `error` is set if it crashed."""

    name: str
    title: str
    run_dir: Path
    results: list[claims.CheckResult]
    figures: list[Path]
    seconds: float
    error: str | None = None

    @property
    def crashed(self) -> bool:
        return self.error is not None


def _crash_result(item: Item, error: str) -> claims.CheckResult:
    return claims.CheckResult(
        claim_id=item.crash_id or f"{item.name}.run",
        predicted="runs",
        measured="crashed",
        tolerance="exact",
        verdict="failed",
        source=item.crash_source,
        statement=item.crash_statement or f"{item.name} runs",
        details=error,
        scale=item.scale,
    )


def _run_one(item: Item, run_dir: Path) -> tuple[list[claims.CheckResult], str | None]:
    # A per-item wall-clock budget (a deadline passed on to `item.run`) belongs here.
    try:
        return list(item.run(run_dir)), None
    except Exception:
        traceback.print_exc()
        error = traceback.format_exc(limit=3).strip().splitlines()[-1]
        return [_crash_result(item, error)], error


def run_items(items: Sequence[Item], out: str | Path) -> list[ItemRun]:
    """Run `items` in order, each in `out/<folder>`; a crash fails that item only.

    Returns:
      One `ItemRun` per item, in order; each item's results are also in its `checks.json`.
    """
    names = [it.name for it in items]
    if len(set(names)) != len(names):
        raise ValueError(f"item names must be unique, got {names}")
    out = Path(out)
    runs = []
    for i, item in enumerate(items, 1):
        run_dir = out / (item.folder or item.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        about = f": {item.about}" if item.about else ""
        print(f"[{i}/{len(items)}] {item.name}{about} -> {run_dir}", flush=True)
        t0 = time.perf_counter()
        results, error = _run_one(item, run_dir)
        seconds = time.perf_counter() - t0
        simio.save_json(run_dir / "checks.json", [r.to_json() for r in results])
        print(f"    {seconds:.1f}s: {claims.verdict_counts(results)}", flush=True)
        runs.append(
            ItemRun(
                name=item.name,
                title=item.title or item.name,
                run_dir=run_dir,
                results=results,
                figures=sorted(run_dir.glob("*.png")),
                seconds=seconds,
                error=error,
            )
        )
    return runs


def write_report(
    runs: Sequence[ItemRun], out: str | Path, *, title: str, preamble: str = ""
) -> tuple[Path, Path]:
    """`report.md`, `report.html` and `results.json` in `out`: one section per item.

    Each section is headed by the item's title, run time and run folder; the summary line and
    the printed counts cover every result (`needs-scale` ones are listed, not counted).
    """
    out = Path(out)
    sections = []
    for r in runs:
        folder = r.run_dir.resolve().relative_to(out.resolve()).as_posix()
        sections.append(
            (f"{r.title} ({r.seconds:.0f} s, run folder `{folder}/`)", r.results, r.figures)
        )
    md, html = claims.write_report(sections, out, title=title, preamble=preamble)
    all_results = [x for r in runs for x in r.results]
    print(f"report: {md}\n        {html}\n{claims.summary_line(all_results)}", flush=True)
    return md, html
