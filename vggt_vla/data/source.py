"""The Source interface: what a dataset format hands to FrameDataset and the trainer, and the
table of formats that `build_source` reads (config: data.dataset_format).

A Source is everything read once per dataset, in one global row order (rows of an episode are
consecutive, in frame order):

    camera_keys, state_key, action_key   the config's names (state_key None: no state)
    state_feature, action_feature        the dataset's own names for them (for messages)
    tasks                                list[str], the instructions; task_index [N] points into it
    state [N, S], action [N, A]          float32 numpy columns
    row_episode [N]                      each row's episode position (0..E-1)
    ep_start [E], ep_end [E]             each episode's rows: ep_start <= row < ep_end
    episode_indices [E]                  the dataset's episode numbers (data.episodes selects them)
    episode_position(index) -> int       episode number -> position, DatasetError if absent
    frame(camera, row) -> [H, W, 3] uint8   a camera image, by position in camera_keys
    has_geometry                         whether depth and camera are available (data/geometry.py):
    depth(camera, row) -> [H, W] float32     metres, 0 = none
    camera(camera, row) -> (intrinsics [4], extrinsics [12])
    stats(mode) -> {key: {mean, std, ...}}  state/action statistics under the config's names
    identity() -> dict                   what names the data for the frozen-feature cache
    state_dim, action_dim                (SourceColumns derives them)

Adding a format: one file with a class that has these members (lerobot.py, libero_hdf5.py are
the two there are), and one row in FORMATS below: name -> function(cfg, progress) -> source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Protocol

import numpy as np

from .meta import DatasetError
from .stats import Stats


class Source(Protocol):
    camera_keys: list[str]
    state_key: Optional[str]
    action_key: str
    state_feature: Optional[str]
    action_feature: str
    tasks: list[str]
    state: np.ndarray
    action: np.ndarray
    task_index: np.ndarray
    row_episode: np.ndarray
    ep_start: np.ndarray
    ep_end: np.ndarray
    episode_indices: np.ndarray
    state_dim: int
    action_dim: int

    def episode_position(self, episode_index: int) -> int: ...

    def frame(self, cam: int, row: int) -> np.ndarray: ...

    def stats(self, mode: str) -> Stats: ...

    def identity(self) -> dict: ...


class SourceColumns:
    """The members every source derives the same way from its columns."""

    has_geometry = False  # a source that loads recorded geometry sets it (lerobot.py)

    @property
    def state_dim(self) -> int:
        return self.state.shape[1]

    @property
    def action_dim(self) -> int:
        return self.action.shape[1]


def _open_lerobot(cfg, progress: bool) -> Source:
    from .lerobot import LeRobotSource

    d = cfg.data
    if d.dataset_root and not Path(d.dataset_root).expanduser().exists():
        raise DatasetError(f"data.dataset_root={d.dataset_root!r} does not exist (the demo dataset is made "
                           f"with scripts/make_demo_dataset.py --out {d.dataset_root})")
    return LeRobotSource(d.dataset_root or d.dataset_repo, camera_keys=d.camera_keys,
                         state_key=d.state_key if cfg.model.state_dim > 0 else None, action_key=d.action_key,
                         rename_map=d.rename_map, revision=d.dataset_revision, cache_dir=d.cache_dir,
                         video_tolerance_s=d.video_tolerance_s, geometry=cfg.model.geometry_target.enabled,
                         progress=progress)


def _open_libero_hdf5(cfg, progress: bool) -> Source:
    from .libero_hdf5 import LiberoHDF5Source, find_hdf5_files

    d = cfg.data
    if cfg.model.geometry_target.enabled:
        raise DatasetError("model.geometry_target reads its targets from a LeRobot dataset's geometry features; "
                           "the libero_hdf5 reader does not load them: train on the generation's lerobot/ copy "
                           "(data.dataset_format: lerobot)")
    return LiberoHDF5Source(find_hdf5_files(d.dataset_root, d.hdf5_files), camera_keys=d.camera_keys,
                            state_key=d.state_key if cfg.model.state_dim > 0 else None, action_key=d.action_key,
                            rename_map=d.rename_map, progress=progress)


# data.dataset_format -> how to open it. The config accepts exactly these names.
FORMATS: dict[str, Callable] = {
    "lerobot": _open_lerobot,          # LeRobot v2.1 / v3.0, hub id or local root (lerobot.py)
    "libero_hdf5": _open_libero_hdf5,  # the original LIBERO / robomimic HDF5 files (libero_hdf5.py)
}


def build_source(cfg, progress: bool = True) -> Source:
    """The dataset named by cfg.data, opened by its format's row in FORMATS and checked against
    the model's state/action dims."""
    fmt = cfg.data.dataset_format
    if fmt not in FORMATS:
        raise DatasetError(f"data.dataset_format={fmt!r} is not a known format; choose from {sorted(FORMATS)}")
    source = FORMATS[fmt](cfg, progress)
    state_dim, action_dim = cfg.model.state_dim, cfg.model.action_head.action_dim
    if source.action_dim != action_dim:
        raise DatasetError(f"dataset feature {source.action_feature!r} has {source.action_dim} dims but "
                           f"model.action_head.action_dim={action_dim}; make them agree")
    if state_dim > 0 and source.state_dim != state_dim:
        raise DatasetError(f"dataset feature {source.state_feature!r} has {source.state_dim} dims but "
                           f"model.state_dim={state_dim}; make them agree (0 disables the state)")
    return source
