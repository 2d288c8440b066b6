#!/usr/bin/env python
"""Generate LIBERO demonstrations locally with the scripted expert (no Hugging Face hub needed).

    python scripts/generate_libero_demos.py --suite libero_spatial --episodes_per_task 50 --out data/libero_spatial_scripted
    python scripts/generate_libero_demos.py --tasks 0,1 --episodes_per_task 10 --format both --out data/ls01 --workers 2
    python scripts/train_vla.py --config simple --dataset_root data/libero_spatial_scripted/lerobot

Runs the privileged-state expert (vggt_vla/sim/libero_expert.py) on N scenes of each task, keeps
the successful episodes and writes them as
  --format lerobot      OUT/lerobot: a LeRobot v3.0 dataset with the schema of
                        lerobot/libero_spatial_image (observation.images.image / wrist_image 256x256
                        PNG, observation.state 8-D, action 7-D, one task string per episode;
                        train_vla.py reads it unchanged)
  --format libero_hdf5  OUT/libero_hdf5: one <task>_demo.hdf5 per task in the original LIBERO
                        layout (128x128), read with data.dataset_format: libero_hdf5
  --format both         both, from the same episodes.
The scenes (--init_states): "sampled" (default), new ones drawn by LIBERO's placement sampler from
seeds that evaluation never uses, so that evaluation on the benchmark's fixed initial states
measures generalisation to unseen scenes; or "benchmark", those fixed initial states 0..N-1.
Interrupted, the same command resumes: each expert episode is kept in OUT/episodes as it ends.
One row per 20 Hz control step, labelled 10 fps like the LeRobot LIBERO datasets. The simulation
runs without cameras; frames are rendered afterwards from the saved states. Images are in the
datasets' orientation (see vggt_vla/sim/libero.py), so data.flip_images stays false. The expert's
success per task is printed and written to OUT/expert_success.json. Needs requirements-sim.txt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--suite", default="libero_spatial")
    parser.add_argument("--tasks", help="comma-separated task ids (default: all tasks of the suite)")
    parser.add_argument("--episodes_per_task", type=int, default=50,
                        help="scenes per task (--init_states benchmark: initial states 0..N-1, at most 50)")
    parser.add_argument("--init_states", choices=["sampled", "benchmark"], default="sampled",
                        help="new scenes from LIBERO's sampler (default), or the benchmark's fixed initial states")
    parser.add_argument("--format", choices=["lerobot", "libero_hdf5", "both"], default="lerobot")
    parser.add_argument("--image_size", type=int, help="camera resolution (default 256; 128 for libero_hdf5 alone)")
    parser.add_argument("--fast_render", action="store_true",
                        help="no anti-aliasing/reflections; evaluate with --fast_render too")
    parser.add_argument("--max_mesh_faces", type=int,
                        help="render simplified copies of the visual meshes above this many triangles (e.g. 2000: "
                             "~2x faster rendering, physics unchanged); evaluation takes it from the checkpoint")
    parser.add_argument("--action_noise", type=float, default=0.0,
                        help="noise on the executed actions (the expert's are recorded): recovery data")
    parser.add_argument("--action_noise_correlation", type=float, default=0.0,
                        help="c in n_t = c n_(t-1) + N(0, action_noise^2): 0 independent, near 1 drifting noise")
    parser.add_argument("--layout_exchange", type=float, default=0.0,
                        help="fraction of scenes in which the goal's target (e.g. the plate) and another object "
                             "exchange places: layouts LIBERO's sampler never draws (vggt_vla/sim/layout_exchange.py)")
    parser.add_argument("--redraw_fixtures", action="store_true",
                        help="start each sampled scene as evaluation starts a benchmark state: its objects on a "
                             "second draw of the fixtures (cabinet, stove), so what sits in or on them is off-centre")
    parser.add_argument("--workers", type=int, default=1, help="parallel simulator processes")
    parser.add_argument("--seed", type=int, help="first episode seed (default: 1000000 sampled, 0 benchmark)")
    parser.add_argument("--overwrite", action="store_true", help="delete OUT and start over")
    parser.add_argument("--geometry", action="store_true",
                        help="also record each camera's depth and intrinsics/extrinsics (same render pass)")
    parser.add_argument("--rerender", action="store_true",
                        help="render the datasets again from OUT's saved episodes (e.g. to add --geometry)")
    args = parser.parse_args(argv)
    try:
        tasks = [int(t) for t in args.tasks.split(",")] if args.tasks else None
    except ValueError:
        parser.error(f"--tasks {args.tasks!r} must be comma-separated integers, e.g. 0,1,2")

    from vggt_vla.output_paths import OutputPathError, check_output_dir

    try:  # before the simulator loads
        check_output_dir(args.out, "--out")
    except OutputPathError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from vggt_vla.recording.libero_demos import generate_libero_demos

    try:
        summary = generate_libero_demos(args.out, suite=args.suite, tasks=tasks,
                                        episodes_per_task=args.episodes_per_task, fmt=args.format,
                                        image_size=args.image_size, fast_render=args.fast_render,
                                        max_mesh_faces=args.max_mesh_faces,
                                        action_noise=args.action_noise,
                                        action_noise_correlation=args.action_noise_correlation,
                                        layout_exchange=args.layout_exchange, redraw_fixtures=args.redraw_fixtures,
                                        workers=args.workers, seed=args.seed,
                                        init_states=args.init_states, overwrite=args.overwrite,
                                        geometry=args.geometry, rerender=args.rerender)
    except (ValueError, FileExistsError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"\n{'task':>4}  {'expert success':>14}  instruction")
    for row in summary["per_task"]:
        print(f"{row['task']:>4}  {row['successes']:>6}/{row['episodes']:<3} {row['success_rate']:>4.0%}  "
              f"{row['instruction']}")
    exchanged = sum(row.get("exchanged_episodes", 0) for row in summary["per_task"])
    if exchanged:
        solved = sum(row.get("exchanged_successes", 0) for row in summary["per_task"])
        print(f"layouts exchanged in {exchanged} scenes; the expert solved {solved} of them")
    print(f"kept {summary['kept']}/{summary['episodes']} episodes -> {args.out} (simulation {summary['simulate_s']:.0f} s, "
          f"rendering and writing {summary['render_write_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
