"""The `sdtheory` command: list sims and claims, run one sim, or reproduce every check.

sdtheory list                      # sims and registered claims
sdtheory sim NAME [flags...]       # run one sim (flags: sdtheory sim NAME --help)
sdtheory reproduce [--out DIR]     # every sim at its fast defaults + report.md/report.html
sdtheory sweep --seeds 0 1 2 ...   # every sim at several seeds: do the verdicts change?
sdtheory pages [--check]           # rewrite the verdict blocks of the pages from docs/results/
sdtheory bundle OUT                # an air-gapped bundle for `sdtheory validate` on a GPU machine
sdtheory export RUN_DIR OUT        # a run's student (LoRA merged) as a Hugging Face checkpoint
sdtheory plot RUN_DIR [RUN_DIR...] # overlay runs' curves: PNGs and one HTML page
"""

from __future__ import annotations

import argparse
import ast
import collections
import datetime as _dt
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from . import claims, runner, simio
from .claims import catalog


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""


def _sim_summary(name: str) -> str:
    """First line of a sim's docstring, read without importing it (no torch or JAX)."""
    path = simio.sims_dir() / f"{name}.py"
    try:
        return _first_line(ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))))
    except (OSError, SyntaxError):
        return ""


def _validate_claims() -> str:
    """Register the claims still declared in `sdtheory.lm.validate` (needs torch).

    Returns a note for the listing: those claims move to the catalog; until then they are shown
    only where torch is installed.
    """
    if importlib.util.find_spec("torch") is None:
        return "the `validate.*` claims need torch to be listed (pip install sdtheory[torch])"
    try:
        from .lm import validate

        for name in validate.EXPERIMENTS:
            validate.load_experiment(name)
    except Exception as e:  # pragma: no cover - a broken optional install
        return f"the `validate.*` claims could not be loaded: {type(e).__name__}: {e}"
    return ""


def cmd_list(args: argparse.Namespace) -> int:
    names = simio.sim_names()
    print(f"sims ({simio.sims_dir()}):")
    for name in names:
        print(f"  {name:28s} {_sim_summary(name)}")
    if not names:
        print("  (none)")
    registry = catalog.load_all()
    note = _validate_claims() if args.validate else ""
    kinds = collections.Counter(c.source.kind for c in registry.values())
    by_kind = ", ".join(f"{k} {kinds[k]}" for k in ("paper", "code", "secondary", "derived"))
    print(f"\nclaims ({len(registry)}: {by_kind}):")
    for c in sorted(registry.values(), key=lambda c: c.id):
        print(f"  {c.id:44s} [{c.source.kind}] {c.statement}")
    if note:
        print(f"\nnote: {note}")
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    mod = simio.load_sim(args.name)
    mod.main(args.rest)
    return 0


def _sim_item(name: str) -> runner.Item:
    def run(run_dir: Path) -> list[claims.CheckResult]:
        simio.load_sim(name).main(["--out", str(run_dir)])
        checks = run_dir / "checks.json"
        return claims.load_checks(checks) if checks.exists() else []

    return runner.Item(
        name,
        run,
        folder=f"sims/{name}",
        crash_source="sim",
        crash_statement=f"sims/{name}.py runs at its defaults",
    )


def cmd_reproduce(args: argparse.Namespace) -> int:
    names = simio.sim_names()
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            raise SystemExit(f"--only names unknown sims {unknown}; known: {names}")
        names = [n for n in names if n in args.only]
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else simio.default_results_root() / "reproduce" / stamp
    runs = runner.run_items([_sim_item(n) for n in names], out)
    preamble = (
        f"Scale: fast CPU defaults. {len(names)} sims in {sum(r.seconds for r in runs):.0f} s "
        f"on {simio.environment()['platform']}. Generated {stamp}."
    )
    runner.write_report(runs, out, title="sdtheory reproduce", preamble=preamble)
    crashed = [r.name for r in runs if r.crashed]
    if crashed:
        print(f"sims that crashed: {crashed}", file=sys.stderr)
        return 1
    if args.strict and any(x.verdict == "failed" for r in runs for x in r.results):
        return 1
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from . import sweep

    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else simio.default_results_root() / "sweep" / stamp
    return sweep.main(args.only, args.seeds, out, args.jobs)


