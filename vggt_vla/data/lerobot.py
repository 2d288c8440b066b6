"""LeRobot v2.1 / v3.0 reader: a `Source` (see source.py) over a LeRobot dataset.

    source = LeRobotSource("lerobot/libero_spatial_image",
                           camera_keys=["observation.images.image", "observation.images.wrist_image"])
    ds = FrameDataset(source, chunk_size=10, transform=ImageTransform(224, flip=True),
                      normalizer=Normalizer.from_stats(source.stats("mean_std"), "mean_std",
                                                       [source.state_key, source.action_key]))
    item = ds[0]   # images [V,3,H,W] float, instruction str, state [S], actions [T,A], action_pad_mask [T]

`LeRobotSource` is everything read once per dataset: the metadata, the numeric columns (state,
action, episode/frame index, timestamp, task index) as numpy arrays in global row order, and
access to camera frames (parquet image bytes through a memory-mapped cache, mp4 through PyAV
seeking). `FrameDataset` (dataset.py) is a view over some of its episodes (train or validation)
that builds items. Per-sample work is a few numpy index operations plus decoding exactly one
frame per camera.

Adapting a new LeRobot dataset usually needs only config: `data.camera_keys` (in model camera
order), `data.rename_map` when its cameras are named differently (e.g. LIBERO conversions that
call the wrist camera `observation.images.image2`), `data.state_key` / `data.action_key`, and
`data.flip_images` if its renderer stores images upside down. Datasets whose action chunk should
not come from consecutive rows (e.g. a different control rate) need a change in
`data/dataset.py:chunk_rows`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from vggt_vla.constants import BOOKKEEPING_COLUMNS, camera_extrinsics_key, camera_intrinsics_key, depth_key

from .geometry import check_geometry_features, decode_depth
from .images import ParquetImageStore
from .meta import DatasetError, LeRobotMeta, load_meta, read_parquet
from .normalize import REQUIRED_STATS
from .source import SourceColumns
from .stats import Stats, vector_stats
from .video import VideoFrameReader

_INDEX_COLUMNS = tuple(c for c in BOOKKEEPING_COLUMNS if c != "index")  # what a sample needs


class LeRobotSource(SourceColumns):
    """A LeRobot dataset loaded for training: metadata, numeric columns, frame access.

    camera_keys / state_key / action_key use the config's names (camera_keys None: every camera
    of the dataset); `rename_map` maps dataset feature names to those names. state_key=None reads no state (a model with state_dim 0).
    """

    def __init__(self, dataset: str | Path, *, camera_keys: Optional[Sequence[str]],
                 state_key: Optional[str] = "observation.state", action_key: str = "action",
                 rename_map: Optional[dict[str, str]] = None, revision: Optional[str] = None,
                 cache_dir: Optional[str | Path] = None, video_tolerance_s: float = 1e-4,
                 geometry: bool = False, progress: bool = True):
        self.meta: LeRobotMeta = load_meta(dataset, revision)
        inverse = {v: k for k, v in (rename_map or {}).items()}  # config name -> dataset name
        self.camera_keys = list(camera_keys) if camera_keys else self.meta.camera_keys
        self.state_key, self.action_key = state_key, action_key
        self.camera_features = [inverse.get(k, k) for k in self.camera_keys]
        self._check_features(inverse)
        self.state_feature = inverse.get(state_key, state_key) if state_key else None
        self.action_feature = inverse.get(action_key, action_key)
        self.tasks = self.meta.tasks
        self._load_columns(progress)

        image_feats = [f for f in self.camera_features if self.meta.features[f]["dtype"] == "image"]
        self._images = (ParquetImageStore(self.meta.data_files, image_feats, cache_dir, progress)
                        if image_feats else None)
        if self._images is not None and self._images.num_rows != self.num_rows:
            raise DatasetError(f"image cache {self._images.dir} has {self._images.num_rows} rows but the "
                               f"data files have {self.num_rows}; delete the cache directory")
        self.has_geometry = geometry
        if geometry:
            self._load_geometry(cache_dir, progress)
        self._video = VideoFrameReader(tolerance_s=video_tolerance_s)
        # Per camera: ("image", column in the image store) or ("video", VideoIndex).
        self._cams = []
        for f in self.camera_features:
            if self.meta.features[f]["dtype"] == "image":
                self._cams.append(("image", image_feats.index(f)))
            else:
                self._cams.append(("video", self.meta.video[f]))

    # ----------------------------------------------------------------------------------------
    def _check_features(self, inverse: dict[str, str]) -> None:
        feats = self.meta.features
        available = self.meta.camera_keys
        for name, feat in zip(self.camera_keys, self.camera_features):
            if feat not in feats or feats[feat]["dtype"] not in ("image", "video"):
                renamed = f" (renamed from {feat!r} by data.rename_map)" if feat != name else ""
                raise DatasetError(
                    f"camera {name!r}{renamed} is not an image/video feature of {self.meta.root}; "
                    f"available cameras: {available}. Fix data.camera_keys or map a dataset camera "
                    f"with data.rename_map (e.g. {{'observation.images.image2': "
                    f"'observation.images.wrist_image'}})")
        numeric = [k for k, v in feats.items() if v["dtype"] not in ("image", "video", "string")]
        for role, key in (("state", self.state_key), ("action", self.action_key)):
            if key is None:
                continue
            feat = inverse.get(key, key)
            if feat not in feats:
                raise DatasetError(f"{role} feature {feat!r} is not in {self.meta.root}; numeric "
                                   f"features: {numeric}. Set data.{role}_key")
        for key in _INDEX_COLUMNS:
            if key not in feats:
                raise DatasetError(f"{self.meta.root / 'meta' / 'info.json'} lacks bookkeeping feature {key!r}")

    def _load_geometry(self, cache_dir, progress: bool) -> None:
        """Depth maps (through the image store) and camera parameter columns of every camera."""
        missing = check_geometry_features(self.meta.features, self.camera_features)
        if missing:
            raise DatasetError(
                f"{self.meta.root} has no recorded geometry (missing {missing[:3]}{'...' if len(missing) > 3 else ''}), "
                f"which model.geometry_target needs. Generate the demonstrations with "
                f"scripts/generate_libero_demos.py --geometry (an existing generation: add --geometry --rerender, "
                f"no new simulation), or set model.geometry_target.weight: 0")
        depth_feats = [depth_key(f) for f in self.camera_features]
        self._depth = ParquetImageStore(self.meta.data_files, depth_feats, cache_dir, progress)
        cols = {}
        for path in self.meta.data_files:
            table = read_parquet(path, [k for f in self.camera_features
                                        for k in (camera_intrinsics_key(f), camera_extrinsics_key(f))])
            for key in table.column_names:
                cols.setdefault(key, []).append(_column_to_numpy(table.column(key), path, key))
        self._intrinsics = [np.concatenate(cols[camera_intrinsics_key(f)]).astype(np.float32).reshape(-1, 4)
                            for f in self.camera_features]  # V x [N, 4]
        self._extrinsics = [np.concatenate(cols[camera_extrinsics_key(f)]).astype(np.float32).reshape(-1, 12)
                            for f in self.camera_features]  # V x [N, 12]

    def depth(self, cam: int, row: int) -> np.ndarray:
        """Camera `cam`'s depth map at `row`: float32 [H, W] metres (0 = none)."""
        try:
            return decode_depth(self._depth.encoded(cam, row))
        except Exception as err:
            raise DatasetError(f"row {row} of depth feature {self._depth.keys[cam]!r} is not a readable "
                               f"16-bit PNG ({type(err).__name__}: {err})") from err

    def camera(self, cam: int, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Camera `cam`'s intrinsics [4] and camera-from-base extrinsics [12] at `row`."""
        return self._intrinsics[cam][row], self._extrinsics[cam][row]

    def _load_columns(self, progress: bool) -> None:
        from tqdm import tqdm

        wanted = [self.action_feature] + ([self.state_feature] if self.state_feature else []) + list(_INDEX_COLUMNS)
        parts: dict[str, list[np.ndarray]] = {k: [] for k in wanted}
        files = self.meta.data_files
        for path in tqdm(files, desc="reading parquet columns", unit="file",
                         disable=not progress or len(files) < 8):
            table = read_parquet(path, wanted)
            for key in wanted:
                parts[key].append(_column_to_numpy(table.column(key), path, key))
        cols = {k: np.concatenate(v) for k, v in parts.items()}
        self.num_rows = len(cols["episode_index"])
        self.action = cols[self.action_feature].astype(np.float32).reshape(self.num_rows, -1)  # [N, A]
        self.state = (cols[self.state_feature].astype(np.float32).reshape(self.num_rows, -1)
                      if self.state_feature else np.zeros((self.num_rows, 0), np.float32))  # [N, S]
        self.timestamp = cols["timestamp"].astype(np.float64).reshape(-1)  # [N]
        self.task_index = cols["task_index"].astype(np.int64).reshape(-1)  # [N]
        self.frame_index = cols["frame_index"].astype(np.int64).reshape(-1)  # [N]
        self._index_episodes(cols["episode_index"].astype(np.int64).reshape(-1))
        if self.task_index.size and (self.task_index.min() < 0 or self.task_index.max() >= len(self.tasks)):
            raise DatasetError(f"{self.meta.root}: task_index values outside 0..{len(self.tasks) - 1}")

    def _index_episodes(self, episode_index: np.ndarray) -> None:
        """Row ranges per episode; the episode (position in the metadata) of every row."""
        eps = self.meta.episodes
        pos = np.searchsorted(eps.index, episode_index)
        pos_c = np.minimum(pos, len(eps.index) - 1)
        unknown = eps.index[pos_c] != episode_index
        if unknown.any():
            raise DatasetError(f"{self.meta.root}: data rows of episode {int(episode_index[unknown][0])}, "
                               f"which the episode metadata does not list")
        counts = np.bincount(pos_c, minlength=len(eps.index))
        bad = np.flatnonzero(counts != eps.length)
        if bad.size:
            e = bad[0]
            raise DatasetError(f"{self.meta.root}: episode {int(eps.index[e])} has {int(counts[e])} data rows but "
                               f"its metadata says length {int(eps.length[e])}")
        # Episodes may come in any order across files, but each must be one run of rows in frame
        # order: then row = start + frame_index, which the check below verifies for every row.
        starts = np.zeros(len(eps.index), dtype=np.int64)
        present, first = np.unique(pos_c, return_index=True)
        starts[present] = first
        self.ep_start = starts  # [E]
        self.ep_end = starts + eps.length  # [E]
        self.row_episode = pos_c.astype(np.int64)  # [N]
        if not np.array_equal(self.frame_index, np.arange(self.num_rows) - starts[pos_c]):
            raise DatasetError(f"{self.meta.root}: the rows of an episode are not one contiguous run in "
                               f"frame order (files {[p.name for p in self.meta.data_files[:3]]}...)")

    @property
    def episode_indices(self) -> np.ndarray:
        return self.meta.episodes.index

    def episode_position(self, episode_index: int) -> int:
        return self.meta.episodes.position(episode_index)

    def identity(self) -> dict:
        return {"dataset": str(Path(self.meta.root).resolve()), "total_frames": int(self.meta.total_frames),
                "codebase_version": self.meta.version}

    def frame(self, cam: int, row: int) -> np.ndarray:
        """Camera `cam` (position in camera_keys) at global row `row`: [H, W, 3] uint8."""
        kind, where = self._cams[cam]
        if kind == "image":
            return self._images.image(where, row)
        ep = self.row_episode[row]
        path = where.paths[where.file_id[ep]]
        return self._video.frame(path, float(where.from_timestamp[ep] + self.timestamp[row]))

    def stats(self, mode: str) -> Stats:
        """State/action statistics under the config's key names: meta/stats.json (or v2.1's
        per-episode stats combined) when they hold what `mode` needs, else computed exactly over
        the loaded columns."""
        meta_stats = self.meta.load_stats() or {}
        out = {}
        pairs = [(self.action_key, self.action_feature, self.action)]
        if self.state_key:
            pairs.append((self.state_key, self.state_feature, self.state))
        for name, feature, values in pairs:
            have = meta_stats.get(feature, {})
            need = ("mean", "std", "min", "max") + REQUIRED_STATS.get(mode, ())
            if all(s in have for s in need) and np.asarray(have["mean"]).size == values.shape[1]:
                out[name] = have
            else:
                out[name] = vector_stats(values, quantiles=True)
        return out


def _column_to_numpy(col, path: Path, key: str) -> np.ndarray:
    """A parquet column of scalars or fixed/variable lists of numbers -> [N] or [N, D]."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    n = len(arr)
    if pa.types.is_fixed_size_list(arr.type) or pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        flat = pc.list_flatten(arr).to_numpy(zero_copy_only=False)
        if n and flat.size % n:
            raise DatasetError(f"{path}: column {key!r} has rows of different lengths")
        return flat.reshape(n, -1)
    return arr.to_numpy(zero_copy_only=False)
