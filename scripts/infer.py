#!/usr/bin/env python
"""Predict an action chunk for one observation given as image files.

    python scripts/infer.py --checkpoint logs/demo --image agent.png --wrist wrist.png \
        --instruction "move to the red cube" [--state 0 0 0.1 0 0 0 0.04 -0.04]

Prints the chunk [T, A] in the dataset's action units (one row per future step), and how the
policy executes it: its checkpoint config's inference: section (n_action_steps, temporal_ensemble).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="run directory or .pt file")
    parser.add_argument("--image", required=True, help="agent-view image (first camera)")
    parser.add_argument("--wrist", help="wrist image (second camera), when the policy uses one")
    parser.add_argument("--instruction", required=True)
    parser.add_argument("--state", type=float, nargs="+", help="proprioceptive state (default: zeros)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from vggt_vla.models.pretrained import PretrainedUnavailable
    from vggt_vla.policy import NonFiniteObservation, Policy
    from vggt_vla.checkpoint import CheckpointError
    from vggt_vla.config import ConfigError

    files = [args.image] + ([args.wrist] if args.wrist else [])
    missing = [f for f in files if not Path(f).is_file()]
    if missing:  # before the (slow) model load
        print(f"error: no image file {', '.join(missing)}", file=sys.stderr)
        return 2
    frames = []
    for f in files:
        try:
            with Image.open(f) as im:
                frames.append(np.asarray(im.convert("RGB")))
        except (OSError, UnidentifiedImageError) as err:
            print(f"error: cannot read image {f}: {err}", file=sys.stderr)
            return 2
    try:
        policy = Policy.from_pretrained(args.checkpoint, device=args.device)
    except (CheckpointError, PretrainedUnavailable, ConfigError) as err:  # ConfigError: its inference: section
        print(f"error: {err}", file=sys.stderr)
        return 2
    cams = policy.cfg.data.camera_keys
    if len(files) != len(cams):
        parser.error(f"the policy uses {len(cams)} camera(s) {cams}; give "
                     f"{'--image and --wrist' if len(cams) == 2 else '--image only'}")
    obs = dict(zip(cams, frames))
    obs["instruction"] = args.instruction
    if policy.cfg.model.state_dim > 0:
        state = args.state or [0.0] * policy.cfg.model.state_dim
        if len(state) != policy.cfg.model.state_dim:
            print(f"error: --state has {len(state)} values, the policy expects {policy.cfg.model.state_dim}",
                  file=sys.stderr)
            return 2
        obs[policy.cfg.data.state_key] = np.asarray(state)
    try:
        chunk = policy.predict_action_chunk(obs)
    except NonFiniteObservation as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    np.set_printoptions(precision=4, suppress=True, linewidth=120)
    print(f"action chunk {list(chunk.shape)} (rows: future steps):\n{chunk}")
    print(policy.inference.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
