"""FrameDataset: training items over some episodes of any Source, whatever its format.

    item = FrameDataset(source, chunk_size=10, transform=ImageTransform(224))[0]
    # images [V,3,S,S] float, instruction str, state [S], actions [T,A], action_pad_mask [T],
    # goal_state [S], row

The action chunk of row r is rows r .. r+T-1 of its episode; steps past the episode's end repeat
its last action and are marked in action_pad_mask (excluded from the loss). goal_state is the
state at the episode's last row (the target of model.goal_loss_weight). With a geometry_grid, items
also carry the recorded geometry per patch (data/geometry.py; model.geometry_target): geometry
[V, h*w, 4] (base-frame x, y, z and depth, metres) and geometry_valid [V, h*w].
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .normalize import Normalizer
from .source import Source
from .transforms import ImageTransform


class FrameDataset(Dataset):
    """Items in the batch format over some episodes of any `Source` (source.py).

    episodes: dataset episode indices to use (None: all). chunk_size: T future actions per item,
    starting at the item's own step; steps past the episode end repeat the last action and are
    marked True in `action_pad_mask`.
    """

    def __init__(self, source: Source, *, chunk_size: int, transform: ImageTransform,
                 normalizer: Optional[Normalizer] = None, episodes: Optional[Sequence[int]] = None,
                 geometry_grid: Optional[tuple[int, int]] = None):
        self.source = source
        # Per-patch geometry targets on this (h, w) patch grid (data/geometry.py), or None.
        self.geometry_grid = geometry_grid
        if geometry_grid is not None and not source.has_geometry:
            raise ValueError("geometry_grid needs a source opened with its geometry (has_geometry)")
        self.chunk_size = int(chunk_size)
        self.transform = transform
        self.normalizer = normalizer
        positions = (np.arange(len(source.episode_indices)) if episodes is None
                     else np.array([source.episode_position(int(e)) for e in episodes], dtype=np.int64))
        self.episodes = source.episode_indices[positions]
        self.rows = (np.concatenate([np.arange(source.ep_start[p], source.ep_end[p]) for p in positions])
                     if len(positions) else np.zeros(0, np.int64))  # [len] global rows
        # Normalize whole columns once instead of per sample.
        self._state = source.state
        self._action = source.action
        if normalizer is not None:
            if source.state_key and source.state_dim:
                self._state = normalizer.normalize(source.state_key, source.state).astype(np.float32)
            self._action = normalizer.normalize(source.action_key, source.action).astype(np.float32)

    def __len__(self) -> int:
        return len(self.rows)

    def _episode_end(self, row: int) -> int:
        """One past the last row of `row`'s episode."""
        return int(self.source.ep_end[self.source.row_episode[row]])

    def __getitem__(self, i: int) -> dict:
        row = int(self.rows[i])
        src = self.source
        end = self._episode_end(row)
        chunk, pad = chunk_rows(row, end, self.chunk_size)  # [T], [T]
        last = end - 1
        frames = [src.frame(c, row) for c in range(len(src.camera_keys))]  # V x [H, W, 3] uint8
        extra = {}
        if self.geometry_grid is None:
            images = self.transform.cameras(frames)  # [V, 3, S, S]
        else:
            cams = range(len(frames))
            images, geometry, valid = self.transform.with_geometry(
                frames, [src.depth(c, row) for c in cams], [src.camera(c, row) for c in cams], self.geometry_grid)
            extra = {"geometry": geometry, "geometry_valid": valid}  # [V, h*w, 4], [V, h*w]
        return {**extra,
            "images": images,
            "instruction": src.tasks[src.task_index[row]],
            "state": torch.from_numpy(self._state[row].copy()),  # [S]
            "actions": torch.from_numpy(self._action[chunk]),  # [T, A] (fancy index copies)
            "action_pad_mask": torch.from_numpy(pad),  # [T] bool, True = padded
            "goal_state": torch.from_numpy(self._state[last].copy()),  # [S]: where the episode ends
            "row": row,  # dataset row: the key of the frozen-feature cache
        }


def chunk_rows(start: int, end: int, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the chunk_size actions from `start` on, clamped to the episode's last row (end - 1),
    and the pad mask (True = past the end, excluded from the loss): [T] int, [T] bool."""
    rows = np.arange(start, start + chunk_size)  # [T]
    return np.minimum(rows, end - 1), rows >= end
