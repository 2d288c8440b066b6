"""Small synthetic LeRobot datasets with known contents, for the data tests.

    ds = make_synthetic_dataset(tmp / "ds", version="v2.1", camera_dtype="video", video_codec="libx264")
    ds.root, ds.state[row], ds.action[row], ds.frames[camera][row], ds.episode_rows[e]

Every frame is distinct and smooth (sinusoids whose phase moves with the global row), so a codec
keeps it close to the original while a wrong frame is far off. States and actions are random
float32, so they must come back bit-exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from vggt_vla.constants import CAMERA_KEYS

from vggt_vla.data.writer import LeRobotWriter



@dataclass
class SyntheticDataset:
    root: Path
    state: np.ndarray               # [N, S] float32, global row order
    action: np.ndarray              # [N, A] float32
    frames: dict[str, np.ndarray]   # camera -> [N, H, W, 3] uint8 as written
    episode_rows: list[tuple[int, int]]  # [start, end) per episode
    tasks: list[str]                # task string per episode


def synthetic_frame(row: int, cam: int, size: int) -> np.ndarray:
    """[size, size, 3] uint8, distinct per (row, cam) and codec friendly."""
    y, x = np.mgrid[0:size, 0:size] / size
    phase = 0.131 * row + 0.5 * cam
    r = 128 + 100 * np.sin(2 * np.pi * (x + phase))
    g = 128 + 100 * np.sin(2 * np.pi * (y + 0.7 * phase))
    b = np.full_like(x, 40 + (row * 11 + cam * 60) % 170)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def make_synthetic_dataset(root, *, version: str = "v3.0", camera_dtype: str = "image",
                           episode_lengths: Sequence[int] = (7, 12, 3, 9), cameras: Sequence[str] = CAMERA_KEYS,
                           image_size: int = 64, state_dim: int = 8, action_dim: int = 7,
                           video_codec: str = "libsvtav1", image_format: str = "png",
                           tasks: Optional[Sequence[str]] = None, fps: int = 10, seed: int = 0,
                           **writer_kwargs) -> SyntheticDataset:
    rng = np.random.default_rng(seed)
    features = {cam: {"dtype": camera_dtype, "shape": [image_size, image_size, 3],
                      "names": ["height", "width", "channels"]} for cam in cameras}
    features["observation.state"] = {"dtype": "float32", "shape": [state_dim], "names": None}
    features["action"] = {"dtype": "float32", "shape": [action_dim], "names": None}
    writer = LeRobotWriter(root, fps=fps, features=features, version=version, video_codec=video_codec,
                           image_format=image_format, overwrite=True, **writer_kwargs)
    task_names = list(tasks) if tasks else [f"task number {i % 3}" for i in range(len(episode_lengths))]
    n = int(sum(episode_lengths))
    state = rng.normal(size=(n, state_dim)).astype(np.float32)
    action = rng.uniform(-1, 1, size=(n, action_dim)).astype(np.float32)
    frames = {cam: np.stack([synthetic_frame(r, c, image_size) for r in range(n)]) for c, cam in enumerate(cameras)}
    rows, start = [], 0
    for e, length in enumerate(episode_lengths):
        sl = slice(start, start + length)
        episode = {cam: frames[cam][sl] for cam in cameras}
        episode["observation.state"] = state[sl]
        episode["action"] = action[sl]
        writer.add_episode(episode, task=task_names[e])
        rows.append((start, start + length))
        start += length
    writer.finalize()
    return SyntheticDataset(Path(root), state, action, frames, rows, task_names)
