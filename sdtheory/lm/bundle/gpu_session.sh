#!/usr/bin/env bash
# One GPU session on an air-gapped machine, in under 10 minutes of wall clock: the smoke test,
# the budgeted validation, and the losses benchmark, each with a timeout, results under OUT as
# they are made. Written for 15 minutes of device time in all, machine start-up included.
#
#   bash gpu_session.sh [OUT]              # the copy inside a bundle (`sdtheory bundle DIR`)
#   BUNDLE=DIR bash scripts/gpu_session.sh [OUT]     # from a checkout, the bundle in DIR
#
# OUT defaults to $OUT, else ./gpu_results. Environment: PYTHON (default python3), BUDGET_S
# (the validation's wall-clock budget from the start of run.py, conversion included; default
# 300), STEPS (the steps to run, default all: "device check smoke validate bench"; e.g.
# STEPS="device smoke" before the second model shard has arrived, then STEPS="check validate
# bench"; the order is always the one below). Steps and their time limits (590 s in all):
#   1. device    15 s  nvidia-smi and torch's view of the GPU          -> OUT/device.txt
#   2. check     15 s  run.py --check: every bundle file present and intact
#   3. smoke    150 s  run.py --smoke: every code path with the tiny model -> OUT/smoke/
#   4. validate 320 s  run.py --budget-s 300 (limit: BUDGET_S + 20): install, reassemble, convert, validate --scale gpu
#                                                                        -> OUT/validate/
#   5. bench     90 s  bench_losses.py --device cuda, T=4096 H=1024 V=151936 bf16,
#                      plain vs fused vs Liger fused linear JSD        -> OUT/bench_losses.json
# A step that fails or runs out of time is recorded and the next one still runs; every step's
# output goes to OUT/<step>.log as it is printed and OUT/session.jsonl gets one more line per step
# (exit status, seconds, limit). Exit status: the number of steps that did not succeed.
set -uo pipefail
BUNDLE="${BUNDLE:-$(cd "$(dirname "$0")" && pwd)}"
OUT="${1:-${OUT:-gpu_results}}"
PY="${PYTHON:-python3}"
BUDGET_S="${BUDGET_S:-300}"
STEPS=" ${STEPS:-device check smoke validate bench} "
for s in $STEPS; do
  case $s in device | check | smoke | validate | bench) ;;
  *) echo "gpu_session.sh: STEPS names an unknown step '$s'" >&2; exit 64 ;;
  esac
done
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 PYTHONUNBUFFERED=1
if [[ ! -f "$BUNDLE/run.py" ]]; then
  echo "gpu_session.sh: no run.py in $BUNDLE (set BUNDLE to the bundle directory)" >&2
  exit 64
fi
failed=0
step() {  # step NAME LIMIT_S COMMAND...
  local name=$1 limit=$2
  shift 2
  [[ $STEPS == *" $name "* ]] || return 0
  local t0 t1 rc
  t0=$(date +%s.%N)
  echo "[session] $name (limit ${limit}s): $*"
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
  printf '{"step": "%s", "exit": %d, "seconds": %s, "limit_s": %d, "timed_out": %s}\n' \
    "$name" "$rc" "$secs" "$limit" "$([[ $rc == 124 || $rc == 137 ]] && echo true || echo false)" \
    >>"$OUT/session.jsonl"
  echo "[session] $name: exit $rc after ${secs}s"
  tail -n 3 "$OUT/$name.log"
  [[ $rc == 0 ]] || failed=$((failed + 1))
}

touch "$OUT/session.jsonl"  # appended to: a session in two calls (STEPS) keeps both halves
step device 15 bash -c "nvidia-smi; $PY -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))'"
cp "$OUT/device.log" "$OUT/device.txt" 2>/dev/null
step check 15 "$PY" "$BUNDLE/run.py" --check
step smoke 150 "$PY" "$BUNDLE/run.py" --out "$OUT/smoke" --smoke
step validate "$((${BUDGET_S%.*} + 20))" "$PY" "$BUNDLE/run.py" --out "$OUT/validate" --budget-s "$BUDGET_S"
ENV_DIR="$(ls -d "$BUNDLE"/cache/env-* 2>/dev/null | head -n 1)"
if [[ $STEPS != *" bench "* ]]; then
  :
elif [[ -n "$ENV_DIR" ]]; then
  step bench 90 env PYTHONPATH="$ENV_DIR/src:$ENV_DIR/lib" "$PY" \
    "$ENV_DIR/src/benchmarks/bench_losses.py" --device cuda --T 4096 --H 1024 --V 151936 \
    --dtype bfloat16 --methods plain fused liger --reps 3 --out "$OUT/bench_losses.json"
else
  echo "[session] bench: skipped (run.py installed nothing: see check.log)"
  failed=$((failed + 1))
fi
echo "[session] done: $failed step(s) did not succeed; results in $OUT"
exit "$failed"