def cmd_pages(args: argparse.Namespace) -> int:
    from . import pages

    if args.snapshot:
        if not (args.name and args.scale and args.run):
            raise SystemExit("--snapshot needs --name, --scale and --run")
        print(pages.snapshot(Path(args.snapshot), args.name, args.scale, args.run))
    stale = pages.update(check=args.check)
    for p in stale:
        print(f"{'stale' if args.check else 'rewrote'}: {p}")
    return 1 if (args.check and stale) else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sdtheory", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("list", help="list sims and every registered claim")
    sp.add_argument(
        "--validate",
        type=simio._parse_bool,
        default=True,
        metavar="BOOL",
        help="also list the claims still declared in sdtheory.lm.validate (imports torch)",
    )
    sp.set_defaults(fn=cmd_list)
    sp = sub.add_parser("sim", help="run one sim; flags after NAME go to the sim")
    sp.add_argument("name", help="sim name (see `sdtheory list`)")
    sp.add_argument("rest", nargs=argparse.REMAINDER, help="flags for the sim")
    sp.set_defaults(fn=cmd_sim)
    sp = sub.add_parser("reproduce", help="run every sim at its fast defaults and write a report")
    sp.add_argument(
        "--out", default=None, help="report directory (default results/reproduce/<time>)"
    )
    sp.add_argument("--only", nargs="+", default=None, help="run only these sims")
    sp.add_argument("--strict", action="store_true", help="exit 1 if any claim failed")
    sp.set_defaults(fn=cmd_reproduce)
    sp = sub.add_parser(
        "sweep", help="run every sim at several seeds and list the claims whose verdict changes"
    )
    sp.add_argument("--seeds", type=int, nargs="+", required=True, help="seeds to run")
    sp.add_argument("--out", default=None, help="output folder (default results/sweep/<time>)")
    sp.add_argument("--only", nargs="+", default=None, help="run only these sims")
    sp.add_argument("--jobs", type=int, default=1, help="sims run at once (one process each)")
    sp.set_defaults(fn=cmd_sweep)
    sp = sub.add_parser(
        "pages", help="rewrite the verdict blocks of the paper pages and README from docs/results"
    )
    sp.add_argument("--check", action="store_true", help="only report stale pages (exit 1)")
    sp.add_argument("--snapshot", default=None, help="a report folder to commit first")
    sp.add_argument("--name", default=None, help="snapshot name (docs/results/NAME.json)")
    sp.add_argument("--scale", default=None, help="snapshot scale (sim, cpu, cpu-long, gpu)")
    sp.add_argument("--run", default=None, help="what the run was: command, commit, machine, date")
    sp.set_defaults(fn=cmd_pages)
    sp = sub.add_parser(
        "train",
        help="on-policy distillation / RL on a language model (OPSD, GKD, GRPO); "
        "flags: sdtheory train --help",
    )
    sp.set_defaults(fn=lambda args: 0)  # never reached: main() hands `train` over first
    sp = sub.add_parser(
        "validate",
        help="theory vs real-LM runs on SmolLM2 (--scale cpu|gpu, --fast, --only); "
        "flags: sdtheory validate --help",
    )
    sp.set_defaults(fn=lambda args: 0)  # never reached: main() hands `validate` over first
    sp = sub.add_parser(
        "bundle",
        help="write an air-gapped bundle (model shards, task files, wheels, run.py) for a GPU "
        "machine; flags: sdtheory bundle --help",
    )
    sp.set_defaults(fn=lambda args: 0)  # never reached: main() hands `bundle` over first
    sp = sub.add_parser(
        "export",
        help="write a run's trained student (LoRA adapters merged) as a Hugging Face checkpoint; "
        "flags: sdtheory export --help",
    )
    sp.set_defaults(fn=lambda args: 0)  # never reached: main() hands `export` over first
    sp = sub.add_parser(
        "plot",
        help="overlay runs (reward, accuracy with its band, loss, throughput, each method's "
        "quantities) into PNGs and one HTML page; flags: sdtheory plot --help",
    )
    sp.set_defaults(fn=lambda args: 0)  # never reached: main() hands `plot` over first
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [
        "train"
    ]:  # every later flag belongs to the trainer; torch is imported here only
        from .lm import train_cli

        return train_cli.main(argv[1:])
    if argv[:1] == ["validate"]:  # torch is imported here only
        from .lm.validate import cli as validate_cli

        return validate_cli.main(argv[1:])
    if argv[:1] == ["bundle"]:
        from .lm.bundle import cli as bundle_cli

        return bundle_cli.main(argv[1:])
    if argv[:1] == ["export"]:  # torch is imported here only
        from .lm import export

        return export.main(argv[1:])
    if argv[:1] == ["plot"]:  # matplotlib, never torch
        from .lm import plot

        return plot.main(argv[1:])
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    raise SystemExit(main())
