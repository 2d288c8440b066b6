#!/usr/bin/env python
"""Train a small VGGT on the depth and camera parameters recorded with the demonstrations, report
its held-out accuracy, and save it where a policy config loads it like VGGT-1B.

    python scripts/generate_libero_demos.py --out data/libero_spatial_geo --geometry ...   # the data
    python scripts/train_geometry_model.py --dataset data/libero_spatial_geo/lerobot --out models/vggt_small
    python scripts/train_vla.py --config libero_cpu_vggt_align                            # a policy using it

The model sees the two cameras of one moment as VGGT's frames (the agent view is frame 0, the
world) and learns per-pixel 3-D points and depth, and the wrist camera's pose relative to the
agent view (vggt_vla/models/geometry_model.py). Held-out accuracy (depth AbsRel, point error in cm,
pose errors) is printed and stored in OUT/config.json, beside OUT/model.safetensors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="a LeRobot dataset with recorded geometry")
    parser.add_argument("--out", required=True, help="output directory (model.safetensors + config.json)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val_fraction", type=float, default=0.1, help="episodes held out for the accuracy")
    parser.add_argument("--aggregator_kwargs", type=json.loads,
                        help="JSON overrides of the small preset (vggt_vla.models.vggt.SMALL_KWARGS)")
    parser.add_argument("--num_workers", type=int, default=1)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    args = parser.parse_args(argv)

    from vggt_vla.data.meta import DatasetError
    from vggt_vla.models.vggt import SMALL_KWARGS
    from vggt_vla.training.geometry_model import GeometryTrainingConfig, claim_output, train_geometry_model

    try:
        cfg = GeometryTrainingConfig(dataset=args.dataset, out=args.out, steps=args.steps, batch_size=args.batch_size,
                                     lr=args.lr, seed=args.seed, val_fraction=args.val_fraction,
                                     num_workers=args.num_workers,
                                     aggregator_kwargs={**SMALL_KWARGS, **(args.aggregator_kwargs or {})})
        claim_output(Path(args.out), args.overwrite)
        train_geometry_model(cfg, overwrite=args.overwrite)
    except (ValueError, FileExistsError, DatasetError) as err:  # OutputPathError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"saved -> {args.out} (model.safetensors, config.json); load it with "
          f"checkpoint: {args.out} and aggregator_kwargs: {json.dumps(cfg.aggregator_kwargs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
