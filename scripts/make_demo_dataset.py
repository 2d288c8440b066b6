"""Write the embedded demo dataset (LeRobot v3.0, procedural language-conditioned tabletop).

    python scripts/make_demo_dataset.py --out data/demo
    python scripts/make_demo_dataset.py --out data/demo_video --video --episodes 100
    python scripts/dataset_stats.py --dataset data/demo

Train on it with data.dataset_root=data/demo and score the policy closed loop in the demo env
(scripts/eval.py --sim demo). Writing it: vggt_vla/recording/demo_dataset.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vggt_vla.recording.demo_dataset import (DEFAULT_ACTION_NOISE, DEFAULT_ACTION_NOISE_CORRELATION,  # noqa: E402
                                             DEFAULT_EPISODES, make_demo_dataset)
from vggt_vla.output_paths import OutputPathError, check_output_dir  # noqa: E402
from vggt_vla.sim.demo_env import TASK_TYPES  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="dataset root to create")
    parser.add_argument("--episodes", type=int, default=DEFAULT_EPISODES)
    parser.add_argument("--seed", type=int, default=0, help="episode i uses env seed SEED + i")
    parser.add_argument("--video", action="store_true", help="store cameras as mp4 (AV1) instead of PNG")
    parser.add_argument("--codec", default=None, help="video encoder (default: the AV1 encoder PyAV has)")
    parser.add_argument("--action_noise", type=float, default=DEFAULT_ACTION_NOISE,
                        help="std of the noise added to executed actions (the expert's are recorded)")
    parser.add_argument("--action_noise_correlation", type=float, default=DEFAULT_ACTION_NOISE_CORRELATION,
                        help="how much of the last step's noise carries over (0: independent per step)")
    parser.add_argument("--objects", type=int, default=3, help="objects per scene")
    parser.add_argument("--tasks", nargs="+", default=list(TASK_TYPES), choices=TASK_TYPES)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    if args.episodes < 1:  # before anything is created
        print(f"error: --episodes {args.episodes}: a dataset needs at least 1 episode", file=sys.stderr)
        return 2
    try:
        check_output_dir(args.out, "--out")
    except OutputPathError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.time()
    try:
        root = make_demo_dataset(args.out, num_episodes=args.episodes, seed=args.seed, video=args.video,
                                 video_codec=args.codec, action_noise=args.action_noise,
                                 action_noise_correlation=args.action_noise_correlation,
                                 num_objects=args.objects,
                                 task_types=args.tasks, overwrite=args.overwrite)
    except FileExistsError:
        print(f"error: {args.out} exists and is not empty; pass --overwrite to replace it", file=sys.stderr)
        return 2
    print(f"wrote {root} in {time.time() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
