"""Data layer: LeRobot v2.1 / v3.0 datasets -> the project's batch dict.

    from vggt_vla.data import build_datasets
    train, val, normalizer = build_datasets(cfg)     # the dataset's frames, split by episode

Modules: source (the Source interface and the table of formats), lerobot / libero_hdf5 (the two
formats), dataset (FrameDataset: items over any source), meta (LeRobot metadata), images / video
(frame access), transforms, stats / normalize, geometry (recorded depth and cameras), batch
(collate, to_device), loader (split + make_loader, the one DataLoader builder), writer (LeRobot
writer), mp4 (the one MP4 encoder), dataset_report / loader_benchmark (tools). The demo and
LIBERO datasets are written by vggt_vla/recording/; what a run trains on (these frames or live
scenes) is chosen by vggt_vla/training/training_data.py.
"""

from .batch import collate
from .dataset import FrameDataset
from .lerobot import LeRobotSource
from .loader import DataLoaders, Datasets, build_datasets, split_episodes
from .meta import DatasetError, LeRobotMeta, load_meta
from .normalize import Normalizer
from .source import FORMATS, Source, build_source
from .transforms import ImageTransform

__all__ = [
    "DataLoaders", "DatasetError", "Datasets", "FORMATS", "FrameDataset", "ImageTransform", "LeRobotMeta",
    "LeRobotSource", "Normalizer", "Source", "build_datasets", "build_source", "collate",
    "load_meta", "split_episodes",
]
