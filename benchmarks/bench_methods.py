"""Step-time breakdown of several methods at equal rollouts (generation, teacher, student update).
Prints JSON (and writes it with `--out`).

Every trainer is built on the same student with `lr = 0`, so every step samples *identical*
completions for every method (same seeds, same weights): what differs is each method's teacher
scoring and loss. Steps alternate between the methods so that machine-load drift hits all of
them alike; the first step of each method is a warm-up and is not counted. The divergence is
pinned (`--divergence`, `--beta`) so that methods and code versions compare the same loss.

    python benchmarks/bench_methods.py --methods paced sdpo opsd grpo --model smollm2 --threads 1

Uses only the flat `TrainConfig(...)` API, so the same script times an older checkout
(`PYTHONPATH=old/tree python benchmarks/bench_methods.py ...`) for before/after comparisons.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path


def time_methods(
    methods,
    *,
    model="tiny",
    task="chain_sum",
    steps=3,
    batch_problems=2,
    k=4,
    max_new_tokens=32,
    threads=0,
    flags=None,
):
    """Build one `lr = 0` trainer per method on one student and alternate `steps + 1` steps
    between them; returns `(trainers, records)`, the first (warm-up) step of each left out.
    `flags[method]` adds config fields for that method."""
    import torch

    from sdtheory.lm.trainers import TrainConfig, Trainer

    try:
        from sdtheory.lm.models import build_model
    except ImportError:  # checkouts before the methods package
        from sdtheory.lm.trainers import build_model

    if threads:
        torch.set_num_threads(threads)
    net, tok = build_model(model, hidden_size=64, num_layers=2, seed=0)
    tmp = Path(tempfile.mkdtemp(prefix="bench_methods_"))
    common = dict(
        model=model,
        task=task,
        n_train=64,
        n_eval=0,
        lr=0.0,
        steps=steps + 1,
        batch_problems=batch_problems,
        k=k,
        max_new_tokens=max_new_tokens,
        temperature=1.0,
        progress=False,
        threads=threads,
    )
    trainers = {
        m: Trainer(
            TrainConfig(method=m, out=str(tmp / m), **common, **(flags or {}).get(m, {})),
            model=net,
            tokenizer=tok,
        )
        for m in methods
    }
    recs = {m: [] for m in trainers}
    for i in range(steps + 1):
        for m, tr in trainers.items():
            r = tr.train_step()
            if i > 0:
                recs[m].append(r)
            print(
                f"[{m}] step {i}: generate {r['time_generate']:.2f}s teacher "
                f"{r['time_teacher']:.2f}s student {r['time_student']:.2f}s",
                file=sys.stderr,
            )
    return trainers, recs


def medians(recs: dict) -> dict:
    """Median generation, teacher, student and step time of each method's records."""
    out = {}
    for m, rs in recs.items():
        for part in ("time_generate", "time_teacher", "time_student", "time_step"):
            out[f"{m}_{part}"] = statistics.median(r[part] for r in rs)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument("--methods", nargs="+", default=["paced", "sdpo", "opsd", "grpo"])
    ap.add_argument("--model", default="tiny", help="tiny, smollm2, smollm2-small or a directory")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per method (after 1 warm-up)")
    ap.add_argument("--batch-problems", type=int, default=2, help="problems per step")
    ap.add_argument("--k", type=int, default=4, help="samples per problem")
    ap.add_argument("--max-new-tokens", type=int, default=32, help="completion length cap")
    ap.add_argument("--divergence", default="jsd", help="divergence of every distilling method")
    ap.add_argument("--beta", type=float, default=0.5, help="JSD beta")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--label", default="", help="a name for this run in the JSON")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = ap.parse_args(argv)

    import torch

    div = dict(divergence=args.divergence, beta=args.beta)
    _, recs = time_methods(
        args.methods,
        model=args.model,
        steps=args.steps,
        batch_problems=args.batch_problems,
        k=args.k,
        max_new_tokens=args.max_new_tokens,
        threads=args.threads,
        flags={m: div for m in args.methods if m != "grpo"},
    )
    res = {
        "label": args.label,
        "model": args.model,
        "batch_problems": args.batch_problems,
        "k": args.k,
        "max_new_tokens": args.max_new_tokens,
        "timed_steps": args.steps,
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "same_rollouts": len({tuple(r["completion_tokens"] for r in rs) for rs in recs.values()})
        == 1,
    }
    res.update(medians(recs))
    if "opsd" in recs and "grpo" in recs:
        res["ratio_opsd_over_grpo"] = res["opsd_time_step"] / res["grpo_time_step"]
    text = json.dumps(res, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return res


if __name__ == "__main__":
    main()
