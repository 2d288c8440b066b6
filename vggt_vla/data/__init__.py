"""Data layer: LeRobot v2.1 / v3.0 datasets -> the project's batch dict.

    from vggt_vla.data import build_dataloaders
    train, val, normalizer = build_dataloaders(cfg)

Modules: meta (find + read metadata), lerobot (samples), images / video (frame access),
transforms, stats / normalize, batch (collate, to_device), loader (split + make_loader, the one
DataLoader builder), writer (LeRobot writer),
demo (the embedded demo dataset), synthetic (test datasets), summary / benchmark (tools).
"""

from .batch import collate
from .lerobot import LeRobotDataset, LeRobotSource
from .loader import DataLoaders, Datasets, build_dataloaders, build_datasets, split_episodes
from .meta import DatasetError, LeRobotMeta, load_meta
from .normalize import Normalizer
from .transforms import ImageTransform

__all__ = [
    "DataLoaders", "DatasetError", "Datasets", "ImageTransform", "LeRobotDataset", "LeRobotMeta",
    "LeRobotSource", "Normalizer", "build_dataloaders", "build_datasets", "collate", "load_meta",
    "split_episodes",
]
