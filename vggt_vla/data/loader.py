"""From a Config to the recorded datasets (split by episode) and DataLoaders, over any dataset
format (source.py).

    from vggt_vla.config import load_config
    from vggt_vla.data.loader import build_datasets, make_loader
    train, val, normalizer = build_datasets(load_config("simple"))
    ckpt["normalizer"] = normalizer.to_dict()

What a run trains on (these frames, or the demo env's live scenes with data.live) is chosen in
one place above this package: vggt_vla/training/training_data.py, which also builds the training
DataLoaders from make_loader. When resuming or fine-tuning from a checkpoint, pass its normalizer
(`Normalizer.from_dict`) so the statistics never change under a trained policy.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader

from .batch import collate
from .dataset import FrameDataset
from .meta import DatasetError
from .normalize import Normalizer
from .source import build_source
from .transforms import ImageTransform


class Datasets(NamedTuple):
    train: FrameDataset
    val: Optional[FrameDataset]
    normalizer: Normalizer


class DataLoaders(NamedTuple):
    train: DataLoader
    val: Optional[DataLoader]
    normalizer: Normalizer


def split_episodes(episodes, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Whole episodes to (train, val): a seeded shuffle, ceil(fraction * n) to validation, at least
    one episode kept for training. The result does not depend on the input order."""
    episodes = np.sort(np.asarray(episodes, dtype=np.int64))
    if val_fraction <= 0 or len(episodes) < 2:
        return episodes, episodes[:0]
    n_val = min(max(1, math.ceil(val_fraction * len(episodes))), len(episodes) - 1)
    perm = np.random.default_rng(seed).permutation(len(episodes))
    return np.sort(episodes[perm[n_val:]]), np.sort(episodes[perm[:n_val]])


def build_datasets(cfg, normalizer: Optional[Normalizer] = None, progress: bool = True) -> Datasets:
    """The dataset's train and validation frames (split by episode) and the normalizer they use.
    A run's training set is chosen by training/training_data.build_training_data, which calls this.

    normalizer: reuse these statistics (from a checkpoint) instead of the dataset's.
    """
    d = cfg.data
    source = build_source(cfg, progress)
    keys = [source.action_key] + ([source.state_key] if source.state_key else [])
    if normalizer is None:
        normalizer = Normalizer.from_stats(source.stats(d.normalization), d.normalization, keys)
    else:
        for key in keys:
            if key not in normalizer.keys:
                raise DatasetError(f"the given normalizer has no statistics for {key!r} (has {normalizer.keys})")
    episodes = source.episode_indices if d.episodes is None else np.asarray(d.episodes)
    train_eps, val_eps = split_episodes(episodes, d.val_fraction, d.split_seed)
    size = cfg.model.vision.image_size
    chunk = cfg.model.action_head.chunk_size
    # model.geometry_target: per-patch targets on the patch-embedding grid (the model checks it).
    grid = ((size // cfg.model.vision.patch_size,) * 2 if cfg.model.geometry_target.enabled else None)
    train = FrameDataset(source, chunk_size=chunk, normalizer=normalizer, episodes=train_eps,
                           transform=ImageTransform(size, flip=d.flip_images, augment=d.augment,
                                                    crop_scale=d.crop_scale, color_jitter=d.color_jitter),
                           geometry_grid=grid)
    val = None
    if len(val_eps):
        val = FrameDataset(source, chunk_size=chunk, normalizer=normalizer, episodes=val_eps,
                             transform=ImageTransform(size, flip=d.flip_images), geometry_grid=grid)
    return Datasets(train, val, normalizer)


def make_loader(dataset, *, batch_size: int, shuffle: bool = False, sampler=None, num_workers: int = 0,
                prefetch_factor: int = 2, persistent_workers: bool = False, pin_memory: bool = False,
                drop_last: bool = False, seed: int = 0, worker_init_fn=None, collate_fn=collate) -> DataLoader:
    """The one place a DataLoader is built: training (one per epoch, with its EpochSampler),
    validation, offline evaluation, both benchmarks and the geometry model (which passes torch's
    default_collate for its own items). Batches are `batch.collate` dicts by default. A
    private generator seeded with `seed` drives shuffling and the workers' seeds, so building a
    loader never draws from the global RNG (exact resume). pin_memory applies only with CUDA."""
    extra = {"prefetch_factor": prefetch_factor, "persistent_workers": persistent_workers} if num_workers > 0 else {}
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, num_workers=num_workers,
                      pin_memory=pin_memory and torch.cuda.is_available(), collate_fn=collate_fn,
                      drop_last=drop_last, generator=torch.Generator().manual_seed(seed),
                      worker_init_fn=worker_init_fn, **extra)


def loader_settings(cfg) -> dict:
    """make_loader's worker settings from cfg.data."""
    d = cfg.data
    return {"num_workers": d.num_workers, "prefetch_factor": d.prefetch_factor,
            "persistent_workers": d.persistent_workers, "pin_memory": d.pin_memory}
