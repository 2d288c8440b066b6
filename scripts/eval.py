#!/usr/bin/env python
"""Evaluate a trained policy offline on a dataset, or closed loop in a simulator.

    python scripts/eval.py --checkpoint logs/demo                              # its own val split
    python scripts/eval.py --checkpoint logs/demo --dataset data/demo --json eval.json --plots plots/
    python scripts/eval.py --checkpoint logs/demo --sim demo --episodes 50

--checkpoint takes a run directory (best.pt, else last.pt) or a .pt file. Results are printed
and written as JSON (default: <run dir>/eval_<kind>.json).
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
    parser.add_argument("--dataset", help="dataset root or hub repo id (default: the training dataset)")
    parser.add_argument("--sim", help="closed-loop evaluation in this simulator (e.g. demo)")
    parser.add_argument("--episodes", type=int, default=50, help="closed-loop episodes")
    parser.add_argument("--seed", type=int, help="first episode seed (closed loop)")
    parser.add_argument("--n_action_steps", type=int, default=5, help="actions executed per predicted chunk")
    parser.add_argument("--temporal_ensemble", type=float, metavar="COEFF",
                        help="temporal ensembling with this coefficient instead of the action queue")
    parser.add_argument("--max_batches", type=int, help="offline: at most this many batches")
    parser.add_argument("--plots", help="offline: write per-episode action-trace PNGs here")
    parser.add_argument("--json", help="where to write the results")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    from vggt_vla.evaluation import closed_loop_eval, offline_eval
    from vggt_vla.policy import Policy

    policy = Policy.from_pretrained(args.checkpoint, device=args.device, n_action_steps=args.n_action_steps,
                                    temporal_ensemble_coeff=args.temporal_ensemble)
    run_dir = Path(policy.checkpoint_path).parent.parent
    if args.sim:
        result = closed_loop_eval(policy, args.sim, args.episodes, args.seed)
        low, high = result["ci95"]
        print(f"{args.sim}: success {result['success_rate']:.1%} ({result['successes']}/{result['episodes']}), "
              f"95% CI [{low:.1%}, {high:.1%}]")
        default_json = run_dir / f"eval_{args.sim}.json"
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


if __name__ == "__main__":
    sys.exit(main())
