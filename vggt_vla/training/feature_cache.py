"""Disk cache of frozen vision-tower features, keyed by dataset frame (train.cache_features).

A frozen tower maps the same frame to the same features every epoch, so with augmentation off
they can be computed once and read back: for DINOv2-base at 224 px the tower is ~60% of a
training step's FLOPs. Features are stored as float16 in a memory-mapped array
[num_frames, V, h*w, C] next to a "filled" flag per frame, under a directory whose name hashes
everything the features depend on (dataset, cameras, tower name and weights, image size, flip).
Change any of them and a new cache is used; delete the directory to reclaim the space.

Size: frames x cameras x h*w x C x 2 bytes, e.g. 10,000 frames x 2 x 256 x 768 x 2 B = 7.9 GB.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

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
        self.features = None  # np.memmap [N, V, h*w, C] float16, created on the first store
        self.filled = np.lib.format.open_memmap(self.dir / "filled.npy", mode="r+" if (self.dir / "filled.npy").exists()
                                                else "w+", dtype=np.bool_, shape=(num_frames,))
        meta = self.dir / "shape.json"
        if meta.exists():
            self._open(tuple(json.loads(meta.read_text())["shape"]), "r+")

    def _open(self, shape: tuple, mode: str) -> None:
        self.features = np.lib.format.open_memmap(self.dir / "features.npy", mode=mode, dtype=np.float16,
                                                  shape=shape)

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
