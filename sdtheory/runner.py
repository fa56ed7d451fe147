r"""Run named items (sims, experiments), each in its own folder, and write one report.

The one runner behind `sdtheory reproduce` and `sdtheory validate`. An `Item` is a name and a
function of its run folder that writes its files there and returns its check results. The
runner creates the folder, prints progress, times the item, turns a crash into one failed
`CheckResult` with the traceback's last line (the other items still run), saves the results to
`checks.json` in the folder, and writes `report.md`, `report.html` and `results.json` through
`sdtheory.claims.write_report` (which lists `needs-scale` results apart from the counts).

**Time budgets.** `run_items(..., budget_s=B)` gives the whole run `B` seconds of wall clock and
divides them among the items as they start: item $i$ gets
$$S_i = (B - \text{elapsed} - R)\cdot w_i \big/ \textstyle\sum_{j\ge i} w_j,$$
with $w$ the items' `weight` (their estimated cost) and $R$ a reserve kept for the report, plus,
for each item still to run, the longest time an item so far took after its measuring block
(deciding its claims, its figures). Time an item leaves unspent goes to the items after it; time
it overspends is taken from them.
An item whose share is under `min_share_s` is not started: each of its `claims` is reported as
`needs-scale`. A budgeted item (`Item.budgeted`) is called as `run(run_dir, budget)` with a
`Budget` for its share, and keeps to this contract:

1. call `budget.check("unit")` between units of work (seeds, steps, problems, methods);
   it raises `OutOfTime` when the share is spent *or the next unit, judged by the longest
   unit of that kind so far, would not fit*;
2. put the measuring loop inside `with budget.measuring():` -- `OutOfTime` ends the block
   (and a hard stop at the share's end interrupts a unit that runs over, on the main thread),
   and the run continues after it;
3. write each unit's result to disk when it is done (e.g. one JSON line per unit), so that
   what was measured before the stop is kept;
4. after the block, decide every claim from what was measured; a claim the measured units
   cannot decide is reported `needs-scale` (`Budget.undecided`), never given a verdict.

An item that lets `OutOfTime` escape gets `needs-scale` for each of its `claims`. Without a
budget every item gets `Budget()` (unlimited: `check` never raises), so the same code runs at
every scale. Each check is logged to `budget.jsonl` in the run folder (the unit, seconds since
the previous unit of that kind, the time left, and whatever the `probe` adds, e.g. peak memory).

Light: no torch, JAX or matplotlib; an item imports what it needs when it runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from . import claims, simio

__all__ = ["Budget", "Item", "ItemRun", "OutOfTime", "run_items", "write_report"]


class OutOfTime(BaseException):
    """An item's share of the time budget is spent (raised by `Budget.check` or the hard stop).

    A `BaseException`, like `KeyboardInterrupt`, so that library code catching `Exception`
    does not swallow it; `Budget.measuring` and the runner catch it.
    """


class Budget:
    """One item's share of a wall-clock budget, checked between units of work.

    Args:
      seconds: the share (`math.inf`: unlimited, `check` never raises).
      name: the item's name, for messages.
      log: a JSON-lines file getting one record per `check` (none if `None`).
      probe: called at each check; the dict it returns is added to the record (e.g. peak memory).
      hard: inside `measuring()`, interrupt a unit that runs past the share's end (SIGALRM; only
        on the main thread of a POSIX process, silently off elsewhere).
      needs: the scale `undecided` names by default (the runner passes the item's scale).
      clock: seconds as a float (`time.monotonic`).

    Example:
      >>> b = Budget(0.0)
      >>> with b.measuring():
      ...     for seed in range(3):
      ...         b.check("seed")
      >>> b.counts, b.stopped is not None
      ({}, True)
    """

    def __init__(
        self,
        seconds: float = math.inf,
        *,
        name: str = "",
        log: str | Path | None = None,
        probe: Callable[[], dict] | None = None,
        hard: bool = True,
        needs: str = "cpu-long",
        clock: Callable[[], float] = time.monotonic,
    ):
        seconds = float(seconds)
        if not seconds >= 0.0:
            raise ValueError(f"seconds must be >= 0 (or inf), got {seconds!r}")
        self.seconds, self.name, self.probe, self.hard, self.clock = (
            seconds,
            name,
            probe,
            hard,
            clock,
        )
        self.log = None if log is None else Path(log)
        self.needs = needs
        self.started = clock()
        self.deadline = self.started + seconds
        self.counts: dict[str, int] = {}
        self.stopped: str | None = None
        self._last: dict[str, float] = {}
        self._longest: dict[str, float] = {}
        self._measuring = False
        self.measured_s: float | None = None  # elapsed when the last measuring block ended

    @property
    def limited(self) -> bool:
        return math.isfinite(self.seconds)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def remaining(self) -> float:
        return self.deadline - self.clock()

    def estimate(self, unit: str) -> float:
        """The longest unit of this kind so far (seconds between two checks of it; 0 if none)."""
        return self._longest.get(unit, 0.0)

    def check(self, unit: str = "unit", **info) -> None:
        """Between units: raise `OutOfTime` unless the next `unit` fits in the time left.

        The next unit is expected to take as long as the longest one of its kind so far.
        `info` (numbers or short strings) goes into the log record; `tokens=n` (tokens processed
        since the previous check of this kind) also logs `tokens_per_s`.
        """
        now = self.clock()
        last = self._last.get(unit)
        dt = None if last is None else now - last
        if dt is not None:
            self._longest[unit] = max(self._longest.get(unit, 0.0), dt)
        left = self.deadline - now
        need = self._longest.get(unit, 0.0)
        ok = left > need if self.limited else True
        self._record(unit, dt, left, ok, info)
        if not ok:
            n = self.counts.get(unit, 0)
            why = "spent" if left <= 0 else f"{left:.1f} s left, a {unit} takes up to {need:.1f} s"
            self.stopped = (
                f"stopped before {unit} {n + 1} at {self.elapsed():.2f} s of its "
                f"{self.seconds:.2f} s share ({why})"
            )
            raise OutOfTime(self.stopped)
        self.counts[unit] = self.counts.get(unit, 0) + 1
        self._last[unit] = now

    def _record(self, unit, dt, left, ok, info) -> None:
        if self.log is None:
            return
        rec = {"unit": unit, "n": self.counts.get(unit, 0) + 1, "t": round(self.elapsed(), 4)}
        rec["seconds"] = None if dt is None else round(dt, 4)
        rec["remaining"] = round(left, 3) if self.limited else None
        if "tokens" in info and dt:
            rec["tokens_per_s"] = round(float(info["tokens"]) / dt, 1)
        rec.update(info)
        if self.probe is not None:
            rec.update(self.probe())
        if not ok:
            rec["stop"] = True
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a", encoding="utf-8") as f:
            f.write(json.dumps(rec, default=str) + "\n")

    @contextlib.contextmanager
    def measuring(self) -> Iterator[Budget]:
        """The measuring part of a run: `OutOfTime` inside ends the block, not the run.

        With `hard=True`, a limited share, on the main thread, a unit still running when the
        share ends is interrupted there (its partial work is lost; finished units are kept).
        """
        if self._measuring:
            raise ValueError("measuring() blocks of one Budget cannot be nested")
        self._measuring = True
        alarm = (
            self.hard
            and self.limited
            and hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread()
        )
        armed = [alarm]
        old = None

        def _stop(signum, frame):
            if armed[0]:
                armed[0] = False
                self.stopped = (
                    f"interrupted inside a unit at {self.elapsed():.1f} s, the end of its "
                    f"{self.seconds:.1f} s share"
                )
                raise OutOfTime(self.stopped)

        if alarm:
            old = signal.signal(signal.SIGALRM, _stop)
            signal.setitimer(signal.ITIMER_REAL, max(self.remaining(), 1e-3))
        try:
            try:
                yield self
            finally:  # disarm first: an alarm from here on raises in this block, caught below
                armed[0] = False
                if alarm:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    signal.signal(signal.SIGALRM, old)
                self._measuring = False
                self.measured_s = self.elapsed()
        except OutOfTime as e:
            self.stopped = self.stopped or str(e)

    def undecided(
        self, c: claims.Claim, *, details: str = "", needs: str | None = None, **kwargs
    ) -> claims.CheckResult:
        """`needs-scale` for a claim the measured units cannot decide, saying why; `needs`
        defaults to the budget's own (the item's scale: the same run with more time)."""
        why = f"The run {self.stopped}." if self.stopped else "Too few units at this scale."
        return claims.needs_scale(
            c, needs or self.needs, details=f"{why} {details}".strip(), **kwargs
        )

    def summary(self) -> dict:
        """Share, time used, units done per kind, and why it stopped (for `timing.json`)."""
        return {
            "share_s": self.seconds if self.limited else None,
            "elapsed_s": round(self.elapsed(), 3),
            "measured_s": None if self.measured_s is None else round(self.measured_s, 3),
            "units": dict(self.counts),
            "stopped": self.stopped,
        }


@dataclasses.dataclass(frozen=True)
class Item:
    """One unit of work for `run_items`.

    Attributes:
      name: unique within one run.
      run: `run(run_dir) -> results`, or `run(run_dir, budget)` when `budgeted`; `run_dir`
        exists when it is called.
      folder: the run folder relative to the report directory (default: `name`).
      title: the report's section heading (default: `name`).
      about: a short description for the progress line.
      crash_id: claim id of the failed result that replaces a crash (default: `<name>.run`).
      crash_statement: statement of that result (default: "`<name>` runs").
      crash_source: source of that result.
      scale: scale of that result (`CheckResult.scale`).
      budgeted: `run` takes a `Budget` and keeps to the contract in the module docstring.
      weight: the item's estimated cost, relative to the others (its share of a budget).
      claims: the claims the item decides (reported `needs-scale` if it gets no time).
      needs: the scale named by those `needs-scale` results.
    """

    name: str
    run: Callable[..., Sequence[claims.CheckResult]]
    folder: str | None = None
    title: str | None = None
    about: str = ""
    crash_id: str | None = None
    crash_statement: str | None = None
    crash_source: str = "derived: it must run"
    scale: str = "sim"
    budgeted: bool = False
    weight: float = 1.0
    claims: Sequence[claims.Claim] = ()
    needs: str = "cpu-long"


@dataclasses.dataclass(frozen=True)
class ItemRun:
    """What one item left: its results, figures and run time; `error` is set if it crashed.

    `budget` is the item's `Budget.summary()` (`None` for an item that is not budgeted).
    """

    name: str
    title: str
    run_dir: Path
    results: list[claims.CheckResult]
    figures: list[Path]
    seconds: float
    error: str | None = None
    budget: dict | None = None

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


def _not_decided(item: Item, why: str) -> list[claims.CheckResult]:
    """`needs-scale` for each of the item's claims (or for the item itself if it lists none)."""
    cs = list(item.claims) or [
        claims.Claim(
            item.crash_id or f"{item.name}.run",
            item.crash_statement or f"{item.name} runs",
            claims.Source("derived", "it must run"),
            item.name,
        )
    ]
    return [claims.needs_scale(c, item.needs, details=why, scale=item.scale) for c in cs]


