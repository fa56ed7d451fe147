"""`sdtheory validate`: run the real-model validation experiments and write their report.

sdtheory validate --scale cpu                 # all six, under 30 minutes on 2 cores
sdtheory validate --scale cpu-long            # decides every claim, under 3 hours
sdtheory validate --scale cpu --fast          # the reduced CI version (a few minutes)
sdtheory validate --scale gpu --out DIR       # one H100 (scripts/gpu_validate.sh)
sdtheory validate --only krr taid             # a subset
sdtheory validate --scale cpu-long --decide --out DIR   # verdicts from the units in DIR
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from collections.abc import Sequence
from pathlib import Path

from . import EXPERIMENTS, SCALES


def build_parser(prog: str = "sdtheory validate") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=SCALES, default="cpu", help="experiment sizes (default cpu)")
    p.add_argument(
        "--out", default=None, help="report directory (default results/validate/<scale>-<time>)"
    )
    p.add_argument(
        "--only", nargs="+", choices=list(EXPERIMENTS), default=None, help="run only these"
    )
    p.add_argument("--fast", action="store_true", help="reduced CI version: tiny steps")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = as is)")
    p.add_argument(
        "--decide",
        action="store_true",
        help="measure nothing: recompute the verdicts and the report from the units in --out "
        "(joins experiments run as separate processes with --only)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 if any prediction failed")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from . import run_validation

    if args.decide and args.out is None:
        raise SystemExit("--decide needs --out: the folder whose units to decide")
    if args.out is None:
        from ... import simio

        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        tag = f"{args.scale}-fast" if args.fast else args.scale
        out = simio.default_results_root() / "validate" / f"{tag}-{stamp}"
    else:
        out = Path(args.out)
    _, _, results = run_validation(
        args.scale, out, args.only, fast=args.fast, threads=args.threads, decide_only=args.decide
    )
    crashed = [r for r in results if r.claim_id.endswith(".run") and r.verdict == "failed"]
    if crashed:
        print(f"experiments that crashed: {[r.claim_id for r in crashed]}", file=sys.stderr)
        return 1
    if args.strict and any(r.verdict == "failed" for r in results):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
