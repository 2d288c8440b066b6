#!/usr/bin/env bash
# The main job, from a fresh clone: set up .venv on first use, inspect the model, train, evaluate.
#
#   bash scripts/quick_start.sh                               # the embedded demo, offline, CPU (<= 12 min)
#   bash scripts/quick_start.sh configs/train_simple.yaml     # LIBERO from the hub (needs the hub)
#   bash scripts/quick_start.sh configs/train_demo.yaml --max_steps 300   # extra args go to train_vla.py
#
# Without a config it writes the demo dataset (data/demo), trains configs/train_demo.yaml and
# reports offline L1 and the closed-loop success rate on the demo environment.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG="${1:-configs/train_demo.yaml}"
shift || true
source "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
export HF_HUB_DISABLE_PROGRESS_BARS=1 TOKENIZERS_PARALLELISM=false

# The config as train_vla.py will resolve it, with the same extra arguments (--dataset_root,
# --exp_name, --set ...), so the data check, resume and evaluation look where training writes.
read -r LOG_DIR EXP_NAME DATA_ROOT DATA_REPO < <(python - "$CONFIG" "$@" <<'PY'
import sys
sys.path.insert(0, "scripts")
from train_vla import build_parser, overrides_from_args
from vggt_vla.config import load_config_or_report
parser = build_parser()
parser.prog = "quick_start.sh"
args, _ = parser.parse_known_args(sys.argv[2:])
c = load_config_or_report(sys.argv[1], overrides_from_args(args))
if c is not None:
    print(c.train.log_dir, c.train.exp_name, c.data.dataset_root or "-", c.data.dataset_repo or "-")
PY
) || true
if [ -z "${LOG_DIR:-}" ]; then exit 2; fi  # the config error is printed above
RUN_DIR="$LOG_DIR/$EXP_NAME"
IS_DEMO=0
if [ "$(basename "$CONFIG")" = "train_demo.yaml" ] || [ "$CONFIG" = "demo" ]; then IS_DEMO=1; fi

echo "== 1/4 model: $CONFIG   [${SECONDS}s since start]"
python scripts/test_model.py --config "$CONFIG" --repeats 1

echo "== 2/4 data   [${SECONDS}s]"
if [ "$IS_DEMO" = 1 ]; then
  # The recipe trains on a dataset written with vggt_vla.recording's demo settings (episodes,
  # noise). Another one (an older default, or one written by hand) is neither trained on nor
  # replaced: we stop.
  MISMATCH=$(python -c 'import sys; from vggt_vla.recording import demo_recipe_mismatch as m; print(m(sys.argv[1]) or "")' "$DATA_ROOT")
  if [ -z "$MISMATCH" ]; then
    echo "using the existing demo dataset in $DATA_ROOT"
  elif [ "$MISMATCH" = missing ]; then
    python scripts/make_demo_dataset.py --out "$DATA_ROOT"
  else
    cat >&2 <<MSG
error: $DATA_ROOT is not the demo recipe's dataset: $MISMATCH. Either
  * rewrite it:    python scripts/make_demo_dataset.py --out $DATA_ROOT --overwrite
  * or keep it:    move it elsewhere and run quick_start.sh again (it writes a new one), or
                   train on it directly: python scripts/train_vla.py --config demo --dataset_root DIR
MSG
    exit 2
  fi
elif [ "$DATA_ROOT" = "-" ]; then
  if ! python -c 'from vggt_vla.models.pretrained import hub_reachable; raise SystemExit(0 if hub_reachable() else 1)'; then
    cat >&2 <<MSG
The Hugging Face hub is not reachable, so the dataset '$DATA_REPO' cannot be downloaded.
Offline options:
  * the embedded demo:      bash scripts/quick_start.sh
  * a local LeRobot copy:   bash scripts/quick_start.sh $CONFIG --dataset_root /path/to/dataset
    (download it elsewhere: huggingface-cli download --repo-type dataset $DATA_REPO --local-dir DIR)
MSG
    exit 2
  fi
fi
python scripts/dataset_stats.py --dataset "$( [ "$DATA_ROOT" != "-" ] && echo "$DATA_ROOT" || echo "$DATA_REPO" )"

echo "== 3/4 train -> $RUN_DIR   [${SECONDS}s]"
RESUME=()
if [ -f "$RUN_DIR/checkpoints/last.pt" ]; then
  echo "found $RUN_DIR/checkpoints/last.pt: resuming (delete $RUN_DIR to start over)"
  RESUME=(--resume "$RUN_DIR")
fi
python scripts/train_vla.py --config "$CONFIG" "${RESUME[@]}" "$@"

echo "== 4/4 evaluate   [${SECONDS}s]"
python scripts/eval.py --checkpoint "$RUN_DIR"
python scripts/eval.py --checkpoint "$RUN_DIR" --probe_modalities
if [ "$IS_DEMO" = 1 ]; then
  # 200 episodes on seeds 100000.. (the dataset's are 0..episodes-1): a 95% interval of about +-4 points.
  python scripts/eval.py --checkpoint "$RUN_DIR" --sim demo --episodes 200
fi
echo
echo "Done in $((SECONDS / 60)) min $((SECONDS % 60)) s (set-up included)."
echo "TensorBoard:  tensorboard --logdir $LOG_DIR"
echo "Checkpoints:  $RUN_DIR/checkpoints/{best,last}.pt"
echo "Results:      $RUN_DIR/eval_*.json"
