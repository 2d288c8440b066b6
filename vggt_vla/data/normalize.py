"""Normalization of state and actions, saved with every checkpoint.

Every mode is the affine map y = (x - center) / scale, per dimension:

    mean_std   center = mean,              scale = std
    min_max    center = (max + min) / 2,   scale = (max - min) / 2      -> [-1, 1]
    quantile   center = (q99 + q01) / 2,   scale = (q99 - q01) / 2      -> [-1, 1] for 98% of data
    none       center = 0,                 scale = 1

Dimensions whose scale is (near) zero, e.g. a constant state entry, get scale 1 so they map to
x - center instead of blowing up.

    norm = Normalizer.from_stats(stats, mode="mean_std", keys=["observation.state", "action"])
    y = norm.normalize("action", actions)          # numpy or torch, any leading shape
    x = norm.unnormalize("action", y)              # at inference
    ckpt["normalizer"] = norm.to_dict()            # plain JSON-able dict
    norm = Normalizer.from_dict(ckpt["normalizer"])
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

from .stats import Stats

MODES = ("mean_std", "min_max", "quantile", "none")
REQUIRED_STATS = {"mean_std": ("mean", "std"), "min_max": ("min", "max"),
                  "quantile": ("q01", "q99"), "none": ()}
_EPS = 1e-6

Array = Union[np.ndarray, torch.Tensor]


def _affine(stats: dict[str, np.ndarray], mode: str) -> tuple[np.ndarray, np.ndarray]:
    if mode == "mean_std":
        center, scale = stats["mean"], stats["std"]
    elif mode == "min_max":
        center, scale = (stats["max"] + stats["min"]) / 2, (stats["max"] - stats["min"]) / 2
    elif mode == "quantile":
        center, scale = (stats["q99"] + stats["q01"]) / 2, (stats["q99"] - stats["q01"]) / 2
    else:
        center, scale = np.zeros_like(stats["mean"]), np.ones_like(stats["mean"])
    center = np.asarray(center, dtype=np.float64).reshape(-1)
    scale = np.asarray(scale, dtype=np.float64).reshape(-1)
    scale = np.where(scale < _EPS, 1.0, scale)
    return center.astype(np.float32), scale.astype(np.float32)


class Normalizer:
    """Per-feature affine normalization; `stats` keeps only what the mode needs (plus mean)."""

    def __init__(self, stats: Stats, mode: str):
        if mode not in MODES:
            raise ValueError(f"normalization mode {mode!r} is not valid; choose one of {list(MODES)}")
        self.mode = mode
        self.stats = {k: {s: np.asarray(v, dtype=np.float64) for s, v in feat.items()} for k, feat in stats.items()}
        self._affine = {k: _affine(feat, mode) for k, feat in self.stats.items()}

    @classmethod
    def from_stats(cls, stats: Stats, mode: str, keys: Sequence[str]) -> "Normalizer":
        """Keep the statistics of `keys` that `mode` needs; raise naming what is missing."""
        if mode not in MODES:
            raise ValueError(f"normalization mode {mode!r} is not valid; choose one of {list(MODES)}")
        needed = ("mean",) + REQUIRED_STATS[mode]
        kept = {}
        for key in keys:
            feat = stats.get(key)
            missing = [s for s in needed if feat is None or s not in feat]
            if missing:
                raise KeyError(f"statistics for {key!r} lack {missing} needed by mode {mode!r}")
            kept[key] = {s: np.asarray(feat[s], dtype=np.float64) for s in needed}
        return cls(kept, mode)

    @property
    def keys(self) -> list[str]:
        return list(self.stats)

    def dim(self, key: str) -> int:
        return len(self._affine[key][0])

    def normalize(self, key: str, x: Array) -> Array:
        center, scale = self._params(key, x)
        return (x - center) / scale

    def unnormalize(self, key: str, y: Array) -> Array:
        center, scale = self._params(key, y)
        return y * scale + center

    def _params(self, key: str, x: Array):
        if key not in self._affine:
            raise KeyError(f"no normalization statistics for {key!r}; have {self.keys}")
        center, scale = self._affine[key]
        if x.shape[-1] != len(center):
            raise ValueError(f"{key!r} has {x.shape[-1]} dims but its statistics have {len(center)}")
        if isinstance(x, torch.Tensor):
            return (torch.as_tensor(center, dtype=x.dtype, device=x.device),
                    torch.as_tensor(scale, dtype=x.dtype, device=x.device))
        return center.astype(x.dtype, copy=False), scale.astype(x.dtype, copy=False)

    def to_dict(self) -> dict:
        """Plain dict (JSON / torch.save safe) with the mode and the statistics used."""
        return {"mode": self.mode,
                "stats": {k: {s: v.tolist() for s, v in feat.items()} for k, feat in self.stats.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "Normalizer":
        return cls({k: {s: np.asarray(v) for s, v in feat.items()} for k, feat in data["stats"].items()},
                   data["mode"])

    def __repr__(self) -> str:
        return f"Normalizer(mode={self.mode!r}, keys={self.keys})"
