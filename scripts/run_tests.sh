#!/usr/bin/env bash
# The project's test command: sets up .venv on first use, then runs the test suite on CPU.
#   bash scripts/run_tests.sh                 # everything except the 'heavy' real-size checks
#   bash scripts/run_tests.sh -m heavy        # only the heavy ones; extra args go to pytest
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
# --durations: the slowest tests are named in every run (CI keeps the suite under ~20 minutes).
exec python -m pytest -q --durations=15 "$@"