def _run_one(
    item: Item, run_dir: Path, budget: Budget | None
) -> tuple[list[claims.CheckResult], str | None]:
    try:
        if item.budgeted:
            return list(item.run(run_dir, budget)), None
        return list(item.run(run_dir)), None
    except OutOfTime as e:
        return _not_decided(item, f"stopped by its time budget before deciding ({e})."), None
    except Exception:
        traceback.print_exc()
        error = traceback.format_exc(limit=3).strip().splitlines()[-1]
        return [_crash_result(item, error)], error


def run_items(
    items: Sequence[Item],
    out: str | Path,
    *,
    budget_s: float | None = None,
    reserve_s: float | None = None,
    min_share_s: float = 1.0,
    started: float | None = None,
    probe: Callable[[], dict] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[ItemRun]:
    """Run `items` in order, each in `out/<folder>`; a crash fails that item only.

    Args:
      items: the items.
      out: the report directory.
      budget_s: wall-clock seconds for the whole run, divided as in the module docstring
        (`None`: no budget).
      reserve_s: seconds kept back for the report (default: 5 % of the budget, at least 2 s).
      min_share_s: an item with a smaller share is not started (its claims: `needs-scale`).
      started: `clock()` time the budget started (default: now), to count earlier setup.
      probe: passed to each item's `Budget` (extra numbers for its `budget.jsonl`).
      clock: the clock of the budget (`time.monotonic`).

    Returns:
      One `ItemRun` per item, in order; each item's results are also in its `checks.json`.
    """
    names = [it.name for it in items]
    if len(set(names)) != len(names):
        raise ValueError(f"item names must be unique, got {names}")
    if budget_s is not None and not float(budget_s) > 0:
        raise ValueError(f"budget_s must be > 0 seconds, got {budget_s!r}")
    for it in items:
        if not (it.weight > 0 and math.isfinite(it.weight)):
            raise ValueError(f"weight of item {it.name} must be > 0, got {it.weight!r}")
    out = Path(out)
    t_start = clock() if started is None else started
    if budget_s is not None and reserve_s is None:
        reserve_s = max(2.0, 0.05 * budget_s)
    runs = []
    after_s = 0.0  # the longest an item has taken after its measuring (deciding, its figures)
    for i, item in enumerate(items, 1):
        run_dir = out / (item.folder or item.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        share = math.inf
        if budget_s is not None:
            # each item still to run will also decide after its share: keep that time back
            left = budget_s - (clock() - t_start) - reserve_s - after_s * (len(items) - i + 1)
            share = max(0.0, left) * item.weight / sum(it.weight for it in items[i - 1 :])
        about = f": {item.about}" if item.about else ""
        of = f", share {share:.0f} s" if math.isfinite(share) else ""
        print(f"[{i}/{len(items)}] {item.name}{about}{of} -> {run_dir}", flush=True)
        t0 = time.perf_counter()
        budget = None
        if item.budgeted:
            log = run_dir / "budget.jsonl"
            log.unlink(missing_ok=True)
            budget = Budget(
                share, name=item.name, log=log, probe=probe, needs=item.needs, clock=clock
            )
        if share < min_share_s:
            results, error = (
                _not_decided(
                    item,
                    f"not started: its share of the time budget ({share:.1f} s) "
                    f"was under {min_share_s:.1f} s.",
                ),
                None,
            )
            if budget is not None:
                budget.stopped = f"not started (share {share:.1f} s)"
        else:
            results, error = _run_one(item, run_dir, budget)
        seconds = time.perf_counter() - t0
        if budget is not None and budget.measured_s is not None:
            after_s = max(after_s, budget.elapsed() - budget.measured_s)
        simio.save_json(run_dir / "checks.json", [r.to_json() for r in results])
        note = f"; {budget.stopped}" if budget is not None and budget.stopped else ""
        print(f"    {seconds:.1f}s: {claims.verdict_counts(results)}{note}", flush=True)
        runs.append(
            ItemRun(
                name=item.name,
                title=item.title or item.name,
                run_dir=run_dir,
                results=results,
                figures=sorted(run_dir.glob("*.png")),
                seconds=seconds,
                error=error,
                budget=None if budget is None else budget.summary(),
            )
        )
    return runs


def write_report(
    runs: Sequence[ItemRun], out: str | Path, *, title: str, preamble: str = ""
) -> tuple[Path, Path]:
    """`report.md`, `report.html` and `results.json` in `out`: one section per item.

    Each section is headed by the item's title, run time and run folder (and, for an item its
    budget stopped, that it stopped); the summary line and the printed counts cover every
    result (`needs-scale` ones are listed, not counted).
    """
    out = Path(out)
    sections = []
    for r in runs:
        folder = r.run_dir.resolve().relative_to(out.resolve()).as_posix()
        stop = ""
        if r.budget and r.budget.get("stopped"):
            done = ", ".join(f"{n} x {u}" for u, n in r.budget["units"].items()) or "none"
            stop = f"; {r.budget['stopped']}; units measured: {done}"
        sections.append(
            (f"{r.title} ({r.seconds:.0f} s, run folder `{folder}/`{stop})", r.results, r.figures)
        )
    md, html = claims.write_report(sections, out, title=title, preamble=preamble)
    all_results = [x for r in runs for x in r.results]
    print(f"report: {md}\n        {html}\n{claims.summary_line(all_results)}", flush=True)
    return md, html
