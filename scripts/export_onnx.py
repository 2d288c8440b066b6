#!/usr/bin/env python
"""Export a trained policy's inference graph to ONNX, checked against PyTorch first.

    python scripts/export_onnx.py --checkpoint logs/libero_cpu --out policy.onnx
    python scripts/export_onnx.py --checkpoint logs/demo --out demo.onnx --dataset data/demo

The graph maps the cameras, the normalised state and the language model's features of the
instruction to the normalised action chunk, at batch 1 (vggt_vla/export.py says why and how). The
language model stays in PyTorch. Before the file is written, the graph and the PyTorch model
predict chunks for frames of the checkpoint's dataset (its data.dataset_root, or --dataset); a max
|difference| above --tolerance writes nothing and exits 2. Run the result with
Policy.from_pretrained(RUN_DIR, onnx_path=OUT). Needs requirements-deploy.txt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing


def main(argv=None) -> int:
    from vggt_vla.export import PARITY_FRAMES, PARITY_TOLERANCE

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="run directory (best.pt, else last.pt) or .pt file")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--dataset", help="dataset root or hub repo id for the parity check (default: the "
                                          "checkpoint's training dataset)")
    parser.add_argument("--frames", type=int, default=PARITY_FRAMES, help="frames the parity check runs on")
    parser.add_argument("--tolerance", type=float, default=PARITY_TOLERANCE,
                        help="largest |onnx - torch| accepted, on the normalised actions")
    args = parser.parse_args(argv)
    if args.frames < 1 or not args.tolerance >= 0:
        print(f"error: --frames must be >= 1 and --tolerance >= 0, got {args.frames} and {args.tolerance}",
              file=sys.stderr)
        return 2

    from vggt_vla.checkpoint import CheckpointError
    from vggt_vla.config import ConfigError
    from vggt_vla.export import ExportError, export_checkpoint
    from vggt_vla.models.pretrained import PretrainedUnavailable
    from vggt_vla.output_paths import OutputPathError, check_output_file
    from vggt_vla.policy import Policy

    try:
        check_output_file(args.out, "--out")  # before the model and the data are loaded
        policy = Policy.from_pretrained(args.checkpoint, device="cpu")
        report = export_checkpoint(policy.model, policy.cfg, policy.normalizer, args.out, dataset=args.dataset,
                                   frames=args.frames, tolerance=args.tolerance)
    except (OutputPathError, CheckpointError, ConfigError, PretrainedUnavailable, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"checkpoint {policy.checkpoint_path}")
    print(report.lines())
    print(f"run it: Policy.from_pretrained({str(args.checkpoint)!r}, onnx_path={str(report.path)!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
