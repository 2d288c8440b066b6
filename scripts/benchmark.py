#!/usr/bin/env python
"""Benchmark a configuration: training samples/s with the step split into data / forward /
backward / optimizer, inference latency, FLOPs and MFU. Prints numbers; passes or fails nothing.

    python scripts/benchmark.py --config simple --batch_size 8 --synthetic
    python scripts/benchmark.py --config demo --dataset data/demo --num_workers 2
    python scripts/benchmark.py --config dinov2 --random-weights --device cuda --mixed_precision bf16 --compile
    python scripts/benchmark.py --config simple --ablate_language     # the language model removed entirely
    python scripts/benchmark.py --config demo --batch_size 32 --baseline model.simple_backbone.depth=3

--baseline times the step of the config with those overrides (say, the recipe before a change) and
of the config itself side by side, in alternating rounds in one process, and prints the ratio.

--synthetic (the default without --dataset) feeds one in-memory batch, so the figure is the
model's cost alone; --dataset adds the loader training uses (vggt_vla/training/training_data.py):
the dataset's frames, or, for a config with data.live (demo), live scenes of the demo env, with
the dataset giving the statistics. The first line says which. All figures also go to --json.

    python scripts/benchmark.py --config libero_cpu --latency --calls 200
    python scripts/benchmark.py --latency --checkpoint logs/libero_cpu --rows eager,onnx

--latency times one action chunk at batch 1 instead (p50 / p99 of --calls calls): PyTorch eager,
torch.compile, ONNX Runtime and the policy server over localhost (--rows picks), with actions per
second at the config's n_action_steps against LIBERO's 20 Hz. Eager, ONNX Runtime and the server are
timed call by call in turn, so their ratios hold on a machine whose speed drifts; the thread count
(OMP_NUM_THREADS, default every core) moves them. From a config, the weights are fresh
(latency does not depend on them); --checkpoint times a trained run. Needs requirements-deploy.txt
for the onnx and server rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from vggt_vla.benchmark import LATENCY_ROWS  # noqa: E402
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
    parser.add_argument("--latency", action="store_true", help="time one action chunk at batch 1 per backend "
                                                                  "(eager, compile, onnx, server) instead of training")
    parser.add_argument("--checkpoint",
                        help="--latency: a run directory or .pt file (default: the config, fresh weights)")
    parser.add_argument("--calls", type=int, default=200, help="--latency: timed calls per backend (p50, p99)")
    parser.add_argument("--rows", default=",".join(LATENCY_ROWS),
                        help=f"--latency: the backends to time, comma-separated, of {','.join(LATENCY_ROWS)}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--baseline", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="time the training step of the config with these overrides (repeatable) side by "
                             "side with the config itself, alternating in one process; prints both and the ratio")
    parser.add_argument("--rounds", type=int, default=3, help="--baseline: rounds of --steps timed steps per model")
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args(argv)
    if args.latency:
        return latency_main(args)
    if args.baseline:
        return compare_main(args)
    cfg = load_config_or_report(args.config, args.overrides)
    if cfg is None:
        return 2
    if json_path_refused(args.json):  # before the (minutes of) measuring
        return 2
    from vggt_vla.benchmark import benchmark, format_result

    result = benchmark(cfg, batch_size=args.batch_size, steps=args.steps, warmup=args.warmup, device=args.device,
                       synthetic=args.synthetic, dataset=args.dataset, num_workers=args.num_workers,
                       random_weights=args.random_weights, compile=args.compile,
                       mixed_precision=args.mixed_precision, ablate_language=args.ablate_language,
                       inference_repeats=args.inference_repeats, matmul_size=args.matmul_size)
    result["config_name"] = args.config
    print(format_result(result))
    write_json(args.json, result)
    return 0


def json_path_refused(path) -> bool:
    """--json names a file that may not be written (output_paths.check_output_file): say why."""
    from vggt_vla.output_paths import OutputPathError, check_output_file

    try:
        check_output_file(path, "--json")
    except OutputPathError as err:
        print(f"error: {err}", file=sys.stderr)
        return True
    return False


def write_json(path, result: dict) -> None:
    """--json: every figure, if a path was given."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(result, indent=2))


def compare_main(args) -> int:
    """--baseline: the step time of the config and of the config with the --baseline overrides."""
    baseline = load_config_or_report(args.config, args.overrides + args.baseline)
    cfg = load_config_or_report(args.config, args.overrides)
    if cfg is None or baseline is None:
        return 2
    if args.rounds < 1 or args.steps < 1:
        print(f"error: --rounds and --steps must be >= 1, got {args.rounds} and {args.steps}", file=sys.stderr)
        return 2
    if json_path_refused(args.json):
        return 2
    from vggt_vla.benchmark import compare_steps, format_comparison

    names = {"baseline (" + " ".join(args.baseline) + ")": baseline, args.config: cfg}
    result = compare_steps(names, batch_size=args.batch_size, steps=args.steps, rounds=args.rounds,
                           warmup=args.warmup, device=args.device, dataset=None if args.synthetic else args.dataset,
                           num_workers=args.num_workers, random_weights=args.random_weights)
    print(format_comparison(result))
    write_json(args.json, result)
    return 0


def latency_main(args) -> int:
    rows = tuple(r.strip() for r in args.rows.split(",") if r.strip())
    unknown = sorted(set(rows) - set(LATENCY_ROWS))
    if unknown or not rows:
        print(f"error: --rows {args.rows}: unknown {unknown or 'empty'}; choose from {','.join(LATENCY_ROWS)}",
              file=sys.stderr)
        return 2
    if args.calls < 1:
        print(f"error: --calls must be >= 1, got {args.calls}", file=sys.stderr)
        return 2
    cfg = None
    if args.checkpoint is None:
        cfg = load_config_or_report(args.config, args.overrides)
        if cfg is None:
            return 2
    from vggt_vla.checkpoint import CheckpointError
    from vggt_vla.export import ExportError
    from vggt_vla.output_paths import OutputPathError, check_output_file

    try:
        check_output_file(args.json, "--json")  # before the (minutes of) measuring
        from vggt_vla.benchmark import format_latency, latency

        result = latency(cfg, args.checkpoint, calls=args.calls, rows=rows, random_weights=args.random_weights)
    except (OutputPathError, CheckpointError, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_latency(result))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
