"""Loader throughput: items/s of FrameDataset in one process and through DataLoaders.

    python scripts/benchmark_data.py --dataset data/demo --workers 0 2

Items are drawn in random order (as in training), with the given image size and chunk length,
normalization on and augmentation off unless asked for.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .dataset import FrameDataset
from .lerobot import LeRobotSource
from .loader import make_loader
from .normalize import Normalizer
from .transforms import ImageTransform


def open_dataset(dataset: str | Path, *, camera_keys: Optional[Sequence[str]] = None, image_size: int = 128,
                 chunk_size: int = 10, augment: bool = False, cache_dir: Optional[str] = None) -> FrameDataset:
    source = LeRobotSource(dataset, camera_keys=camera_keys, cache_dir=cache_dir)
    norm = Normalizer.from_stats(source.stats("mean_std"), "mean_std", [source.action_key, source.state_key])
    return FrameDataset(source, chunk_size=chunk_size, normalizer=norm,
                          transform=ImageTransform(image_size, augment=augment))


def items_per_second(ds: FrameDataset, num_items: int = 500, seed: int = 0) -> float:
    """Single process, no DataLoader: plain ds[i] over a random permutation."""
    order = np.random.default_rng(seed).permutation(len(ds))
    order = np.resize(order, num_items)
    for i in order[:10]:  # warm-up: open files, page in the cache
        ds[int(i)]
    start = time.perf_counter()
    for i in order:
        ds[int(i)]
    return num_items / (time.perf_counter() - start)


def loader_items_per_second(ds: FrameDataset, num_workers: int, batch_size: int = 32,
                            num_batches: int = 30, seed: int = 0) -> float:
    """Through a shuffled DataLoader with `num_workers`; the first batches (worker start-up) are
    excluded from the timing."""
    loader = make_loader(ds, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                         persistent_workers=True, seed=seed)
    warmup = 2 if num_workers == 0 else num_workers + 1
    count, start, done = 0, None, 0
    while done < num_batches + warmup:
        for batch in loader:
            done += 1
            if done == warmup:
                start = time.perf_counter()
            elif done > warmup:
                count += len(batch["instruction"])
            if done >= num_batches + warmup:
                break
    return count / (time.perf_counter() - start)
