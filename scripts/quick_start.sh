#!/usr/bin/env bash
# The main job, from a fresh clone: set up .venv on first use, inspect the model, train, evaluate.
#
#   bash scripts/quick_start.sh                               # the embedded demo, offline, CPU (<= 12 min)
#     (a fresh clone on a 2-core AMD EPYC, AVX2 kernels: 11 min 48 s with set-up, 95.5%;
#      docs/experiments/2026-12-06-demo-on-avx2.md)
#   bash scripts/quick_start.sh configs/train_libero_cpu.yaml # LIBERO from scripted demos, offline (<= 3 h)
#   bash scripts/quick_start.sh configs/train_simple.yaml     # LIBERO from the hub (needs the hub)
#   bash scripts/quick_start.sh configs/train_demo.yaml --max_steps 300   # extra args go to train_vla.py
#   bash scripts/quick_start.sh configs/train_libero_cpu_geometry.yaml    # + recorded geometry as a loss
#
# Without a config it writes the demo dataset (data/demo), trains configs/train_demo.yaml and
# reports offline L1 and the closed-loop success rate on the demo environment. A config whose
# sim: section asks for demonstrations (sim.demos_per_task > 0) gets the simulator installed if
# missing and its demonstrations generated (resuming a partial generation; sim.demo_geometry records
# depth and camera parameters too); a config that also aligns to a geometry teacher missing on disk
# gets it trained on those demonstrations; a config with a sim.name is scored closed loop after
# training (and, with sim.robustness_suites or sim.eval_camera_shift, under perturbation). Every stage
# prints its wall time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG="${1:-configs/train_demo.yaml}"
shift || true
source "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
export HF_HUB_DISABLE_PROGRESS_BARS=1 TOKENIZERS_PARALLELISM=false

# The config as train_vla.py will resolve it, with the same extra arguments (--dataset_root,
# --exp_name, --set ...), so the data check, resume and evaluation look where training writes.
CONFIG_VARS=$(python - "$CONFIG" "$@" <<'PY'
import shlex
import sys
sys.path.insert(0, "scripts")
from train_vla import build_parser, overrides_from_args
from vggt_vla.config import load_config_or_report
parser = build_parser()
parser.prog = "quick_start.sh"
args, _ = parser.parse_known_args(sys.argv[2:])
c = load_config_or_report(sys.argv[1], overrides_from_args(args))
if c is None:
    sys.exit(2)
s = c.sim
sim_args = (["--suite", s.suite] if s.suite else []) + (["--tasks", ",".join(map(str, s.tasks))] if s.tasks else [])
sim_args += ["--workers", str(s.workers)]
eval_args = sim_args + (["--max_steps", str(s.eval_max_steps)] if s.eval_max_steps else [])
gen_args = ["--episodes_per_task", str(s.demos_per_task), "--action_noise", str(s.demo_action_noise),
            "--action_noise_correlation", str(s.demo_action_noise_correlation)]
gen_args += ["--layout_exchange", str(s.demo_layout_exchange)] if s.demo_layout_exchange else []
gen_args += ["--redraw_fixtures"] if s.demo_redraw_fixtures else []
gen_args += (["--image_size", str(s.camera_size)] if s.camera_size else []) + (["--fast_render"] if s.fast_render else [])
gen_args += ["--max_mesh_faces", str(s.max_mesh_faces)] if s.max_mesh_faces else []
gen_args += ["--geometry"] if s.demo_geometry else []
values = {"LOG_DIR": c.train.log_dir, "EXP_NAME": c.train.exp_name, "DATA_ROOT": c.data.dataset_root or "",
          "DATA_REPO": c.data.dataset_repo or "", "SIM": s.name or "", "DEMOS": s.demos_per_task,
          "EVAL_EPISODES": s.eval_episodes_per_task, "ROBUST_EPISODES": s.robustness_episodes_per_task,
          "CAMERA_SHIFT": ",".join(f"{v:g}" for v in s.eval_camera_shift or []),
          # A geometry teacher trained from this config's own demonstrations (see below).
          "TEACHER": c.model.geometry_alignment.checkpoint if c.model.geometry_alignment.enabled and s.demo_geometry else ""}
for name, value in values.items():
    print(f"{name}={shlex.quote(str(value))}")
for name, value in (("SIM_ARGS", sim_args), ("EVAL_ARGS", eval_args), ("GEN_ARGS", gen_args),
                    ("ROBUST_SUITES", s.robustness_suites)):
    print(f"{name}=({' '.join(shlex.quote(v) for v in value)})")
PY
) || exit 2  # the config error is printed above
eval "$CONFIG_VARS"
RUN_DIR="$LOG_DIR/$EXP_NAME"
IS_DEMO=0
if [ "$(basename "$CONFIG")" = "train_demo.yaml" ] || [ "$CONFIG" = "demo" ]; then IS_DEMO=1; fi
stage_start() { STAGE_T0=$SECONDS; echo; echo "== $1   [${SECONDS}s since start]"; }
stage_end() { echo "-- $1 took $((SECONDS - STAGE_T0)) s"; }

stage_start "1/4 model: $CONFIG"
python scripts/test_model.py --config "$CONFIG" --repeats 1
stage_end "model report"

