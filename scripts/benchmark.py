#!/usr/bin/env python
"""Benchmark a configuration: training samples/s with the step split into data / forward /
backward / optimizer, inference latency, FLOPs and MFU. Prints numbers; passes or fails nothing.

    python scripts/benchmark.py --config simple --batch_size 8 --synthetic
    python scripts/benchmark.py --config demo --dataset data/demo --num_workers 2
    python scripts/benchmark.py --config dinov2 --random-weights --device cuda --mixed_precision bf16 --compile
    python scripts/benchmark.py --config simple --ablate_language     # the language model removed entirely

--synthetic (the default without --dataset) feeds one in-memory batch, so the figure is the
model's cost alone; --dataset adds the loader training uses (vggt_vla/training/training_data.py):
the dataset's frames, or, for a config with data.live (demo), live scenes of the demo env, with
the dataset giving the statistics. The first line says which. All figures also go to --json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from vggt_vla.config import NAMED_CONFIGS, load_config_or_report  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="simple", help=f"named config ({', '.join(NAMED_CONFIGS)}) or YAML")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10, help="timed training steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--synthetic", action="store_true", help="in-memory batches (default without --dataset)")
    parser.add_argument("--dataset", help="a LeRobot dataset root: time the training loader too (its frames, "
                                          "or live scenes with data.live)")
    parser.add_argument("--num_workers", type=int, default=0, help="DataLoader workers with --dataset")
    parser.add_argument("--random-weights", dest="random_weights", action="store_true",
                        help="pretrained parts with random weights (also the automatic fallback offline)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model first")
    parser.add_argument("--mixed_precision", choices=["no", "bf16", "fp16"], default="no")
    parser.add_argument("--ablate_language", action="store_true",
                        help="replace the language model by constant features (no language model at all)")
    parser.add_argument("--inference_repeats", type=int, default=20,
                        help="timed predict_action_chunk calls at batch 1 (median and p90 reported)")
    parser.add_argument("--matmul_size", type=int, default=4096,
                        help="n of the n x n x n matmul that measures the peak (try 8192 on a GPU)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args(argv)
    cfg = load_config_or_report(args.config, args.overrides)
    if cfg is None:
        return 2
    from vggt_vla.output_paths import OutputPathError, check_output_file

    try:  # before the (minutes of) measuring
        check_output_file(args.json, "--json")
    except OutputPathError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    from vggt_vla.benchmark import benchmark, format_result

    result = benchmark(cfg, batch_size=args.batch_size, steps=args.steps, warmup=args.warmup, device=args.device,
                       synthetic=args.synthetic, dataset=args.dataset, num_workers=args.num_workers,
                       random_weights=args.random_weights, compile=args.compile,
                       mixed_precision=args.mixed_precision, ablate_language=args.ablate_language,
                       inference_repeats=args.inference_repeats, matmul_size=args.matmul_size)
    result["config_name"] = args.config
    print(format_result(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
