"""`sdtheory validate`: run the real-model validation experiments and write their report.

sdtheory validate --scale cpu                 # all six, under 30 minutes on 2 cores
sdtheory validate --scale cpu-long            # decides every claim, under 3 hours
sdtheory validate --scale cpu --fast          # the reduced CI version (a few minutes)
sdtheory validate --scale gpu --out DIR       # one H100/H200, 300 s budget (--budget-s)
sdtheory validate --smoke --out DIR           # every code path, tiny model, < 1 min on a GPU
sdtheory validate --only krr taid             # a subset
sdtheory validate --scale cpu-long --decide --out DIR   # verdicts from the units in DIR
sdtheory validate --scale gpu --size opsd=40  # one experiment's size knob (its KNOB) rescaled
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import EXPERIMENTS, SCALES

GPU_BUDGET_S = 300.0  # the default wall-clock budget at --scale gpu (one H100, conversion included)


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
    p.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help=f"wall-clock budget of the whole run in seconds, model load included; each "
        f"experiment stops at its share and reports what it could not decide as needs-scale "
        f"(default {GPU_BUDGET_S:.0f} at --scale gpu, none otherwise; 0 = none)",
    )
    p.add_argument(
        "--budget-from",
        type=float,
        default=None,
        metavar="EPOCH",
        help="the budget started at this wall-clock time (seconds since the epoch, in the past; "
        "default: this command's start). The bundle's run.py passes its own start, so that "
        "its stages and this process's start-up are spent from the budget too",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when visible), cpu or cuda")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto: bf16 autocast on CUDA for rollouts, features and training; fp32 on the CPU",
    )
    p.add_argument(
        "--model",
        choices=("smollm2", "tiny"),
        default="smollm2",
        help="the real model; tiny = a small random model (code paths only, verdicts meaningless)",
    )
    p.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NAME=N",
        help="set experiment NAME's size knob to N (repeatable): krr alpha_grid, meta steps, "
        "kernel seeds, opsd steps, paced k, taid steps (docs/lm/gpu.md, 'Sizing the experiments')",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="run every code path with the tiny model instead (sdtheory.lm.validate.smoke): "
        "each method 2 steps, losses in bf16 and fp32, fused vs plain vs Liger, every experiment",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.budget_from is not None:
        ago = time.time() - args.budget_from
        if not 0 <= ago < 86400:
            print(
                f"sdtheory validate: error: --budget-from must be a time in the last day, got "
                f"{args.budget_from} ({ago:.0f} s ago)",
                file=sys.stderr,
            )
            return 2
        started -= ago
    from ... import simio

    if args.budget_s is not None and args.budget_s < 0:
        print(
            f"sdtheory validate: error: --budget-s must be >= 0, got {args.budget_s}",
            file=sys.stderr,
        )
        return 2
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if args.smoke:
        from .smoke import run_smoke

        out = Path(args.out) if args.out else simio.default_results_root() / "smoke" / stamp
        report = run_smoke(out, device=args.device, only=args.only, threads=args.threads)
        return 0 if report["ok"] else 1
    from . import run_validation

    if args.decide and args.out is None:
        print(
            "sdtheory validate: error: --decide needs --out (the folder whose units to decide)",
            file=sys.stderr,
        )
        return 2
    sizes = {}
    for item in args.size:
        name, eq, value = item.partition("=")
        if not eq or not value.strip().isdigit():
            print(f"sdtheory validate: error: --size must be NAME=N, got {item!r}", file=sys.stderr)
            return 2
        sizes[name.strip()] = int(value)

    budget = args.budget_s
    if budget is None and args.scale == "gpu" and not args.fast:
        budget = GPU_BUDGET_S
    if budget == 0 or args.decide:  # deciding measures nothing: no budget to keep
        budget = None
    if args.out is None:
        tag = f"{args.scale}-fast" if args.fast else args.scale
        out = simio.default_results_root() / "validate" / f"{tag}-{stamp}"
    else:
        out = Path(args.out)
    try:
        _, _, results = run_validation(
            args.scale,
            out,
            args.only,
            fast=args.fast,
            threads=args.threads,
            budget_s=budget,
            device=args.device,
            precision=args.precision,
            model=args.model,
            sizes=sizes,
            started=started,
            decide_only=args.decide,
        )
    except ValueError as e:
        print(f"sdtheory validate: error: {e}", file=sys.stderr)
        return 2
    crashed = [r for r in results if r.claim_id.endswith(".run") and r.verdict == "failed"]
    if crashed:
        print(f"experiments that crashed: {[r.claim_id for r in crashed]}", file=sys.stderr)
        return 1
    if args.strict and any(r.verdict == "failed" for r in results):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
