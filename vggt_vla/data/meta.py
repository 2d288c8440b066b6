"""Locate a LeRobot dataset (hub repo id or local directory) and read its metadata, v2.1 or v3.0.

    from vggt_vla.data.meta import load_meta
    meta = load_meta("lerobot/libero_spatial_image")   # or a local root directory
    meta.version, meta.fps, meta.tasks, meta.episodes.length, meta.data_files

Everything here is metadata (``meta/`` plus the file layout); the frames themselves are read by
``lerobot.py``. The two layouts differ in where per-episode information lives (JSONL vs parquet)
and in how files are named; this module hides both behind ``LeRobotMeta``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .stats import Stats, aggregate_stats, load_stats_json, stats_from_jsonable

SUPPORTED_VERSIONS = ("v2.0", "v2.1", "v3.0")  # v2.0 has the v2.1 layout plus meta/stats.json


class DatasetError(ValueError):
    """The dataset is missing, malformed, or does not match the configuration. The message
    names the file, key or dimension at fault."""


def resolve_dataset_root(dataset: str, revision: Optional[str] = None) -> Path:
    """A local directory, or a hub dataset repo id downloaded with huggingface_hub.

    A path that exists is used as is. Anything else that looks like "org/name" is fetched with
    `snapshot_download` (cached by huggingface_hub, so the second call is offline-safe).
    """
    path = Path(dataset).expanduser()
    if path.exists():
        if not (path / "meta" / "info.json").is_file():
            raise DatasetError(f"{path} is not a LeRobot dataset: {path / 'meta' / 'info.json'} is missing")
        return path
    if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", dataset):
        raise DatasetError(f"dataset {dataset!r} is neither an existing directory nor a hub repo id (org/name)")
    from huggingface_hub import snapshot_download

    try:
        local = snapshot_download(repo_id=dataset, repo_type="dataset", revision=revision)
    except Exception as err:  # network, auth, missing repo: all end here with the same advice
        raise DatasetError(
            f"dataset {dataset!r} is not a local directory, and downloading it from the Hugging Face hub "
            f"failed ({type(err).__name__}: {err}); check the repo id and network, or set "
            f"data.dataset_root to a local copy") from err
    return resolve_dataset_root(local)


@dataclass
class VideoIndex:
    """Where each episode's frames of one video key live (arrays indexed by episode position)."""

    file_id: np.ndarray        # int [E]: index into `paths`
    from_timestamp: np.ndarray  # float64 [E]: time of the episode's frame 0 inside its file
    paths: list[Path]


@dataclass
class EpisodeTable:
    """Per-episode metadata as arrays, in episode_index order ("position" = row here)."""

    index: np.ndarray          # int64 [E] episode_index
    length: np.ndarray         # int64 [E] frames
    tasks: list[list[str]]     # distinct task strings per episode
    data_file: np.ndarray      # int [E]: index into LeRobotMeta.data_files
    stats: list[dict] = field(default_factory=list)  # per-episode stats when the dataset has them

    def position(self, episode_index: int) -> int:
        pos = int(np.searchsorted(self.index, episode_index))
        if pos >= len(self.index) or self.index[pos] != episode_index:
            raise DatasetError(f"episode {episode_index} is not in the dataset "
                               f"(episodes {int(self.index[0])}..{int(self.index[-1])})")
        return pos


@dataclass
class LeRobotMeta:
    root: Path
    version: str
    info: dict
    fps: float
    features: dict
    tasks: list[str]           # by task_index
    episodes: EpisodeTable
    data_files: list[Path]     # data parquet files in global row order
    video: dict[str, VideoIndex]  # per video key

    @property
    def total_frames(self) -> int:
        return int(self.episodes.length.sum())

    def feature_keys(self, *dtypes: str) -> list[str]:
        return [k for k, v in self.features.items() if not dtypes or v["dtype"] in dtypes]

    @property
    def camera_keys(self) -> list[str]:
        """Image/video features that are colour cameras (depth maps, data/geometry.py, are not)."""
        return [k for k in self.feature_keys("image", "video") if not is_depth_feature(self.features[k])]

    def load_stats(self) -> Optional[Stats]:
        """Dataset statistics: meta/stats.json (v3.0, v2.0), else v2.1's per-episode stats
        combined, else None (the caller computes them from the data)."""
        path = self.root / "meta" / "stats.json"
        if path.is_file():
            try:
                return load_stats_json(path)
            except (ValueError, OSError) as err:
                raise DatasetError(f"cannot read {path}: {err}") from err
        if self.episodes.stats:
            return aggregate_stats(self.episodes.stats)
        return None