stage_start "2/4 data"
if [ "$DEMOS" -gt 0 ]; then
  # Scripted demonstrations in the simulator: install it if missing, then generate (or resume).
  if ! python -c 'import libero.libero, robosuite, mujoco' 2>/dev/null; then
    echo "installing the LIBERO simulator (requirements-sim.txt)"
    python -m pip install -q -r requirements-sim.txt
  fi
  if [ ! -e /dev/nvidia0 ] && ! ldconfig -p 2>/dev/null | grep -q libOSMesa; then  # CPU rendering needs Mesa
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing Mesa for CPU rendering (apt-get)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6 libosmesa6-dev libgl1 libegl1 >/dev/null
    else
      echo "warning: no OSMesa library found; as root run: apt-get install -y libosmesa6 libosmesa6-dev libgl1 libegl1" >&2
    fi
  fi
  python scripts/generate_libero_demos.py --out "$(dirname "$DATA_ROOT")" "${GEN_ARGS[@]}" "${SIM_ARGS[@]}"
elif [ "$IS_DEMO" = 1 ]; then
  # The recipe trains on a dataset written with vggt_vla/recording/demo_dataset.py's settings
  # (episodes, action noise). Another one (an older default, or one written by hand) is neither
  # trained on nor replaced: we stop.
  MISMATCH=$(python -c 'import sys; from vggt_vla.recording.demo_dataset import demo_recipe_mismatch as m; print(m(sys.argv[1]) or "")' "$DATA_ROOT")
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
elif [ -z "$DATA_ROOT" ]; then
  if ! python -c 'from vggt_vla.models.pretrained import hub_reachable; raise SystemExit(0 if hub_reachable() else 1)'; then
    cat >&2 <<MSG
The Hugging Face hub is not reachable, so the dataset '$DATA_REPO' cannot be downloaded.
Offline options:
  * the embedded demo:      bash scripts/quick_start.sh
  * LIBERO, offline:        bash scripts/quick_start.sh configs/train_libero_cpu.yaml
    (its demonstrations are generated in the LIBERO simulator by the scripted expert)
  * a local LeRobot copy:   bash scripts/quick_start.sh $CONFIG --dataset_root /path/to/dataset
    (download it elsewhere: huggingface-cli download --repo-type dataset $DATA_REPO --local-dir DIR)
MSG
    exit 2
  fi
fi
python scripts/dataset_stats.py --dataset "${DATA_ROOT:-$DATA_REPO}"
if [ -n "$TEACHER" ] && [ ! -e "$TEACHER" ]; then
  # A config that records geometry with its demonstrations and aligns to a teacher that does not
  # exist yet: train the small VGGT on those demonstrations first (scripts/train_geometry_model.py).
  echo "training the geometry teacher $TEACHER on $DATA_ROOT"
  python scripts/train_geometry_model.py --dataset "$DATA_ROOT" --out "$TEACHER"
fi

stage_end "data"

stage_start "3/4 train -> $RUN_DIR"
RESUME=()
if [ -f "$RUN_DIR/checkpoints/last.pt" ]; then
  echo "found $RUN_DIR/checkpoints/last.pt: resuming (delete $RUN_DIR to start over)"
  RESUME=(--resume "$RUN_DIR")
fi
python scripts/train_vla.py --config "$CONFIG" "${RESUME[@]}" "$@"
stage_end "training"

stage_start "4/4 evaluate"
python scripts/eval.py --checkpoint "$RUN_DIR"
python scripts/eval.py --checkpoint "$RUN_DIR" --probe_modalities
if [ -n "$SIM" ]; then
  # Closed loop on seeds and scenes the data never used (the demo: seeds 100000..; LIBERO: the
  # benchmark's initial states, the demos coming from sampled scenes), rendered like the data.
  python scripts/eval.py --checkpoint "$RUN_DIR" --sim "$SIM" --episodes "$EVAL_EPISODES" \
    "${EVAL_ARGS[@]}" --videos "$RUN_DIR/videos" --videos_per_task 1
  # Robustness (sim.robustness_suites, sim.eval_camera_shift): the same tasks with objects moved or
  # replaced, instructions rephrased, or the camera moved. Each writes its own eval_<suite>.json.
  for SUITE in "${ROBUST_SUITES[@]}"; do
    python scripts/eval.py --checkpoint "$RUN_DIR" --sim "$SIM" "${EVAL_ARGS[@]}" --suite "$SUITE" \
      --episodes "$ROBUST_EPISODES"
  done
  if [ -n "$CAMERA_SHIFT" ]; then
    python scripts/eval.py --checkpoint "$RUN_DIR" --sim "$SIM" --episodes "$EVAL_EPISODES" "${EVAL_ARGS[@]}" \
      --camera_shift "$CAMERA_SHIFT"
  fi
fi
stage_end "evaluation"
echo
echo "Done in $((SECONDS / 60)) min $((SECONDS % 60)) s (set-up included)."
echo "TensorBoard:  tensorboard --logdir $LOG_DIR"
echo "Checkpoints:  $RUN_DIR/checkpoints/{best,last}.pt"
echo "Results:      $RUN_DIR/eval_*.json"
