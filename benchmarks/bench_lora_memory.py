"""Memory of an OPSD run with a fixed self-teacher: full fine-tuning against LoRA, side by side.
Prints JSON (and writes it with `--out`).

Each variant runs in its own process (one `Trainer`, one optimiser step) and reports:

* `weights_mib`: distinct parameter storage of student and teacher together (full fine-tuning
  keeps a frozen copy of the student for the fixed teacher; LoRA keeps none: the teacher is the
  same network with its adapters off);
* `optimizer_mib` and `grads_mib`: AdamW state and the gradients between backward and the
  optimiser step (of the trainable parameters only);
* `peak_rss_mib`: the process's peak resident memory (includes Python, torch, the tokenizer and
  activations; noisy on a shared machine, so it is a side-by-side ratio, not a constant).

    python benchmarks/bench_lora_memory.py --model smollm2 --lora-rank 8 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

MIB = 2**20


def _bytes(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total


def measure(model: str, lora_rank: int, lora_targets: str, threads: int) -> dict:
    """One optimiser step of OPSD (fixed self-teacher) in this process; memory by kind."""
    import torch

    from sdtheory.lm.trainers import TrainConfig, Trainer

    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(
            method="opsd",
            model=model,
            steps=1,
            batch_problems=2,
            k=2,
            max_new_tokens=8,
            n_train=8,
            n_eval=0,
            progress=False,
            threads=threads,
            out=out,
            lora_rank=lora_rank,
            lora_targets=lora_targets,
        )
        tr = Trainer(cfg)
        tr.train_step()
        params = [*tr.unwrapped.parameters(), *tr.teacher.model.parameters()]
        if tr.teacher.lora:
            params += list(tr.teacher.ema_adapters.values())
        opt = [v for s in tr.opt.state.values() for v in s.values() if torch.is_tensor(v)]
        trainable = [p for p in tr.unwrapped.parameters() if p.requires_grad]
        return {
            "lora_rank": lora_rank,
            "trainable_params": sum(p.numel() for p in trainable),
            "weights_mib": _bytes(params) / MIB,
            "optimizer_mib": _bytes(opt) / MIB,
            "grads_mib": sum(p.numel() * p.element_size() for p in trainable) / MIB,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2")
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--lora-targets", default="all-linear")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child is not None:  # one variant, in its own process
        print(json.dumps(measure(a.model, a.child, a.lora_targets, a.threads)))
        return {}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    rows = {}
    for name, rank in (("full", 0), ("lora", a.lora_rank)):
        cmd = [sys.executable, __file__, "--model", a.model, "--lora-targets", a.lora_targets]
        cmd += ["--threads", str(a.threads), "--child", str(rank)]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        rows[name] = json.loads(res.stdout.strip().splitlines()[-1])
    f, lo = rows["full"], rows["lora"]
    total = lambda r: r["weights_mib"] + r["optimizer_mib"] + r["grads_mib"]
    result = {
        "model": a.model,
        "lora_targets": a.lora_targets,
        **rows,
        "saved_weights_mib": f["weights_mib"] - lo["weights_mib"],
        "saved_weights_optimizer_grads_mib": total(f) - total(lo),
        "ratio_weights_optimizer_grads": total(lo) / total(f),
        "ratio_peak_rss": lo["peak_rss_mib"] / f["peak_rss_mib"],
    }
    print(json.dumps(result, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
