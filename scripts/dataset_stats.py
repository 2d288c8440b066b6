"""Print what a LeRobot dataset holds: version, episodes, frames, fps, tasks, features, statistics.

    python scripts/dataset_stats.py --dataset lerobot/libero_spatial_image
    python scripts/dataset_stats.py --dataset data/demo --task "red cube" --episodes 0:50
    python scripts/dataset_stats.py --dataset data/demo --features observation.state action --compute
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vggt_vla.data.meta import DatasetError  # noqa: E402
from vggt_vla.data.dataset_report import parse_episodes, summarize  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="hub repo id or local dataset root")
    parser.add_argument("--revision", default=None, help="hub revision (branch, tag, commit)")
    parser.add_argument("--episodes", default=None, help="episode filter: '0:10' (half-open), '3,5', '0:3,7'")
    parser.add_argument("--task", default=None, help="keep episodes whose task contains this text")
    parser.add_argument("--features", nargs="+", default=None, help="features whose statistics to print")
    parser.add_argument("--compute", action="store_true",
                        help="compute numeric statistics from the data instead of reading the metadata")
    args = parser.parse_args()
    try:
        print(summarize(args.dataset, episodes=parse_episodes(args.episodes), task=args.task,
                        features=args.features, compute=args.compute, revision=args.revision))
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