def is_depth_feature(feature: dict) -> bool:
    """A depth map stored as an image feature: one channel (data/geometry.py)."""
    shape = feature.get("shape") or []
    return feature.get("dtype") == "image" and len(shape) == 3 and shape[-1] == 1


def load_meta(dataset: str | Path, revision: Optional[str] = None) -> LeRobotMeta:
    """Read meta/ of a dataset given as a local root or hub repo id."""
    root = resolve_dataset_root(str(dataset), revision)
    info = _read_json(root / "meta" / "info.json")
    version = info.get("codebase_version")
    if version not in SUPPORTED_VERSIONS:
        raise DatasetError(f"{root / 'meta' / 'info.json'}: codebase_version {version!r} is not supported "
                           f"(supported: {', '.join(SUPPORTED_VERSIONS)}); convert the dataset with lerobot")
    for key in ("fps", "features", "data_path"):
        if key not in info:
            raise DatasetError(f"{root / 'meta' / 'info.json'} has no {key!r} field")
    if version == "v3.0":
        tasks, episodes, data_files, video = _load_v30(root, info)
    else:
        tasks, episodes, data_files, video = _load_v2(root, info)
    return LeRobotMeta(root=root, version=version, info=info, fps=float(info["fps"]),
                       features=info["features"], tasks=tasks, episodes=episodes,
                       data_files=data_files, video=video)


# --------------------------------------------------------------------------------------------
# v2.x: JSONL metadata, one parquet and one mp4 per episode
# --------------------------------------------------------------------------------------------


