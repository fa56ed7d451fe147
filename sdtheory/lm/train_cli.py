"""`sdtheory train`: on-policy distillation and RL (OPSD, GKD, GRPO, PACED, TAID, SDPO, SRPO, AVSD,
ATESD, SD-Zero, pi-Distill, PI-OPSD, EffOPD, UniSD, VPD; multi-turn tool use: SOD, Skill-SD) and
supervised self-distillation on worked solutions (CurioSFT, PS-KD) on a language model;
SmolLM2-135M-Instruct by default.

    sdtheory train opsd --task chain_sum --steps 50 --out runs/opsd
    sdtheory train paced --kl-switch-step 20 --out runs/paced     # PACED, two-stage KL
    sdtheory train srpo --teacher-mode ema --out runs/srpo         # see docs/lm/methods.md
    sdtheory train grpo --k 8 --out runs/grpo
    sdtheory train sod --env calculator --teacher-model DIR        # calculator tool, multi-turn
    sdtheory train curiosft --distill-weight 0                     # plain SFT (same loop)
    sdtheory train gkd --model smollm2-small --teacher-model smollm2 --gkd-lambda 0.5
    sdtheory train --config run.yaml --steps 100                  # a run in one file; flags win
    sdtheory train opsd --model tiny --steps 4                     # tiny random model (tests)
    accelerate launch --num_processes 2 -m sdtheory.lm.train_cli opsd ...   # data parallel

Flags are the fields of `sdtheory.lm.config` (run, teacher, loss) and of the chosen method's
options, parsed with `transformers.HfArgumentParser`; `--help` groups them. `--config FILE`
reads flat `field: value` pairs from YAML (or JSON, e.g. a run's `config.json`). The run
directory gets `config.json` (the resolved config), `prompts.txt`, `metrics.jsonl` (one JSON
record per step and per evaluation), `eval.csv` (step, accuracy) and `checkpoint/state.pt`;
`--resume true` continues from that checkpoint. Bad input ends with one `sdtheory train: error:`
line (exit status 2); a non-finite loss or gradient stops the run naming the step (status 1).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "config_from_argv", "main"]


def _config_classes() -> list[type]:
    from .config import AdapterConfig, LossConfig, RunConfig, TeacherConfig
    from .methods import option_configs

    return [RunConfig, TeacherConfig, LossConfig, AdapterConfig, *option_configs()]


def build_parser(prog: str = "sdtheory train"):
    """The parser (`transformers.HfArgumentParser`): one `--kebab-case` flag with help per
    config field, one argument group per config, plus `--config FILE`."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(_config_classes(), prog=prog, description=__doc__.split("\n\n")[0])
    parser.usage = f"{prog} [METHOD] [--config FILE] [flags...]   (METHOD = --method METHOD)"
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="YAML (or JSON) file of flat `field: value` pairs; flags override it",
    )
    return parser


def _file_defaults(path: str, known: set[str]) -> dict:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"config: cannot read {path!r}: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config: {path!r} must hold a mapping of field: value, got {data!r:.80}")
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"config: unknown fields {unknown} in {path!r}")
    return data


def config_from_argv(argv: Sequence[str]):
    """Parse `sdtheory train` arguments into a `TrainConfig` (raises `ValueError`)."""
    from .config import TrainConfig
    from .methods import get_method

    argv = list(argv)
    if argv and not argv[0].startswith("-"):  # `sdtheory train opsd ...` == `--method opsd`
        argv = ["--method", argv[0], *argv[1:]]
    parser = build_parser()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    path = pre.parse_known_args(argv)[0].config
    classes = _config_classes()
    if path:
        known = {f.name for c in classes for f in dataclasses.fields(c)}
        parser.set_defaults(**_file_defaults(path, known))
    *objs, rest = parser.parse_args_into_dataclasses(
        argv, return_remaining_strings=True, look_for_args_file=False
    )
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    parts = {type(o): o for o in objs if dataclasses.is_dataclass(o)}
    run, teacher, loss, lora = (parts[c] for c in classes[:4])
    method = get_method(run.method)
    for c in classes[4:]:  # options of other methods must stay at their defaults
        if c is not method.Config and parts[c] != c():
            bad = [
                f.name
                for f in dataclasses.fields(c)
                if getattr(parts[c], f.name) != getattr(c(), f.name)
            ]
            flags = ", ".join("--" + b.replace("_", "-") for b in bad)
            raise ValueError(f"{flags}: not an option of {method.name} ({c._argument_group_name})")
    options = parts.get(method.Config) if method.Config else None
    return TrainConfig(run=run, teacher=teacher, loss=loss, options=options, lora=lora)


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
    from .trainers import NonFiniteError, Trainer

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg = config_from_argv(argv)
        trainer = Trainer(cfg)
    except (ValueError, FileNotFoundError) as e:
        print(f"sdtheory train: error: {e}", file=sys.stderr)
        return 2
    try:
        trainer.train()
    except NonFiniteError as e:
        print(f"sdtheory train: error: {e}", file=sys.stderr)
        return 1
    if trainer.acc.is_main_process:
        path = _write_eval_csv(Path(cfg.run.out))
        print(f"wrote {Path(cfg.run.out) / 'metrics.jsonl'} and {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
