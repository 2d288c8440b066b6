"""A human-readable summary of a LeRobot dataset (what scripts/dataset_stats.py prints).

    from vggt_vla.data.dataset_report import summarize
    print(summarize("data/demo", task="red", episodes="0:50"))

Statistics come from the metadata (meta/stats.json, or the per-episode stats combined over the
selected episodes) unless `compute=True` or the dataset has none; computed statistics cover the
numeric features only (image/video statistics are read from the metadata).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from vggt_vla.constants import BOOKKEEPING_COLUMNS

from .meta import DatasetError, LeRobotMeta, load_meta, read_parquet
from .stats import QUANTILES, Stats, aggregate_stats, vector_stats

STAT_ORDER = ("mean", "std", "min", "max", *QUANTILES, "count")


def parse_episodes(spec: Optional[str]) -> Optional[list[int]]:
    """'0:10' (half-open), '3,5,8', or a mix '0:3,7' -> episode indices; None -> None."""
    if not spec:
        return None
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if ":" in part:
            lo, hi = part.split(":")
            out.extend(range(int(lo), int(hi)))
        elif part:
            out.append(int(part))
    return out


def select_episodes(meta: LeRobotMeta, episodes: Optional[Sequence[int]] = None,
                    task: Optional[str] = None) -> np.ndarray:
    """Positions (in meta.episodes) of the chosen episodes whose tasks contain `task`."""
    pos = np.arange(len(meta.episodes.index))
    if episodes is not None:
        pos = np.array(sorted({meta.episodes.position(int(e)) for e in episodes}), dtype=np.int64)
    if task:
        needle = task.lower()
        pos = np.array([p for p in pos if any(needle in t.lower() for t in meta.episodes.tasks[p])], dtype=np.int64)
    return pos


def _read_numeric(meta: LeRobotMeta, keys: list[str], positions: np.ndarray) -> dict[str, np.ndarray]:
    """Columns `keys` (plus episode_index) of the data files that hold the selected episodes."""
    from tqdm import tqdm

    from .lerobot import _column_to_numpy

    files = sorted({int(meta.episodes.data_file[p]) for p in positions})
    wanted_eps = set(meta.episodes.index[positions].tolist())
    cols = list(dict.fromkeys(keys + ["episode_index"]))
    parts: dict[str, list] = {k: [] for k in cols}
    for f in tqdm(files, desc="reading data", unit="file", disable=len(files) < 8):
        path = meta.data_files[f]
        table = read_parquet(path, cols)
        ep = table.column("episode_index").to_numpy()
        keep = np.isin(ep, list(wanted_eps))
        for k in cols:
            parts[k].append(_column_to_numpy(table.column(k), path, k)[keep])
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}


def summarize(dataset: str, *, episodes: Optional[Sequence[int]] = None, task: Optional[str] = None,
              features: Optional[Sequence[str]] = None, compute: bool = False,
              revision: Optional[str] = None) -> str:
    meta = load_meta(dataset, revision)
    pos = select_episodes(meta, episodes, task)
    if len(pos) == 0:
        raise DatasetError(f"no episode of {meta.root} matches the filters (episodes={episodes}, task={task!r})")
    unknown = [f for f in features or [] if f not in meta.features]
    if unknown:
        raise DatasetError(f"unknown features {unknown}; the dataset has {list(meta.features)}")
    shown = list(features) if features else [k for k in meta.features if k not in BOOKKEEPING_COLUMNS]
    numeric = [k for k in shown if meta.features[k]["dtype"] not in ("image", "video", "string")]
    filtered = len(pos) != len(meta.episodes.index)

    data = _read_numeric(meta, numeric + ["task_index"], pos)
    lines = [f"dataset          {meta.root}",
             f"codebase version {meta.version}",
             f"robot type       {meta.info.get('robot_type')}",
             f"fps              {meta.info['fps']:g}",
             f"episodes         {len(pos)}" + (f" of {len(meta.episodes.index)}" if filtered else ""),
             f"frames           {int(meta.episodes.length[pos].sum())}"
             + (f" of {meta.total_frames}" if filtered else ""),
             f"episode length   min {int(meta.episodes.length[pos].min())}, "
             f"mean {meta.episodes.length[pos].mean():.1f}, max {int(meta.episodes.length[pos].max())}"]
    task_ids, frame_counts = np.unique(data["task_index"].astype(np.int64), return_counts=True)
    ep_counts = {t: 0 for t in task_ids.tolist()}
    for p in pos:
        for t in set(meta.episodes.tasks[p]):
            if t in meta.tasks:
                ep_counts[meta.tasks.index(t)] = ep_counts.get(meta.tasks.index(t), 0) + 1
    lines.append(f"tasks            {len(task_ids)}" + (f" of {len(meta.tasks)}" if filtered else ""))
    for t, n in sorted(zip(task_ids.tolist(), frame_counts.tolist()), key=lambda x: -x[1]):
        lines.append(f"  [{t:3d}] {ep_counts.get(t, 0):5d} episodes {n:7d} frames  {meta.tasks[t]}")

    lines.append("features")
    width = max(len(k) for k in meta.features)
    for key, ft in meta.features.items():
        extra = ""
        if ft["dtype"] == "video":
            info = ft.get("info", {})
            extra = f"  codec {info.get('video.codec')}, {info.get('video.pix_fmt')}"
        names = ft.get("names")
        if isinstance(names, list) and ft["dtype"] not in ("image", "video"):
            extra += "  names " + ", ".join(map(str, names))
        lines.append(f"  {key:<{width}}  {ft['dtype']:<8} {str(list(ft['shape'])):<14}{extra}")

    stats, source = _stats(meta, pos, filtered, compute, numeric, data)
    lines.append(f"statistics ({source})")
    for key in shown:
        if key not in stats:
            lines.append(f"  {key}: none")
            continue
        lines.append(f"  {key}" + ("  (per channel, pixels / 255)" if meta.features[key]["dtype"] in ("image", "video") else ""))
        for name in STAT_ORDER:
            if name in stats[key]:
                values = np.asarray(stats[key][name], dtype=np.float64).reshape(-1)
                body = " ".join(f"{v:9.0f}" if name == "count" else f"{v:9.4f}" for v in values)
                lines.append(f"    {name:<5} {body}")
    return "\n".join(lines)


def _stats(meta: LeRobotMeta, pos: np.ndarray, filtered: bool, compute: bool, numeric: list[str],
           data: dict[str, np.ndarray]) -> tuple[Stats, str]:
    stats: Stats = {}
    source = "none in the metadata"
    if not compute:
        if filtered and meta.episodes.stats:
            stats = aggregate_stats([meta.episodes.stats[p] for p in pos])
            source = "per-episode statistics of the selected episodes, combined"
        elif not filtered:
            stats = meta.load_stats() or {}
            if stats:
                source = "meta/stats.json" if (meta.root / "meta" / "stats.json").is_file() \
                    else "meta/episodes_stats.jsonl, combined"
    had_stats = bool(stats)
    missing = [k for k in numeric if k not in stats]
    if compute or missing:
        for k in (numeric if compute else missing):
            stats[k] = vector_stats(data[k].reshape(len(data[k]), -1))
        source = "computed from the data" if compute or not had_stats else source + "; missing ones computed from the data"
    no_quantiles = [k for k in numeric if "q01" not in stats[k]]
    for k in no_quantiles:  # v2.1 stores none; quantile normalization computes them the same way
        computed = vector_stats(data[k].reshape(len(data[k]), -1))
        stats[k].update({q: computed[q] for q in QUANTILES})
    if no_quantiles:
        source += "; quantiles computed from the data"
    return stats, source
