"""Feature statistics the way LeRobot stores them (min, max, mean, std, count, q01..q99).

Used three ways: the writer computes per-episode stats and combines them into ``meta/stats.json``;
the reader combines v2.1 ``episodes_stats.jsonl`` on load; and when a dataset has no statistics
the reader computes them over the numeric columns it already holds in memory.

A stats dict maps a feature name to ``{stat_name: np.ndarray(float64)}``. Vector features have
one value per dimension; image features have shape [3, 1, 1] (per channel, pixels / 255), ready to
broadcast against CHW tensors. ``count`` is always shape [1].
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

# LeRobot v3.0 stores these quantiles; v2.1 stores none.
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
BASIC_STATS = ("min", "max", "mean", "std", "count")

Stats = dict[str, dict[str, np.ndarray]]


def vector_stats(values: np.ndarray, quantiles: bool = True) -> dict[str, np.ndarray]:
    """Stats over the frame axis of a [N] or [N, D] array (population std, like LeRobot)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]  # [N] -> [N, 1]: scalar features are stored as 1-element lists
    out = {
        "min": x.min(axis=0),
        "max": x.max(axis=0),
        "mean": x.mean(axis=0),
        "std": x.std(axis=0),
        "count": np.array([x.shape[0]], dtype=np.float64),
    }
    if quantiles:
        qs = np.quantile(x, list(QUANTILES.values()), axis=0)  # [5, D]
        out.update({name: qs[i] for i, name in enumerate(QUANTILES)})
    return out


def image_sample_indices(length: int) -> np.ndarray:
    """Frames LeRobot samples for image stats: all below 100, else max(100, min(L**0.75, 10000))."""
    if length < 100:
        return np.arange(length)
    n = int(max(100, min(length ** 0.75, 10000)))
    return np.round(np.linspace(0, length - 1, n)).astype(np.int64)


def image_stats(frames: np.ndarray, quantiles: bool = True) -> dict[str, np.ndarray]:
    """Per-channel stats of uint8 frames [N, H, W, 3], in [0, 1] units, shaped [3, 1, 1].

    Works from a 256-bin histogram per channel instead of sorting millions of pixels, which
    keeps the demo writer fast; the quantiles match numpy's default (linear) interpolation.
    """
    frames = frames[image_sample_indices(len(frames))]
    flat = frames.reshape(-1, frames.shape[-1])  # [N*H*W, 3]
    names = ("min", "max", "mean", "std") + (tuple(QUANTILES) if quantiles else ())
    out: dict[str, list] = {k: [] for k in names}
    values = np.arange(256, dtype=np.float64) / 255.0
    for c in range(flat.shape[1]):
        hist = np.bincount(flat[:, c], minlength=256).astype(np.float64)  # [256]
        n = hist.sum()
        mean = (hist * values).sum() / n
        var = (hist * (values - mean) ** 2).sum() / n
        nz = np.flatnonzero(hist)
        out["min"].append(values[nz[0]])
        out["max"].append(values[nz[-1]])
        out["mean"].append(mean)
        out["std"].append(np.sqrt(var))
        if quantiles:
            cum = np.cumsum(hist)
            for name, q in QUANTILES.items():
                out[name].append(_hist_quantile(cum, values, q))
    result = {k: np.asarray(v, dtype=np.float64).reshape(-1, 1, 1) for k, v in out.items()}
    result["count"] = np.array([len(frames)], dtype=np.float64)
    return result


def _hist_quantile(cum: np.ndarray, values: np.ndarray, q: float) -> float:
    """numpy 'linear' quantile of the sorted sample described by cumulative counts `cum`."""
    pos = q * (cum[-1] - 1)
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    v_lo = values[np.searchsorted(cum, lo, side="right")]
    v_hi = values[np.searchsorted(cum, hi, side="right")]
    return float(v_lo + (pos - lo) * (v_hi - v_lo))


def aggregate_stats(per_episode: Iterable[dict[str, dict[str, np.ndarray]]]) -> Stats:
    """Combine per-episode stats: min of mins, max of maxes, count-weighted mean, pooled variance
    (within-episode variance plus the spread of the episode means), count-weighted quantiles.
    A stat missing from any episode (e.g. quantiles in v2.1) is left out of the result."""
    episodes = list(per_episode)
    if not episodes:
        return {}
    out: Stats = {}
    for feature in episodes[0]:
        parts = [ep[feature] for ep in episodes if feature in ep]
        counts = np.array([float(np.asarray(p["count"]).reshape(-1)[0]) for p in parts])  # [E]
        total = counts.sum()
        w = counts / total
        shape = np.asarray(parts[0]["mean"]).shape
        wb = w.reshape((-1,) + (1,) * len(shape))  # broadcast weights over the stat's shape
        means = np.stack([np.asarray(p["mean"], dtype=np.float64) for p in parts])
        stds = np.stack([np.asarray(p["std"], dtype=np.float64) for p in parts])
        mean = (wb * means).sum(axis=0)
        var = (wb * (stds ** 2 + (means - mean) ** 2)).sum(axis=0)
        feat = {
            "min": np.min(np.stack([np.asarray(p["min"], dtype=np.float64) for p in parts]), axis=0),
            "max": np.max(np.stack([np.asarray(p["max"], dtype=np.float64) for p in parts]), axis=0),
            "mean": mean,
            "std": np.sqrt(var),
            "count": np.array([total]),
        }
        for name in QUANTILES:
            if all(name in p for p in parts):
                qs = np.stack([np.asarray(p[name], dtype=np.float64) for p in parts])
                feat[name] = (wb * qs).sum(axis=0)
        out[feature] = feat
    return out


def stats_to_jsonable(stats: Stats) -> dict:
    """np arrays -> nested lists; `count` as ints, like LeRobot writes it."""
    out = {}
    for feature, feat in stats.items():
        out[feature] = {}
        for name, value in feat.items():
            arr = np.asarray(value)
            out[feature][name] = arr.astype(np.int64).tolist() if name == "count" else arr.tolist()
    return out


def stats_from_jsonable(data: dict) -> Stats:
    return {f: {k: np.asarray(v, dtype=np.float64) for k, v in feat.items()} for f, feat in data.items()}


def load_stats_json(path: Path) -> Stats:
    return stats_from_jsonable(json.loads(Path(path).read_text()))
