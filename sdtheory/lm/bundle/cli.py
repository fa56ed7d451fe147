"""`sdtheory bundle OUT`: write an air-gapped bundle for `sdtheory validate` on a GPU machine.

sdtheory bundle OUT                          # --scale gpu, model shards of <= 48 MiB, wheels
sdtheory bundle OUT --shard-mb 40            # smaller shards
sdtheory bundle OUT --scale fast --model none --only opsd --no-wheels    # a tiny test bundle
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._build import DEFAULT_WHEELS, MODELS, SCALES


def build_parser(prog: str = "sdtheory bundle") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("out", help="a new or empty directory")
    p.add_argument("--scale", choices=SCALES, default="gpu", help="validate scale of the tasks")
    p.add_argument("--shard-mb", type=float, default=48.0, help="largest model shard (MiB)")
    p.add_argument("--transfer-mb", type=float, default=60.0, help="largest transfer (MiB)")
    p.add_argument("--model", choices=MODELS, default="smollm2", help="model to carry")
    p.add_argument("--only", nargs="+", default=None, help="only these experiments")
    p.add_argument(
        "--wheel",
        nargs="+",
        default=list(DEFAULT_WHEELS),
        help="requirements to pip download (pure wheels, Python 3.12) or wheel files",
    )
    p.add_argument("--no-wheels", action="store_true", help="carry no wheels")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from ._build import build_bundle

    manifest = build_bundle(
        args.out,
        scale=args.scale,
        shard_mb=args.shard_mb,
        model=args.model,
        wheels=[] if args.no_wheels else args.wheel,
        only=args.only,
        transfer_mb=args.transfer_mb,
    )
    if manifest["task_errors"]:
        print(
            "the bundle is incomplete: these experiments will stop for want of tasks: "
            + ", ".join(e["experiment"] for e in manifest["task_errors"]),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
