#!/usr/bin/env python
"""Linear read-out of scene geometry (3-D points, depth) from a policy's vision tokens, per layer.

    python scripts/geometry_probe.py --checkpoint logs/libero_cpu --dataset data/libero_spatial_geo/lerobot

The dataset needs recorded geometry (generate_libero_demos.py --geometry). See vggt_vla/geometry_probe.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="run directory or .pt file")
    parser.add_argument("--dataset", required=True, help="a LeRobot dataset with recorded geometry")
    parser.add_argument("--frames", type=int, default=512, help="frames to fit on, and to score on")
    parser.add_argument("--alpha", type=float, default=10.0, help="ridge penalty (inputs standardised)")
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.alpha < 0:
        parser.error(f"--frames {args.frames} must be >= 1 and --alpha {args.alpha} >= 0")

    from vggt_vla.checkpoint import CheckpointError
    from vggt_vla.data.meta import DatasetError
    from vggt_vla.geometry_probe import format_probe, probe_geometry
    from vggt_vla.models.pretrained import PretrainedUnavailable
    from vggt_vla.output_paths import OutputPathError, check_output_file
    from vggt_vla.policy import Policy

    try:
        check_output_file(args.json, "--json")  # before the work
        policy = Policy.from_pretrained(args.checkpoint, device=args.device)
        result = probe_geometry(policy, args.dataset, frames=args.frames, alpha=args.alpha)
    except (CheckpointError, PretrainedUnavailable, DatasetError, OutputPathError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_probe(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
