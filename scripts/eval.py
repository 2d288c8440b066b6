#!/usr/bin/env python
"""Evaluate a trained policy offline on a dataset, or closed loop in a simulator.

    python scripts/eval.py --checkpoint logs/demo                              # its own val split
    python scripts/eval.py --checkpoint logs/demo --dataset data/demo --json eval.json --plots plots/
    python scripts/eval.py --checkpoint logs/demo --sim demo --episodes 50
    python scripts/eval.py --checkpoint logs/demo --probe_modalities            # which inputs it uses
    python scripts/eval.py --checkpoint logs/demo --sim demo --ablate images    # a control: blind it
    python scripts/eval.py --checkpoint logs/libero --sim libero --suite libero_spatial --workers 2
    python scripts/eval.py --sim libero --policy scripted --tasks 0,1 --episodes_per_task 10

--checkpoint takes a run directory (best.pt, else last.pt) or a .pt file. Results are printed
and written as JSON (default: <run dir>/eval_<kind>.json; for --policy scripted,
eval_libero_scripted_<suite>.json in the current directory). LIBERO needs requirements-sim.txt.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="run directory or .pt file")
    parser.add_argument("--dataset", help="dataset root or hub repo id (default: the training dataset)")
    parser.add_argument("--sim", help="closed-loop evaluation in this simulator (e.g. demo)")
    parser.add_argument("--episodes", type=int, default=50, help="closed-loop episodes")
    parser.add_argument("--seed", type=int, help="first episode seed (closed loop)")
    parser.add_argument("--ablate", nargs="+", choices=["images", "instruction"], default=[],
                        help="closed loop, a control: hide the camera images (uniform grey) or the "
                             "instruction (empty string) from the policy")
    parser.add_argument("--n_action_steps", type=int, default=5, help="actions executed per predicted chunk")
    parser.add_argument("--temporal_ensemble", type=float, metavar="COEFF",
                        help="temporal ensembling with this coefficient instead of the action queue")
    parser.add_argument("--max_batches", type=int, help="offline: at most this many batches")
    parser.add_argument("--plots", help="offline: write per-episode action-trace PNGs here")
    parser.add_argument("--probe_modalities", action="store_true",
                        help="offline: how much the predicted chunk moves when each input alone (each camera, "
                             "the instruction, the state) is shuffled across a batch of validation frames")
    parser.add_argument("--json", help="where to write the results")
    parser.add_argument("--device", default="auto")
    lib = parser.add_argument_group("LIBERO (--sim libero)")
    lib.add_argument("--policy", choices=["checkpoint", "scripted"], default="checkpoint",
                     help="the --checkpoint policy, or the privileged scripted expert (a check of the loop)")
    lib.add_argument("--suite", default="libero_spatial")
    lib.add_argument("--tasks", help="comma-separated task ids (default: all tasks of the suite)")
    lib.add_argument("--episodes_per_task", type=int, default=50, help="initial states 0..N-1 of each task")
    lib.add_argument("--workers", type=int, default=1, help="parallel simulator processes")
    lib.add_argument("--camera_size", type=int, default=256, help="render resolution (the datasets': 256)")
    lib.add_argument("--fast_render", action="store_true",
                     help="no anti-aliasing/reflections (~3x faster on CPU); use only if the training data did")
    lib.add_argument("--max_steps", type=int, help="policy steps per episode (default: the suite's cap)")
    lib.add_argument("--videos", metavar="DIR", help="write MP4s of the first --videos_per_task episodes per task")
    lib.add_argument("--videos_per_task", type=int, default=2)
    args = parser.parse_args(argv)
    if args.ablate and args.sim != "demo":
        parser.error("--ablate is a closed-loop control for --sim demo")
    if args.sim == "libero":
        return _libero(args, parser)
    if args.policy == "scripted":
        parser.error("--policy scripted is for --sim libero")
    if not args.checkpoint:
        parser.error("--checkpoint is required")

    from vggt_vla.evaluation import closed_loop_eval, offline_eval
    from vggt_vla.policy import Policy

    from vggt_vla.models.pretrained import PretrainedUnavailable
    from vggt_vla.checkpoint import CheckpointError

    try:
        policy = Policy.from_pretrained(args.checkpoint, device=args.device, n_action_steps=args.n_action_steps,
                                        temporal_ensemble_coeff=args.temporal_ensemble)
    except (CheckpointError, PretrainedUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    run_dir = Path(policy.checkpoint_path).parent.parent
    if args.probe_modalities:
        from vggt_vla.modality_probe import format_probe, probe_modalities

        if args.sim:
            parser.error("--probe_modalities is offline; drop --sim")
        result = probe_modalities(policy, args.dataset)
        print(format_probe(result))
        default_json = run_dir / "eval_probe.json"
    elif args.sim:
        result = closed_loop_eval(policy, args.sim, args.episodes, args.seed, tuple(args.ablate))
        low, high = result["ci95"]
        hidden = f" with {' and '.join(args.ablate)} hidden" if args.ablate else ""
        print(f"{args.sim}{hidden}: success {result['success_rate']:.1%} ({result['successes']}/{result['episodes']}), "
              f"95% CI [{low:.1%}, {high:.1%}]")
        for category, rows in result["breakdown"].items():
            for value, row in rows.items():
                low, high = row["ci95"]
                label = f"{category}: {value}"
                print(f"  {label:<44} {row['success_rate']:6.1%} ({row['successes']}/{row['episodes']}), "
                      f"[{low:.1%}, {high:.1%}]")
        default_json = run_dir / f"eval_{args.sim}{''.join('_no_' + a for a in args.ablate)}.json"
    else:
        plots = args.plots or str(run_dir / "eval_plots")
        result = offline_eval(policy, args.dataset, max_batches=args.max_batches, plot_dir=plots)
        print(f"offline ({result['split']}, {result['num_steps']} action steps): L1 {result['l1']:.4f}  "
              f"MSE {result['mse']:.4f}  (normalised L1 {result['normalized']['l1']:.4f})")
        print("  L1 per dimension: " + " ".join(f"{v:.4f}" for v in result["l1_per_dim"]))
        print("  L1 per horizon step: " + " ".join(f"{v:.4f}" for v in result["l1_per_step"]))
        print(f"  plots: {plots}")
        default_json = run_dir / "eval_offline.json"
    result["checkpoint"] = policy.checkpoint_path
    out = Path(args.json) if args.json else default_json
    out.write_text(json.dumps(result, indent=2))
    print(f"results: {out}")
    return 0


def _libero(args, parser) -> int:
    from vggt_vla.evaluation import LiberoEvalSpec, libero_eval

    if args.policy == "checkpoint" and not args.checkpoint:
        parser.error("--sim libero needs --checkpoint PATH, or --policy scripted")
    try:
        tasks = [int(t) for t in args.tasks.split(",")] if args.tasks else None
    except ValueError:
        parser.error(f"--tasks {args.tasks!r} must be comma-separated integers, e.g. 0,1,2")
    if args.policy == "checkpoint":  # fail here in one line, not in every worker
        from vggt_vla.checkpoint import CheckpointError, checkpoint_config, load_checkpoint

        try:
            checkpoint_config(load_checkpoint(args.checkpoint, ("best", "last")))
        except CheckpointError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    spec = LiberoEvalSpec(policy="scripted" if args.policy == "scripted" else args.checkpoint, suite=args.suite,
                          tasks=tasks, episodes_per_task=args.episodes_per_task, workers=args.workers,
                          seed=args.seed or 0, camera_size=args.camera_size, fast_render=args.fast_render,
                          max_steps=args.max_steps, video_dir=args.videos, videos_per_task=args.videos_per_task,
                          device=args.device, n_action_steps=args.n_action_steps,
                          temporal_ensemble=args.temporal_ensemble)
    result = libero_eval(spec)
    print(f"\n{'task':>4}  {'success':>8}  {'95% CI':>15}  {'mean len':>8}  instruction")
    for row in result["per_task"]:
        low, high = row["ci95"]
        print(f"{row['task']:>4}  {row['success_rate']:>8.1%}  [{low:5.1%}, {high:5.1%}]  "
              f"{row['mean_length']:>8.1f}  {row['instruction']}")
    low, high = result["ci95"]
    print(f"overall: {result['success_rate']:.1%} ({result['successes']}/{result['episodes']}), 95% CI "
          f"[{low:.1%}, {high:.1%}], mean length {result['mean_length']:.1f} steps, wall time "
          f"{result['wall_time_s']:.0f} s with {args.workers} worker(s), fast_render={args.fast_render}")
    if args.policy == "scripted":
        out = Path(args.json or f"eval_libero_scripted_{args.suite}.json")
    else:
        from vggt_vla.checkpoint import resolve_checkpoint

        result["checkpoint"] = str(resolve_checkpoint(args.checkpoint, ("best", "last")))  # as Policy loads it
        out = Path(args.json) if args.json else Path(result["checkpoint"]).parent.parent / f"eval_libero_{args.suite}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
