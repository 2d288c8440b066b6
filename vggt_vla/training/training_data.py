"""What a run trains on: the one place the training set is chosen, for the trainer, the
DataLoaders and the benchmark alike.

    from vggt_vla.training.training_data import build_dataloaders, build_training_data
    train, val, normalizer = build_training_data(cfg)        # datasets
    loaders = build_dataloaders(cfg)                         # shuffled train, ordered validation

The training set is the dataset's recorded frames (data/loader.build_datasets), or, with
data.live.enabled, new scenes of the demo env simulated now (recording/live_scenes.py). Validation
and the normalisation statistics come from the dataset either way. This module sits above
vggt_vla.data and vggt_vla.sim (through recording), which never import each other.
"""

from __future__ import annotations

from typing import Optional

from vggt_vla.data.loader import DataLoaders, Datasets, build_datasets, loader_settings, make_loader
from vggt_vla.data.normalize import Normalizer


def build_training_data(cfg, normalizer: Optional[Normalizer] = None, progress: bool = True,
                        processes: int = 1, live_items: Optional[int] = None) -> Datasets:
    """Train and validation datasets and the normalizer they use.

    normalizer: reuse these statistics (from a checkpoint) instead of the dataset's.
    processes: training processes; the live scenes hold one epoch of train.max_steps optimizer
    steps for all of them. live_items: that many live items instead (the benchmark's few steps).
    """
    datasets = build_datasets(cfg, normalizer, progress)
    live = cfg.data.live
    if not live.enabled:
        return datasets
    from vggt_vla.recording.live_scenes import LiveSceneFrames

    t = cfg.train
    items = live_items or t.max_steps * t.batch_size * t.accumulation_steps * processes
    train = LiveSceneFrames(items, live, chunk_size=cfg.model.action_head.chunk_size,
                            transform=datasets.train.transform, normalizer=datasets.normalizer, seed=t.seed,
                            image_size=cfg.sim.camera_size or 128)
    return Datasets(train, datasets.val, datasets.normalizer)


def describe_training_set(train) -> str:
    """One line: what the training set is (the trainer logs it, the benchmark prints it)."""
    from vggt_vla.recording.live_scenes import LiveSceneFrames

    if isinstance(train, LiveSceneFrames):
        return (f"live scenes of the demo env (data.live): {len(train.scenes)} new scenes simulated in "
                f"{train.simulate_s:.1f} s, {len(train)} items, not the dataset's recorded frames")
    return f"recorded frames of the dataset: {len(train)} items"


def build_dataloaders(cfg, normalizer: Optional[Normalizer] = None, progress: bool = True) -> DataLoaders:
    """Shuffled train loader, ordered validation loader (None when val_fraction is 0), normalizer."""
    train, val, normalizer = build_training_data(cfg, normalizer, progress)
    settings = dict(batch_size=cfg.train.batch_size, seed=cfg.train.seed, **loader_settings(cfg))
    val_loader = make_loader(val, shuffle=False, **settings) if val is not None else None
    return DataLoaders(make_loader(train, shuffle=True, **settings), val_loader, normalizer)
