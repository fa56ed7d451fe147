#!/usr/bin/env bash
# The GPU session script from a checkout: BUNDLE=DIR bash scripts/gpu_session.sh [OUT]
# (DIR: a bundle made by `sdtheory bundle DIR`, which carries its own copy of this script as
# DIR/gpu_session.sh). The script itself, with its steps and time limits:
# sdtheory/lm/bundle/gpu_session.sh.
set -euo pipefail
: "${BUNDLE:?set BUNDLE to the bundle directory (sdtheory bundle DIR)}"
exec bash "$(dirname "$0")/../sdtheory/lm/bundle/gpu_session.sh" "$@"
