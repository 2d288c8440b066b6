#!/usr/bin/env python
"""Evaluate a trained policy offline on a dataset, or closed loop in a simulator.

    python scripts/eval.py --checkpoint logs/demo                              # its own val split
    python scripts/eval.py --checkpoint logs/demo --dataset data/demo --json eval.json --plots plots/
    python scripts/eval.py --checkpoint logs/demo --sim demo --episodes 50
    python scripts/eval.py --checkpoint logs/demo --probe_modalities            # which inputs it uses
    python scripts/eval.py --checkpoint logs/demo --sim demo --ablate images    # a control: blind it
    python scripts/eval.py --checkpoint logs/libero --sim libero --suite libero_spatial --workers 2
    python scripts/eval.py --checkpoint logs/libero --sim libero --episodes 10 --first_state 10   # states 10-19
    python scripts/eval.py --checkpoint logs/libero --sim libero --tasks 4 --episodes 10 --scenes sampled  # new scenes
    python scripts/eval.py --sim libero --policy scripted --tasks 0,1 --episodes_per_task 10
    python scripts/eval.py --sim demo --policy random --episodes 200           # the chance level
    python scripts/eval.py --sim demo --server ws://localhost:8000              # through a policy server

--checkpoint takes a run directory (best.pt, else last.pt) or a .pt file. Results are printed
and written as JSON (default: <run dir>/eval_<kind>.json; for --policy scripted or random,
eval_<suite or sim>_<policy>.json in the current directory, for --server ..._server.json).
Offline: vggt_vla/offline_eval.py; closed loop, every simulator the same way:
vggt_vla/closed_loop.py; --server runs the same episodes, seed for seed, through a running
scripts/serve_policy.py (vggt_vla/serving.py). LIBERO needs requirements-sim.txt. Bad
arguments, unreadable checkpoints or datasets, an unreachable server, and output paths that cannot
be written (checked before the model loads): one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from vggt_vla.config import ENSEMBLE_OFF  # noqa: E402


def _camera_shift(text: str) -> tuple[float, float]:
    try:
        metres, degrees = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give METRES,DEGREES, e.g. 0.05,5") from None
    return metres, degrees


def _coefficient_or_off(text: str):
    """--temporal_ensemble: a coefficient, or 'off' for the action queue."""
    if text == ENSEMBLE_OFF:
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a coefficient (e.g. 0.01) nor '{ENSEMBLE_OFF}'") from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="run directory or .pt file")
    parser.add_argument("--dataset", help="offline: dataset root or hub repo id (default: the training dataset)")
    parser.add_argument("--max_batches", type=int, help="offline: at most this many batches")
    parser.add_argument("--plots", help="offline: write per-episode action-trace PNGs here")
    parser.add_argument("--probe_modalities", action="store_true",
                        help="offline: how much the predicted chunk moves when each input alone (each camera, "
                             "the instruction, the state) is shuffled across a batch of validation frames")
    parser.add_argument("--json", help="where to write the results")
    parser.add_argument("--device", default="auto")
    loop = parser.add_argument_group("closed loop (--sim)")
    loop.add_argument("--sim", help="closed-loop evaluation in this simulator: demo or libero")
    loop.add_argument("--policy", choices=["checkpoint", "scripted", "random"], default="checkpoint",
                      help="the --checkpoint policy, the simulator's privileged scripted expert (a check of the "
                           "loop and the expert), or uniform random actions (the chance level)")
    loop.add_argument("--server", metavar="ws://HOST:PORT",
                      help="run the policy of a running scripts/serve_policy.py (its checkpoint, the same episodes "
                           "and seeds) instead of loading --checkpoint here")
    loop.add_argument("--episodes", "--episodes_per_task", dest="episodes", type=int, default=50,
                      help="episodes per task (the demo has one task; LIBERO: initial states 0..N-1 of each task, "
                           "from --first_state)")
    loop.add_argument("--seed", type=int, help="first episode seed (default: the simulator's, disjoint from its data)")
    loop.add_argument("--first_state", type=int, default=0,
                      help="LIBERO: start from initial states FIRST..FIRST+N-1 of each task (default 0, the "
                           "benchmark's usual ten; 10 gives a second, disjoint set)")
    loop.add_argument("--scenes", choices=["sampled", "redrawn"],
                      help="LIBERO: new scenes drawn from the episode seeds (from 2000000 on, beyond the "
                           "demonstrations') instead of the benchmark's states: 'sampled' as the demonstrations' "
                           "are (the training distribution), 'redrawn' with the fixtures drawn again as the "
                           "benchmark's states are started")
    loop.add_argument("--suite", help="task suite (LIBERO; default libero_spatial)")
    loop.add_argument("--tasks", help="comma-separated task ids (default: all tasks of the suite)")
    loop.add_argument("--workers", type=int, default=1, help="parallel simulator processes")
    loop.add_argument("--camera_size", type=int,
                      help="render resolution (default: the checkpoint config's sim.camera_size, else the demo 128, "
                           "LIBERO 256)")
    loop.add_argument("--fast_render", action="store_true",
                      help="LIBERO: no anti-aliasing/reflections (cheaper on a CPU); on by default when the "
                           "checkpoint config's sim.fast_render is (its demos were rendered so)")
    loop.add_argument("--max_mesh_faces", type=int,
                      help="LIBERO: render simplified copies of the visual meshes above this many triangles "
                           "(default: the checkpoint config's sim.max_mesh_faces, which its demos were rendered with)")
    loop.add_argument("--max_steps", type=int, help="policy steps per episode (default: the simulator's cap)")
    loop.add_argument("--camera_shift", type=_camera_shift, metavar="METRES,DEGREES",
                      help="viewpoint perturbation (LIBERO): move the agent-view camera sideways by METRES and "
                           "turn it by DEGREES about the vertical, e.g. 0.05,5")
    loop.add_argument("--ablate", nargs="+", choices=["images", "instruction"], default=[],
                      help="a control: hide the camera images (uniform grey) or the instruction (empty string)")
    loop.add_argument("--n_action_steps", type=int,
                      help="actions executed per predicted chunk (default: the checkpoint config's "
                           "inference: section)")
    loop.add_argument("--temporal_ensemble", type=_coefficient_or_off, metavar="COEFF",
                      help="temporal ensembling with this coefficient instead of the action queue, or 'off' for "
                           "the queue (default: the checkpoint config's inference: section)")
    loop.add_argument("--videos", metavar="DIR", help="write MP4s of the first --videos_per_task episodes per task")
    loop.add_argument("--videos_per_task", type=int, default=2)
    args = parser.parse_args(argv)
    if args.ablate and not args.sim:
        parser.error("--ablate is a closed-loop control: add --sim demo (or another simulator)")
    if args.policy != "checkpoint" and not args.sim:
        parser.error(f"--policy {args.policy} runs in a simulator: add --sim demo or --sim libero")
    if args.server and (not args.sim or args.checkpoint or args.policy != "checkpoint" or args.ablate):
        parser.error("--server evaluates the server's checkpoint closed loop: give --sim, and drop --checkpoint, "
                     "--policy and --ablate")
    if args.policy == "checkpoint" and not args.checkpoint and not args.server:
        parser.error("--checkpoint is required" + (" (or --policy scripted, or --server)" if args.sim else ""))
    if args.probe_modalities and args.sim:
        parser.error("--probe_modalities is offline; drop --sim")
    try:
        tasks = [int(t) for t in args.tasks.split(",")] if args.tasks else None
    except ValueError:
        parser.error(f"--tasks {args.tasks!r} must be comma-separated integers, e.g. 0,1,2")

    from vggt_vla.checkpoint import CheckpointError, resolve_checkpoint
    from vggt_vla.config import ConfigError
    from vggt_vla.data.meta import DatasetError
    from vggt_vla.models.pretrained import PretrainedUnavailable
    from vggt_vla.output_paths import OutputPathError, check_output_dir, check_output_file
    from vggt_vla.policy import Policy

    try:  # every path the evaluation writes, before the model loads: a late failure loses the run
        run_dir = resolve_checkpoint(args.checkpoint, ("best", "last")).parent.parent if args.checkpoint else None
        check_output_file(args.json, "--json")
        if not args.json:  # the default JSON goes to the run directory (scripted, random: the current one)
            check_output_dir(run_dir or Path("."), "the default --json directory")
        if args.sim:
            check_output_dir(args.videos, "--videos")
        elif not args.probe_modalities:
            check_output_dir(args.plots or run_dir / "eval_plots", "--plots")
    except (CheckpointError, OutputPathError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    policy = None
    if args.server:  # connect here, so an unreachable server is one line; the metadata says how to render
        from vggt_vla.serving import PolicyClient, ServerError

        try:
            policy = PolicyClient(args.server, n_action_steps=args.n_action_steps,
                                  temporal_ensemble=args.temporal_ensemble)
        except (ServerError, ConfigError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if policy.metadata["keys"] != "checkpoint":
            print(f"error: the server at {args.server} reads openpi's keys (--keys {policy.metadata['keys']}); "
                  f"eval.py sends the checkpoint's: restart it with --keys checkpoint", file=sys.stderr)
            return 2
    elif args.policy == "checkpoint":  # load here, so a bad checkpoint is one line, not one per worker
        try:
            policy = Policy.from_pretrained(args.checkpoint, device=args.device, n_action_steps=args.n_action_steps,
                                            temporal_ensemble_coeff=args.temporal_ensemble)
        except (CheckpointError, PretrainedUnavailable, ConfigError) as err:  # ConfigError: --n_action_steps
            print(f"error: {err}", file=sys.stderr)
            return 2
        run_dir = Path(policy.checkpoint_path).parent.parent
    if args.sim:
        from vggt_vla.closed_loop import ClosedLoopSpec, closed_loop_eval, format_result

        # The checkpoint's sim: section (a server sends it), so evaluation renders as the training demos were.
        sim_cfg = {}
        if args.server:
            sim_cfg = policy.metadata["sim"]
        elif policy is not None:
            sim_cfg = vars(policy.cfg.sim)
        if sim_cfg.get("name") == args.sim:
            args.camera_size = args.camera_size or sim_cfg["camera_size"]
            args.fast_render = args.fast_render or sim_cfg["fast_render"]
            if args.max_mesh_faces is None:
                args.max_mesh_faces = sim_cfg.get("max_mesh_faces")  # older checkpoints lack it: meshes as shipped
            args.suite = args.suite or sim_cfg["suite"]
        # The loaded policy's settings (flags over its checkpoint's inference: section), passed on so
        # that spawned workers run, and the results record, what this process runs.
        inference = {}
        if policy is not None:
            inference = {"n_action_steps": policy.n_action_steps,
                         "temporal_ensemble": policy.temporal_ensemble_coeff if args.temporal_ensemble is None
                         else args.temporal_ensemble}

        name = f"eval_{args.suite or args.sim}" + "".join("_no_" + a for a in args.ablate)  # eval_libero_spatial
        if args.camera_shift is not None:
            name += "_camera_{:g}m_{:g}deg".format(*args.camera_shift)
        if args.first_state:
            name += f"_states{args.first_state}-{args.first_state + args.episodes - 1}"  # eval_libero_spatial_states10-19
        if args.scenes:
            name += f"_{args.scenes}_scenes"  # eval_libero_spatial_redrawn_scenes
        if args.server:  # the server's run directory may be on another machine
            default_json = Path(f"{name}_server.json")
        else:
            default_json = Path(f"{name}_{args.policy}.json") if policy is None else run_dir / f"{name}.json"
        try:
            check_output_file(args.json or default_json, "--json")
        except OutputPathError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        try:
            spec = ClosedLoopSpec(sim=args.sim, policy=args.policy if policy is None else policy.checkpoint_path,
                                  server=args.server,
                                  episodes_per_task=args.episodes, tasks=tasks, seed=args.seed,
                                  first_state=args.first_state, scenes=args.scenes, suite=args.suite,
                                  workers=args.workers, camera_size=args.camera_size, fast_render=args.fast_render,
                                  max_mesh_faces=args.max_mesh_faces,
                                  max_steps=args.max_steps, camera_shift=args.camera_shift,
                                  ablate=tuple(args.ablate), video_dir=args.videos,
                                  videos_per_task=args.videos_per_task, device=args.device, **inference)
            # One process: the policy loaded (or the server connected) above. Workers load or connect themselves.
            result = closed_loop_eval(spec, policy=policy if args.workers == 1 else None)
        except (ValueError, ImportError) as err:  # a bad setting, or the simulator not installed
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(format_result(result))
    elif args.probe_modalities:
        from vggt_vla.modality_probe import format_probe, probe_modalities

        try:
            result = probe_modalities(policy, args.dataset)
        except DatasetError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(format_probe(result))
        default_json = run_dir / "eval_probe.json"
    else:
        from vggt_vla.offline_eval import offline_eval

        plots = args.plots or str(run_dir / "eval_plots")
        try:
            result = offline_eval(policy, args.dataset, max_batches=args.max_batches, plot_dir=plots)
        except DatasetError as err:  # a missing or damaged --dataset: one line, as training says it
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"offline ({result['split']}, {result['num_steps']} action steps): L1 {result['l1']:.4f}  "
              f"MSE {result['mse']:.4f}  (normalised L1 {result['normalized']['l1']:.4f})")
        print("  L1 per dimension: " + " ".join(f"{v:.4f}" for v in result["l1_per_dim"]))
        print("  L1 per horizon step: " + " ".join(f"{v:.4f}" for v in result["l1_per_step"]))
        print(f"  plots: {plots}")
        default_json = run_dir / "eval_offline.json"
    if policy is not None:
        result["checkpoint"] = policy.checkpoint_path
    out = Path(args.json) if args.json else default_json
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
