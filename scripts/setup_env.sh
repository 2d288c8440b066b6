#!/usr/bin/env bash
# Create (first use) or reuse the project's virtual environment in .venv and make sure the
# requirements are installed. Sourced by quick_start.sh and run_tests.sh; safe to run again.
#   VENV=/path/to/venv bash scripts/setup_env.sh      # use another location
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), "vggt-vla needs Python >= 3.10, found " + sys.version.split()[0]'
  echo "[setup] creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.vggt_vla_requirements"
if [ ! -f "$STAMP" ] || ! cmp -s "$ROOT/requirements.txt" "$STAMP"; then
  echo "[setup] installing requirements (first use or requirements.txt changed; the torch wheel is large)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements.txt"
  "$VENV/bin/python" -m pip install -q --no-deps -e "$ROOT"
  cp "$ROOT/requirements.txt" "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
