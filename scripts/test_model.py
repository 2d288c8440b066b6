#!/usr/bin/env python
"""Build a model configuration, run it on a dummy batch, and print what it is made of.

    python scripts/test_model.py --config simple          # or dinov2, full, or a YAML path
    python scripts/test_model.py --config dinov2 --random-weights --json out.json

Prints parameters (total / trainable) per component, tokens per modality, output shapes, peak
memory and forward latency. Pretrained parts are loaded for real when reachable; otherwise the
same architectures are built with random weights and one WARNING line says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from vggt_vla.config import NAMED_CONFIGS, load_config_or_report  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="simple",
                        help=f"named config ({', '.join(NAMED_CONFIGS)}) or a YAML path")
    parser.add_argument("--random-weights", action="store_true",
                        help="build pretrained parts with random weights (no loading at all)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config field, e.g. --set model.simple_backbone.depth=2")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (median reported)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the report as JSON to this path")
    args = parser.parse_args(argv)

    cfg = load_config_or_report(args.config, args.overrides)
    if cfg is None:
        return 2
    from vggt_vla.output_paths import OutputPathError, check_output_file

    try:  # before the model is built
        check_output_file(args.json, "--json")
    except OutputPathError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    from vggt_vla.models.summary import build_for_inspection, format_report, measure
    from vggt_vla.models.vggt import CheckpointError

    try:
        model, random_weights = build_for_inspection(cfg, args.random_weights)
    except CheckpointError as err:  # a local VGGT weights file that does not fit the config
        print(f"error: {err}", file=sys.stderr)
        return 2
    report = measure(model, cfg, args.batch_size, args.repeats, args.device, random_weights)
    print(format_report(report, f"config {args.config} (batch {args.batch_size}, {args.device})"))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(dataclasses.asdict(report), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
