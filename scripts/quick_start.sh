#!/usr/bin/env bash
# The main job, from a fresh clone: set up .venv on first use, then run the given config.
#   bash scripts/quick_start.sh configs/train_simple.yaml
# Today this builds the model and runs it on a dummy batch (scripts/test_model.py); training on
# LeRobot data replaces it when the training pipeline lands.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG="${1:-configs/train_simple.yaml}"
shift || true
source "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
exec python scripts/test_model.py --config "$CONFIG" "$@"
