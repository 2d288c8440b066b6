"""From a Config to train/validation DataLoaders over a LeRobot dataset.

    from vggt_vla.config import load_config
    from vggt_vla.data.loader import build_dataloaders
    loaders = build_dataloaders(load_config("simple"))
    for batch in loaders.train: ...          # the batch dict (see lerobot.collate)
    ckpt["normalizer"] = loaders.normalizer.to_dict()

When resuming or fine-tuning from a checkpoint, pass its normalizer (`Normalizer.from_dict`) so
the statistics never change under a trained policy.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader

from .batch import collate
from .lerobot import LeRobotDataset, LeRobotSource
from .meta import DatasetError
from .normalize import Normalizer
from .transforms import ImageTransform


class Datasets(NamedTuple):
    train: LeRobotDataset
    val: Optional[LeRobotDataset]
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


def build_source(cfg, progress: bool = True) -> LeRobotSource:
    """The dataset named by cfg.data, checked against the model's state/action dims. A LIBERO
    HDF5 source (data.dataset_format: libero_hdf5) has the same interface."""
    d = cfg.data
    state_dim = cfg.model.state_dim
    if d.dataset_format == "libero_hdf5":
        from .libero_hdf5 import LiberoHDF5Source, find_hdf5_files

        source = LiberoHDF5Source(find_hdf5_files(d.dataset_root, d.hdf5_files), camera_keys=d.camera_keys,
                                  state_key=d.state_key if state_dim > 0 else None, action_key=d.action_key,
                                  rename_map=d.rename_map, progress=progress)
        return _check_dims(cfg, source)
    if d.dataset_root and not Path(d.dataset_root).expanduser().exists():
        raise DatasetError(f"data.dataset_root={d.dataset_root!r} does not exist (the demo dataset is made "
                           f"with scripts/make_demo_dataset.py --out {d.dataset_root})")
    source = LeRobotSource(d.dataset_root or d.dataset_repo, camera_keys=d.camera_keys,
                           state_key=d.state_key if state_dim > 0 else None, action_key=d.action_key,
                           rename_map=d.rename_map, revision=d.dataset_revision, cache_dir=d.cache_dir,
                           video_tolerance_s=d.video_tolerance_s, progress=progress)
    return _check_dims(cfg, source)


def _check_dims(cfg, source):
    state_dim = cfg.model.state_dim
    action_dim = cfg.model.action_head.action_dim
    if source.action_dim != action_dim:
        raise DatasetError(f"dataset feature {source.action_feature!r} has {source.action_dim} dims but "
                           f"model.action_head.action_dim={action_dim}; make them agree")
    if state_dim > 0 and source.state_dim != state_dim:
        raise DatasetError(f"dataset feature {source.state_feature!r} has {source.state_dim} dims but "
                           f"model.state_dim={state_dim}; make them agree (0 disables the state)")
    return source


def build_datasets(cfg, normalizer: Optional[Normalizer] = None, progress: bool = True) -> Datasets:
    """Train and validation datasets (split by episode) and the normalizer they use.

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
    train = LeRobotDataset(source, chunk_size=chunk, normalizer=normalizer, episodes=train_eps,
                           transform=ImageTransform(size, flip=d.flip_images, augment=d.augment,
                                                    crop_scale=d.crop_scale, color_jitter=d.color_jitter))
    val = None
    if len(val_eps):
        val = LeRobotDataset(source, chunk_size=chunk, normalizer=normalizer, episodes=val_eps,
                             transform=ImageTransform(size, flip=d.flip_images))
    return Datasets(train, val, normalizer)


def make_loader(dataset, *, batch_size: int, shuffle: bool = False, sampler=None, num_workers: int = 0,
                prefetch_factor: int = 2, persistent_workers: bool = False, pin_memory: bool = False,
                drop_last: bool = False, seed: int = 0, worker_init_fn=None) -> DataLoader:
    """The one place a DataLoader is built: training (one per epoch, with its EpochSampler),
    validation, offline evaluation and both benchmarks. Batches are `batch.collate` dicts. A
    private generator seeded with `seed` drives shuffling and the workers' seeds, so building a
    loader never draws from the global RNG (exact resume). pin_memory applies only with CUDA."""
    extra = {"prefetch_factor": prefetch_factor, "persistent_workers": persistent_workers} if num_workers > 0 else {}
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, num_workers=num_workers,
                      pin_memory=pin_memory and torch.cuda.is_available(), collate_fn=collate,
                      drop_last=drop_last, generator=torch.Generator().manual_seed(seed),
                      worker_init_fn=worker_init_fn, **extra)


def loader_settings(cfg) -> dict:
    """make_loader's worker settings from cfg.data."""
    d = cfg.data
    return {"num_workers": d.num_workers, "prefetch_factor": d.prefetch_factor,
            "persistent_workers": d.persistent_workers, "pin_memory": d.pin_memory}


def build_dataloaders(cfg, normalizer: Optional[Normalizer] = None, progress: bool = True) -> DataLoaders:
    """Shuffled train loader, ordered validation loader (None when val_fraction is 0), normalizer."""
    train, val, normalizer = build_datasets(cfg, normalizer, progress)
    settings = dict(batch_size=cfg.train.batch_size, seed=cfg.train.seed, **loader_settings(cfg))
    val_loader = make_loader(val, shuffle=False, **settings) if val is not None else None
    return DataLoaders(make_loader(train, shuffle=True, **settings), val_loader, normalizer)
