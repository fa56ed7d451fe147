"""`sdtheory export RUN_DIR OUT`: a run's trained student as a plain Hugging Face checkpoint.

    sdtheory export runs/opsd-lora runs/opsd-lora/merged
    python -c "from transformers import AutoModelForCausalLM as M; M.from_pretrained('runs/opsd-lora/merged')"

The student is rebuilt from the run's `config.json` (the same base model, or the same seeded
initialisation for `tiny`/`smollm2-small`), the checkpoint's weights are loaded, and LoRA
adapters are merged into the base weights ($W \\leftarrow W + \\tfrac{\\alpha}{r} B A$, peft's
`merge_and_unload`), so the result has no adapters and needs no peft. The directory gets
`config.json`, `model.safetensors`, the tokenizer (with its chat template) and `SOURCE`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["export_run", "load_student", "main"]


def load_student(run_dir: str | os.PathLike):
    """The trained student of a run directory and its tokenizer: `(model, tokenizer, config)`,
    the model as trained (a `PeftModel` for LoRA runs), in eval mode on the CPU."""
    import torch

    from . import lora
    from .config import TrainConfig
    from .models import build_model

    run_dir = Path(run_dir)
    state_path = run_dir / "checkpoint" / "state.pt"
    if not state_path.is_file():
        raise FileNotFoundError(f"run_dir: no checkpoint at {state_path}")
    state = torch.load(state_path, map_location="cpu", weights_only=False)
    cfg = TrainConfig(**state["config"])
    r = cfg.run
    model, tok = build_model(
        r.model, hidden_size=r.hidden_size, num_layers=r.num_layers, seed=r.seed
    )
    if cfg.lora.lora_rank:
        model = lora.apply_lora(model, cfg.lora, seed=r.seed)
        lora.load_adapter_state(model, state["model"])
    else:
        model.load_state_dict(state["model"])
    model.eval()
    return model, tok, cfg


def export_run(run_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the run's student, adapters merged, as a `from_pretrained` directory at `out`."""
    from . import lora

    model, tok, cfg = load_student(run_dir)
    if lora.is_lora(model):
        model = model.merge_and_unload()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "SOURCE").write_text(
        f"exported from {Path(run_dir).resolve()} (method {cfg.method}, model {cfg.run.model}, "
        f"lora_rank {cfg.lora.lora_rank}; adapters merged)\n"
    )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    p = argparse.ArgumentParser(
        prog="sdtheory export",
        description="Write a run's trained student (LoRA adapters merged) as a Hugging Face "
        "checkpoint directory that from_pretrained loads.",
    )
    p.add_argument("run_dir", help="a run directory of `sdtheory train` (with checkpoint/)")
    p.add_argument("out", help="output directory")
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        path = export_run(args.run_dir, args.out)
    except (ValueError, FileNotFoundError) as e:
        print(f"sdtheory export: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
