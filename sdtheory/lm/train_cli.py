"""`sdtheory train`: on-policy distillation and RL (OPSD, GKD, GRPO, PACED, TAID, SDPO, SRPO, AVSD,
ATESD) on a language model.

    sdtheory train --method opsd --model smollm2 --task chain_sum --steps 50 --out runs/opsd
    sdtheory train --method paced --kl-switch-step 20 --out runs/paced     # PACED, two-stage KL
    sdtheory train --method srpo --teacher-mode ema --out runs/srpo         # see docs/lm/methods.md
    sdtheory train --method grpo --model smollm2 --k 8 --out runs/grpo
    sdtheory train --method gkd --model smollm2-small --teacher-model smollm2 --gkd-lambda 0.5
    accelerate launch --num_processes 2 -m sdtheory.lm.train_cli --method opsd ...   # DDP

Every flag is a field of `sdtheory.lm.trainers.TrainConfig`. The run directory gets
`config.json`, `metrics.jsonl` (one JSON record per step and per evaluation), `eval.csv`
(step, accuracy) and `checkpoint/state.pt`; `--resume true` continues from that checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]


def build_parser(prog: str = "sdtheory train") -> argparse.ArgumentParser:
    """The argument parser: one `--kebab-case` flag with help per `TrainConfig` field."""
    from ..simio import parser_from_dataclass
    from .trainers import TrainConfig

    parser = parser_from_dataclass(TrainConfig, prog=prog, description=__doc__.split("\n\n")[0])
    parser.usage = f"{prog} [METHOD] [flags...]   (METHOD is the same as --method METHOD)"
    return parser


def _write_eval_csv(out: Path) -> Path:
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x]
    path = out / "eval.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "accuracy", "pass_at_k", "k", "n"])
        for r in recs:
            if r["kind"] == "eval":
                w.writerow([r["step"], r["accuracy"], r.get("pass_at_k"), r.get("k"), r.get("n")])
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, train, write `eval.csv`; returns the exit status."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from ..simio import config_from_args
    from .trainers import TrainConfig, Trainer

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):  # `sdtheory train opsd ...` == `--method opsd`
        argv = ["--method", argv[0], *argv[1:]]
    ns = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(TrainConfig, ns)
    except ValueError as e:
        print(f"sdtheory train: error: {e}", file=sys.stderr)
        return 2
    trainer = Trainer(cfg)
    trainer.train()
    if trainer.acc.is_main_process:
        path = _write_eval_csv(Path(cfg.out))
        print(f"wrote {Path(cfg.out) / 'metrics.jsonl'} and {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
