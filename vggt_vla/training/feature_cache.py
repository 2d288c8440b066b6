"""Disk cache of frozen features, keyed by dataset frame (train.cache_features).

A frozen network maps the same frame to the same features every epoch, so with augmentation off
they can be computed once and read back. Two users: the frozen vision tower and the geometry
teacher (models/geometry.py), each a large share of a training step's FLOPs (ARCHITECTURE_ANALYSIS.md,
"Compute"). Features are stored as float16
in a memory-mapped array [num_frames, V, h*w, C] next to a "filled" flag per frame, under a
directory whose name hashes everything the features depend on (dataset, cameras, network name
and weights, image size, flip).
Change any of them and a new cache is used; delete the directory to reclaim the space.

Size: frames x cameras x h*w x C x 2 bytes, e.g. 10,000 frames x 2 x 256 x 768 x 2 B = 7.9 GB
for DINOv2-base; the VGGT-1B teacher at 224 px stores 2 x 256 x 2048 x 2 B = 2.1 MB per frame
(libero_spatial's ~53k frames: ~110 GB; point train.feature_cache_dir at a disk that holds it).

The model reaches a cache only through `fetch` (the model package never imports this one).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch


def tower_fingerprint(module: torch.nn.Module) -> str:
    """Hash of the tower's weights (the name alone may point to a changed local directory)."""
    h = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class FeatureCache:
    """frame ids -> cached tower features; `store` fills them in as they are computed."""

    def __init__(self, root: str | Path, key: dict, num_frames: int):
        self.key = key
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        self.dir = Path(root) / digest
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "key.json").write_text(json.dumps(key, indent=2, sort_keys=True))
        self.num_frames = num_frames
        self.num_hits = self.num_misses = 0  # frames served from disk / computed, in this process
        self.features = None  # np.memmap [N, V, h*w, C] float16, created on the first store
        self.filled = np.lib.format.open_memmap(self.dir / "filled.npy", mode="r+" if (self.dir / "filled.npy").exists()
                                                else "w+", dtype=np.bool_, shape=(num_frames,))
        meta = self.dir / "shape.json"
        if meta.exists():
            self._open(tuple(json.loads(meta.read_text())["shape"]), "r+")

    def _open(self, shape: tuple, mode: str) -> None:
        self.features = np.lib.format.open_memmap(self.dir / "features.npy", mode=mode, dtype=np.float16,
                                                  shape=shape)

    def fetch(self, frame_ids: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor],
              device: torch.device) -> torch.Tensor:
        """Features [B, ...] of frames `frame_ids` [B] on `device`: cached frames are read back, the
        others are computed by compute(miss [B] bool tensor) -> [m, ...] and stored."""
        ids = frame_ids.cpu().numpy()  # a host sync, on the cache path only
        hit = self.hits(ids)  # [B]
        miss = torch.from_numpy(~hit).to(device)  # [B]
        self.num_hits += int(hit.sum())
        self.num_misses += int((~hit).sum())
        out = None
        if (~hit).any():
            new = compute(miss)  # [m, ...]
            self.store(ids[~hit], new)
            # What a hit will return later: the same frame gives the same features in every epoch,
            # and a run that starts on a filled cache trains exactly as one that filled it.
            new = new.to(torch.float16).to(new.dtype)
            out = new.new_empty(len(ids), *new.shape[1:])
            out[miss] = new
        if hit.any():
            old = self.load(ids[hit]).to(device)  # [k, ...] float16
            if out is None:
                out = torch.empty(len(ids), *old.shape[1:], device=device, dtype=torch.float32)
            out[~miss] = old.to(out.dtype)
        return out

    def hits(self, frame_ids: np.ndarray) -> np.ndarray:
        return self.filled[frame_ids]

    def load(self, frame_ids: np.ndarray) -> torch.Tensor:
        """float16 features [n, V, h*w, C], as stored: widen them on the device, after the copy."""
        return torch.from_numpy(np.asarray(self.features[frame_ids]))

    def store(self, frame_ids: np.ndarray, feats: torch.Tensor) -> None:
        """feats [n, V, h*w, C] for frames `frame_ids`."""
        if self.features is None:
            shape = (self.num_frames, *feats.shape[1:])
            (self.dir / "shape.json").write_text(json.dumps({"shape": list(shape)}))
            self._open(shape, "w+")
        self.features[frame_ids] = feats.detach().to(torch.float16).cpu().numpy()
        self.features.flush()  # features on disk before their flags: a crash never marks garbage
        self.filled[frame_ids] = True
        self.filled.flush()
