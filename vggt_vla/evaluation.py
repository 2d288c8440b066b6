"""Evaluate a policy: offline on a dataset's validation episodes, or closed loop in a simulator.

    python scripts/eval.py --checkpoint logs/demo --dataset data/demo           # offline
    python scripts/eval.py --checkpoint logs/demo --sim demo --episodes 50      # closed loop

Offline: L1 and MSE per action dimension and per horizon step, in the dataset's action units
(the model's chunk un-normalised), over the validation episodes of the training split, plus a
PNG per episode of the first predicted action vs the ground truth over the episode.

Closed loop: success rate over N episodes with a 95% Wilson confidence interval. Simulators are
looked up by name in SIMULATORS: add an entry (a function (policy, episodes, seed) -> list of
per-episode successes) for another one.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from vggt_vla.policy import Policy
from vggt_vla.training.metrics import ChunkErrors


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (sane at 0% and 100%, unlike the normal one)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# ---------------------------------------------------------------------------------- offline

def offline_eval(policy: Policy, dataset: Optional[str] = None, *, max_batches: Optional[int] = None,
                 batch_size: int = 16, plot_dir: Optional[str] = None, plot_episodes: int = 3) -> dict:
    """Chunk errors on the validation episodes of the policy's training split (dataset: another
    root or repo id with the same features; default: the training dataset)."""
    from vggt_vla.data.lerobot import collate
    from vggt_vla.data.loader import build_datasets

    cfg = copy.deepcopy(policy.cfg)
    if dataset is not None and Path(dataset).exists():
        cfg.data.dataset_root = dataset
    elif dataset is not None:
        cfg.data.dataset_root, cfg.data.dataset_repo = None, dataset
    train, val, _ = build_datasets(cfg, policy.normalizer, progress=False)
    subset = val if val is not None else train
    split = "validation" if val is not None else "train (the run had no validation split)"
    loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    key = cfg.data.action_key
    errors, norm_errors = ChunkErrors(), ChunkErrors()
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        batch = {k: v.to(policy.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        with torch.no_grad():
            pred = policy.model.predict_action_chunk(batch, policy.generator).float()  # [B, T, A]
        pad = batch["action_pad_mask"].bool()
        norm_errors.update(pred, batch["actions"], pad)
        errors.update(policy.normalizer.unnormalize(key, pred), policy.normalizer.unnormalize(key, batch["actions"]), pad)
    result = {"split": split, "frames": len(subset), **errors.summary(),
              "normalized": {k: v for k, v in norm_errors.summary().items() if k in ("l1", "mse")}}
    if plot_dir:
        result["plots"] = plot_episode_traces(policy, subset, plot_dir, plot_episodes)
    return result


def plot_episode_traces(policy: Policy, dataset, out_dir: str, episodes: int) -> list[str]:
    """For a few episodes: the first action of each predicted chunk vs the recorded action."""
    from vggt_vla.data.lerobot import collate
    from vggt_vla.training.logging import trace_plot

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = dataset.source
    rows = np.asarray(dataset.rows)
    episode_of = source.row_episode[rows]
    paths = []
    key = policy.cfg.data.action_key
    for ep in list(dict.fromkeys(episode_of.tolist()))[:episodes]:
        idx = np.nonzero(episode_of == ep)[0]
        preds, targets = [], []
        for start in range(0, len(idx), 32):
            batch = collate([dataset[int(i)] for i in idx[start:start + 32]])
            batch = {k: v.to(policy.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            with torch.no_grad():
                pred = policy.model.predict_action_chunk(batch, policy.generator).float().cpu()
            preds.append(pred[:, 0])
            targets.append(batch["actions"][:, 0].cpu())
        pred = policy.normalizer.unnormalize(key, torch.cat(preds)).numpy()
        target = policy.normalizer.unnormalize(key, torch.cat(targets)).numpy()
        path = out / f"episode_{int(ep):06d}_actions.png"
        trace_plot(pred, target, width=640, row_h=70).save(path)
        paths.append(str(path))
    return paths


# ---------------------------------------------------------------------------------- closed loop

def run_demo(policy: Policy, episodes: int, seed: int = 100_000) -> list[bool]:
    """The embedded demo environment (vggt_vla/sim/demo_env.py), seeds disjoint from its dataset."""
    from vggt_vla.sim.demo_env import DemoEnv

    env = DemoEnv()
    results = []
    for k in range(episodes):
        obs = env.reset(seed=seed + k)
        policy.reset()
        while not env.done:
            obs, _ = env.step(np.clip(policy.select_action(obs), -1.0, 1.0))
        results.append(bool(env.success))
    return results


SIMULATORS: dict[str, Callable[[Policy, int, int], list[bool]]] = {"demo": run_demo}


def closed_loop_eval(policy: Policy, sim: str, episodes: int, seed: Optional[int] = None) -> dict:
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; available: {sorted(SIMULATORS)}")
    run = SIMULATORS[sim]
    results = run(policy, episodes) if seed is None else run(policy, episodes, seed)
    wins = int(sum(results))
    low, high = wilson_interval(wins, len(results))
    return {"sim": sim, "episodes": len(results), "successes": wins, "success_rate": wins / max(1, len(results)),
            "ci95": [low, high], "n_action_steps": policy.n_action_steps,
            "temporal_ensemble_coeff": policy.temporal_ensemble_coeff}
