"""Step-time breakdown of OPSD vs GRPO at equal rollouts: generation, teacher scoring, student
forward+backward. Prints JSON (and writes it with `--out`).

Both trainers are built on the same student and the same problems with `lr = 0`, so every step
samples *identical* completions for both methods (same seeds, same weights): the only
difference is OPSD's teacher forward pass (privileged prompt, no gradient) and its
full-vocabulary JSD versus GRPO's sampled-token policy-gradient loss. Steps alternate between
the two methods so that machine-load drift hits both equally; the first step of each is a
warm-up and is not counted. Goal (issue 8): OPSD step <= 1.3x GRPO step.

    python benchmarks/bench_opsd_vs_grpo.py                       # tiny model, seconds
    python benchmarks/bench_opsd_vs_grpo.py --model smollm2 --steps 3 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument("--model", default="tiny", help="tiny, smollm2, smollm2-small or a directory")
    ap.add_argument("--task", default="chain_sum", help="task name")
    ap.add_argument("--steps", type=int, default=4, help="timed steps per method (after 1 warm-up)")
    ap.add_argument("--batch-problems", type=int, default=4, help="problems per step")
    ap.add_argument("--k", type=int, default=4, help="samples per problem")
    ap.add_argument("--max-new-tokens", type=int, default=32, help="completion length cap")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument(
        "--eval-problems",
        type=int,
        default=0,
        help="also report the untrained model's held-out accuracy on N problems "
        "(greedy, and avg@4 at temperature 1)",
    )
    ap.add_argument(
        "--eval-max-new-tokens",
        type=int,
        default=48,
        help="completion cap for the accuracy measurement",
    )
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = ap.parse_args(argv)

    import torch
    from bench_methods import medians, time_methods

    trainers, recs = time_methods(
        ["opsd", "grpo"],
        model=args.model,
        task=args.task,
        steps=args.steps,
        batch_problems=args.batch_problems,
        k=args.k,
        max_new_tokens=args.max_new_tokens,
        threads=args.threads,
    )
    same = all(
        a["completion_tokens"] == b["completion_tokens"] and a["reward"] == b["reward"]
        for a, b in zip(recs["opsd"], recs["grpo"], strict=True)
    )
    res = {
        "model": args.model,
        "task": args.task,
        "batch_problems": args.batch_problems,
        "k": args.k,
        "max_new_tokens": args.max_new_tokens,
        "timed_steps": args.steps,
        "threads": torch.get_num_threads(),
        "identical_rollouts": same,
    }
    res.update(medians(recs))
    for m, rs in recs.items():
        res[f"{m}_completion_tokens"] = statistics.mean(r["completion_tokens"] for r in rs)
    res["ratio_opsd_over_grpo"] = res["opsd_time_step"] / res["grpo_time_step"]
    res["goal_met"] = res["ratio_opsd_over_grpo"] <= 1.3
    if args.eval_problems:
        import time

        ev = trainers["grpo"]
        held_out = ev.task.split(64, args.eval_problems, seed=0)[1]
        for name, temp, k in (("greedy", 0.0, 1), ("avg@4_T1", 1.0, 4)):
            ev.cfg = ev.cfg.replace(
                eval_temperature=temp, eval_k=k, max_new_tokens=args.eval_max_new_tokens
            )
            t0 = time.perf_counter()
            rec = ev.evaluate(held_out)
            res[f"base_accuracy_{name}"] = rec["accuracy"]
            res[f"base_accuracy_{name}_seconds"] = time.perf_counter() - t0
            print(
                f"base accuracy {name}: {rec['accuracy']:.3f} ({rec['example']!r})", file=sys.stderr
            )
        res["base_accuracy_problems"] = args.eval_problems
    text = json.dumps(res, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return res


if __name__ == "__main__":
    main()
