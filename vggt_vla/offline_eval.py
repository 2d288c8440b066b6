"""Offline evaluation: a policy's chunk errors on a dataset's held-out episodes.

    python scripts/eval.py --checkpoint logs/demo                         # its own validation split
    python scripts/eval.py --checkpoint logs/demo --dataset data/demo --plots plots/

L1 and MSE per action dimension and per horizon step, in the dataset's action units (the model's
chunk un-normalised), over the validation episodes of the training split, plus a PNG per episode
of the first predicted action vs the ground truth over the episode. Offline error is a hint only:
closed-loop success (vggt_vla/closed_loop.py) is the metric.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from vggt_vla.policy import Policy
from vggt_vla.training.metrics import ChunkErrors


def held_out_frames(policy: Policy, dataset: Optional[str] = None):
    """(frames, split name): the validation episodes of the policy's training split, or all
    training frames when the run had none. dataset: another root or repo id with the same
    features (default: the training dataset)."""
    from vggt_vla.data.loader import build_datasets

    cfg = copy.deepcopy(policy.cfg)
    if dataset is not None and Path(dataset).exists():
        cfg.data.dataset_root = dataset
    elif dataset is not None:
        cfg.data.dataset_root, cfg.data.dataset_repo = None, dataset
    train, val, _ = build_datasets(cfg, policy.normalizer, progress=False)
    if val is not None:
        return val, "validation"
    return train, "train (the run had no validation split)"


def offline_eval(policy: Policy, dataset: Optional[str] = None, *, max_batches: Optional[int] = None,
                 batch_size: int = 16, plot_dir: Optional[str] = None, plot_episodes: int = 3) -> dict:
    """Chunk errors on the validation episodes of the policy's training split (dataset: another
    root or repo id with the same features; default: the training dataset)."""
    from vggt_vla.data.batch import to_device
    from vggt_vla.data.loader import make_loader

    subset, split = held_out_frames(policy, dataset)
    cfg = policy.cfg
    loader = make_loader(subset, batch_size=batch_size)
    key = cfg.data.action_key
    errors, norm_errors = ChunkErrors(), ChunkErrors()
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        batch = to_device(batch, policy.device)
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
    from vggt_vla.data.batch import collate, to_device
    from vggt_vla.training.run_logger import trace_plot

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
            batch = to_device(batch, policy.device)
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