def _load_v2(root: Path, info: dict):
    task_rows = _read_jsonl(root / "meta" / "tasks.jsonl")
    tasks = _tasks_by_index([(r["task_index"], r["task"]) for r in task_rows], root / "meta" / "tasks.jsonl")
    ep_rows = sorted(_read_jsonl(root / "meta" / "episodes.jsonl"), key=lambda r: r["episode_index"])
    if not ep_rows:
        raise DatasetError(f"{root / 'meta' / 'episodes.jsonl'} lists no episodes")
    stats_path = root / "meta" / "episodes_stats.jsonl"
    per_ep_stats = []
    if stats_path.is_file():
        by_ep = {r["episode_index"]: r["stats"] for r in _read_jsonl(stats_path)}
        if all(r["episode_index"] in by_ep for r in ep_rows):
            per_ep_stats = [stats_from_jsonable(by_ep[r["episode_index"]]) for r in ep_rows]
    chunks_size = int(info.get("chunks_size", 1000))
    index = np.array([r["episode_index"] for r in ep_rows], dtype=np.int64)
    files = [root / info["data_path"].format(episode_chunk=int(e) // chunks_size, episode_index=int(e))
             for e in index]
    episodes = EpisodeTable(index=index, length=np.array([r["length"] for r in ep_rows], dtype=np.int64),
                            tasks=[list(r.get("tasks", [])) for r in ep_rows],
                            data_file=np.arange(len(ep_rows)), stats=per_ep_stats)
    video = {}
    video_keys = [k for k, v in info["features"].items() if v["dtype"] == "video"]
    if video_keys and not info.get("video_path"):
        raise DatasetError(f"{root / 'meta' / 'info.json'} has video features {video_keys} but no video_path")
    for key in video_keys:
        paths = [root / info["video_path"].format(episode_chunk=int(e) // chunks_size, video_key=key,
                                                  episode_index=int(e)) for e in index]
        video[key] = VideoIndex(file_id=np.arange(len(index)), from_timestamp=np.zeros(len(index)), paths=paths)
    return tasks, episodes, files, video


# --------------------------------------------------------------------------------------------
# v3.0: parquet metadata, episodes packed into shared files
# --------------------------------------------------------------------------------------------


def _load_v30(root: Path, info: dict):
    tasks_table = read_parquet(root / "meta" / "tasks.parquet", columns=["task_index", "task"])
    tasks = _tasks_by_index(zip(tasks_table.column("task_index").to_pylist(),
                                tasks_table.column("task").to_pylist()), root / "meta" / "tasks.parquet")
    ep_files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not ep_files:
        raise DatasetError(f"no episode metadata files under {root / 'meta' / 'episodes'}")
    import pyarrow as pa

    table = pa.concat_tables([read_parquet(p) for p in ep_files], promote_options="default")
    table = table.sort_by("episode_index")
    cols = set(table.column_names)
    required = ["episode_index", "length", "data/chunk_index", "data/file_index"]
    missing = [c for c in required if c not in cols]
    if missing:
        raise DatasetError(f"episode metadata under {root / 'meta' / 'episodes'} lacks columns {missing}")

    def col(name):
        return table.column(name).to_numpy()

    index = col("episode_index").astype(np.int64)
    data_cf = list(zip(col("data/chunk_index").tolist(), col("data/file_index").tolist()))
    unique_cf = sorted(set(data_cf))
    files = [root / info["data_path"].format(chunk_index=c, file_index=f) for c, f in unique_cf]
    file_pos = {cf: i for i, cf in enumerate(unique_cf)}
    stat_cols = [c for c in table.column_names if c.startswith("stats/")]
    per_ep_stats = []
    if stat_cols:
        pylists = {c: table.column(c).to_pylist() for c in stat_cols}
        for i in range(len(index)):
            ep: dict = {}
            for c in stat_cols:
                _, rest = c.split("/", 1)
                feature, stat = rest.rsplit("/", 1)
                if pylists[c][i] is not None:
                    ep.setdefault(feature, {})[stat] = np.asarray(pylists[c][i], dtype=np.float64)
            per_ep_stats.append(ep)
    tasks_col = table.column("tasks").to_pylist() if "tasks" in cols else [[] for _ in index]
    episodes = EpisodeTable(index=index, length=col("length").astype(np.int64), tasks=tasks_col,
                            data_file=np.array([file_pos[cf] for cf in data_cf]), stats=per_ep_stats)

    video = {}
    video_keys = [k for k, v in info["features"].items() if v["dtype"] == "video"]
    for key in video_keys:
        names = [f"videos/{key}/{s}" for s in ("chunk_index", "file_index", "from_timestamp")]
        missing = [n for n in names if n not in cols]
        if missing:
            raise DatasetError(f"episode metadata lacks {missing} for video feature {key!r}")
        if not info.get("video_path"):
            raise DatasetError(f"{root / 'meta' / 'info.json'} has video feature {key!r} but no video_path")
        cf = list(zip(col(names[0]).tolist(), col(names[1]).tolist()))
        uniq = sorted(set(cf))
        pos = {x: i for i, x in enumerate(uniq)}
        paths = [root / info["video_path"].format(video_key=key, chunk_index=c, file_index=f) for c, f in uniq]
        video[key] = VideoIndex(file_id=np.array([pos[x] for x in cf]),
                                from_timestamp=col(names[2]).astype(np.float64), paths=paths)
    return tasks, episodes, files, video


# --------------------------------------------------------------------------------------------
# small readers that name the file when it cannot be read
# --------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(f"missing file {path}")
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError) as err:
        raise DatasetError(f"cannot read {path}: {err}") from err


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise DatasetError(f"missing file {path}")
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (ValueError, OSError) as err:
        raise DatasetError(f"cannot read {path}: {err}") from err


def read_parquet(path: Path, columns: Optional[list[str]] = None):
    """A parquet table (only `columns`, if given); a DatasetError naming the file when it cannot be read."""
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DatasetError(f"missing file {path}")
    try:
        return pq.read_table(path, columns=columns)
    except Exception as err:  # ArrowInvalid, OSError, KeyError for a missing column...
        which = f"columns {columns} of " if columns else ""
        raise DatasetError(f"cannot read {which}{path}: {type(err).__name__}: {err}") from err


def _tasks_by_index(pairs, path: Path) -> list[str]:
    by_index = {int(i): str(t) for i, t in pairs}
    if sorted(by_index) != list(range(len(by_index))):
        raise DatasetError(f"{path}: task indices are not 0..{len(by_index) - 1}")
    return [by_index[i] for i in range(len(by_index))]
