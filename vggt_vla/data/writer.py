"""Write LeRobot datasets, codebase v2.1 or v3.0, the way lerobot's own writers lay them out.

The tests use it to produce every kind of dataset the reader must handle (v2.1 / v3.0, PNG or
JPEG images in parquet, AV1 or H.264 mp4 video), and vggt_vla/recording/ uses it for the demo
and LIBERO datasets. MP4 files are encoded by mp4.py.
The layout is LeRobot's own (codebase versions v2.1 and v3.0: meta/info.json, episodes, tasks,
stats, chunked parquet and mp4 files); the lerobot package itself is not needed.

    w = LeRobotWriter("out/ds", fps=10, version="v3.0", features={
        "observation.images.image": {"dtype": "video", "shape": [128, 128, 3],
                                     "names": ["height", "width", "channels"]},
        "observation.state": {"dtype": "float32", "shape": [8], "names": None},
        "action": {"dtype": "float32", "shape": [7], "names": None},
    })
    w.add_episode({"observation.images.image": frames_uint8_NHW3, "observation.state": s, "action": a},
                  task="move to the red cube")
    w.finalize()

Episodes are added whole (arrays with one row per frame), not frame by frame: everything in this
project generates an episode before storing it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .geometry import DEPTH_SCALE, depth_png
from .meta import is_depth_feature
from .mp4 import Mp4Writer
from .stats import aggregate_stats, image_sample_indices, image_stats, stats_to_jsonable, vector_stats

# SVT-AV1 prints a banner per encoder to stderr; 1 keeps errors only.
os.environ.setdefault("SVT_LOG", "1")

BOOKKEEPING = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
PATHS = {
    "v2.1": ("data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
             "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"),
    "v3.0": ("data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
             "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"),
}
AV1_ENCODERS = ("libsvtav1", "libaom-av1", "librav1e")


def available_av1_encoder() -> Optional[str]:
    """The first AV1 encoder this PyAV build has (lerobot uses libsvtav1), or None."""
    import av

    for name in AV1_ENCODERS:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # av raises UnknownCodecError (a ValueError) or FFmpegError
            continue
    return None


def _encoder_options(codec: str, crf: int, preset: Optional[int]) -> dict[str, str]:
    if codec == "libsvtav1":
        opts = {"crf": str(crf)}
        if preset is not None:
            opts["preset"] = str(preset)
        return opts
    if codec == "libaom-av1":
        return {"crf": str(crf), "cpu-used": "8", "b": "0"}
    if codec in ("libx264", "h264", "libx265", "hevc"):
        return {"crf": str(crf), "preset": "veryfast"}
    return {}


def _encode_image(img: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    if fmt == "png":
        # Lossless at any level; level 1 encodes 2.3x faster than PIL's default 6 for ~1.4x the
        # bytes (128 px demo frames: 0.24 against 0.55 ms, 880 against 607 bytes). Writing the
        # demo dataset is a stage of the 12-minute main job (docs/experiments/2026-12-06-demo-on-avx2.md).
        Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    else:
        Image.fromarray(img).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _hf_feature(ft: dict, list_type: str) -> dict:
    """The `datasets` feature JSON lerobot puts in the parquet schema metadata."""
    if ft["dtype"] == "image":
        return {"_type": "Image"}
    if list(ft["shape"]) == [1]:
        return {"dtype": ft["dtype"], "_type": "Value"}
    return {"feature": {"dtype": ft["dtype"], "_type": "Value"}, "length": int(ft["shape"][0]),
            "_type": list_type}


def _arrow_type(ft: dict) -> pa.DataType:
    if ft["dtype"] == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    scalar = pa.from_numpy_dtype(np.dtype(ft["dtype"]))
    if list(ft["shape"]) == [1]:
        return scalar
    return pa.list_(pa.field("element", scalar), int(ft["shape"][0]))


def depth_stats(depth_mm: np.ndarray, quantiles: bool = True) -> dict[str, np.ndarray]:
    """Stats of uint16 depth maps [N, H, W, 1] in metres over the pixels with depth, shaped [1, 1, 1]."""
    values = depth_mm[image_sample_indices(len(depth_mm))].reshape(-1)
    values = values[values > 0].astype(np.float64) / DEPTH_SCALE
    if values.size == 0:
        values = np.zeros(1)
    return {k: v.reshape(1, 1, 1) for k, v in vector_stats(values[:, None], quantiles).items()}


class LeRobotWriter:
    """Writes one LeRobot dataset; call `add_episode` per episode, then `finalize` once.

    version: "v2.1" (one parquet per episode, one mp4 per episode and camera, JSONL metadata)
    or "v3.0" (episodes packed into files that roll over at the size limits, parquet metadata).
    video_codec: any FFmpeg encoder PyAV has ("libsvtav1" like lerobot, "libx264", ...).
    image_format: "png" (what lerobot writes) or "jpeg" for dtype "image" features.
    extra_info: more keys for meta/info.json (the recorder stores the simulator versions there).
    """

    def __init__(self, root: Union[str, Path], *, fps: int, features: dict[str, dict],
                 version: str = "v3.0", robot_type: Optional[str] = None,
                 video_codec: str = "libsvtav1", crf: int = 30, gop: int = 2,
                 preset: Optional[int] = None, image_format: str = "png",
                 chunks_size: int = 1000, data_files_size_in_mb: float = 100,
                 video_files_size_in_mb: float = 200, overwrite: bool = False,
                 extra_info: Optional[dict] = None):
        if version not in PATHS:
            raise ValueError(f"version={version!r}; the writer supports {list(PATHS)}")
        if image_format not in ("png", "jpeg"):
            raise ValueError(f"image_format={image_format!r}; use 'png' or 'jpeg'")
        self.root = Path(root)
        if self.root.exists() and any(self.root.iterdir()):
            if not overwrite:
                raise FileExistsError(f"{self.root} exists and is not empty (pass overwrite=True)")
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        for name in BOOKKEEPING:
            if name in features:
                raise ValueError(f"feature {name!r} is added by the writer; leave it out")
        self.version = version
        self.fps = int(fps)
        self.robot_type = robot_type
        self.extra_info = dict(extra_info or {})  # appended to meta/info.json (e.g. simulator versions)
        self.features = {k: dict(v) for k, v in features.items()} | {k: dict(v) for k, v in BOOKKEEPING.items()}
        self.video_keys = [k for k, v in features.items() if v["dtype"] == "video"]
        self.column_keys = [k for k, v in self.features.items() if v["dtype"] != "video"]
        self.video_codec = video_codec
        self.crf, self.gop = crf, gop
        # lerobot's v2.1 writer passes no preset (SVT default 8); v3.0 passes 12.
        self.preset = preset if preset is not None else (12 if version == "v3.0" else None)
        self.image_format = image_format
        self.chunks_size = chunks_size
        self.data_mb, self.video_mb = data_files_size_in_mb, video_files_size_in_mb

        list_type = "Sequence" if version == "v2.1" else "List"
        hf = {"info": {"features": {k: _hf_feature(self.features[k], list_type) for k in self.column_keys}}}
        self.schema = pa.schema([pa.field(k, _arrow_type(self.features[k])) for k in self.column_keys],
                                metadata={"huggingface": json.dumps(hf)})

        self.tasks: dict[str, int] = {}
        self.episodes: list[dict] = []
        self.episode_stats: list[dict] = []
        self.total_frames = 0
        # v3.0 roll-over state: the open data file and one open mp4 per video key.
        self._data_file = (0, 0)
        self._data_writer: Optional[pq.ParquetWriter] = None
        self._data_bytes = 0
        self._video: dict[str, tuple[tuple[int, int], Optional[Mp4Writer]]] = {
            k: ((0, 0), None) for k in self.video_keys}
        self._first_video: dict[str, Path] = {}
        self._finalized = False

    # ----------------------------------------------------------------------------------------
    def add_episode(self, frames: dict[str, np.ndarray], task: Union[str, Sequence[str]]) -> int:
        """Store one episode. `frames` maps every user feature to an array with one row per frame
        (images/videos: uint8 [N, H, W, 3]); `task` is one string or one per frame.
        Returns the episode index."""
        if self._finalized:
            raise RuntimeError("add_episode after finalize")
        user = [k for k in self.features if k not in BOOKKEEPING]
        missing = sorted(set(user) - set(frames))
        extra = sorted(set(frames) - set(user))
        if missing or extra:
            raise ValueError(f"episode features differ from the dataset's: missing {missing}, unknown {extra}")
        n = len(frames[user[0]])
        for k in user:
            arr = np.asarray(frames[k])
            expect = (n, *self.features[k]["shape"])
            if is_depth_feature(self.features[k]):
                ok = arr.shape == expect and arr.dtype == np.uint16
            elif self.features[k]["dtype"] in ("image", "video"):
                ok = arr.shape == expect and arr.dtype == np.uint8
            else:
                ok = arr.shape == expect or (list(self.features[k]["shape"]) == [1] and arr.shape == (n,))
            if not ok:
                raise ValueError(f"feature {k!r}: got shape {arr.shape} dtype {arr.dtype}, expected {expect}")
        tasks = [task] * n if isinstance(task, str) else list(task)
        if len(tasks) != n:
            raise ValueError(f"{len(tasks)} task strings for {n} frames")
        for t in tasks:
            self.tasks.setdefault(t, len(self.tasks))

        ep = len(self.episodes)
        start = self.total_frames
        book = {
            "timestamp": (np.arange(n) / self.fps).astype(np.float32),
            "frame_index": np.arange(n, dtype=np.int64),
            "episode_index": np.full(n, ep, dtype=np.int64),
            "index": np.arange(start, start + n, dtype=np.int64),
            "task_index": np.array([self.tasks[t] for t in tasks], dtype=np.int64),
        }
        columns = {**{k: np.asarray(frames[k]) for k in user}, **book}
        table = self._episode_table(columns, n)
        record = {"episode_index": ep, "tasks": list(dict.fromkeys(tasks)), "length": n}
        if self.version == "v2.1":
            self._write_v21(ep, table, columns)
        else:
            record.update(self._write_v30(table, columns, n, start))
        quantiles = self.version == "v3.0"
        stats = {}
        for k, ft in self.features.items():
            if is_depth_feature(ft):
                stats[k] = depth_stats(columns[k], quantiles)
            elif ft["dtype"] in ("image", "video"):
                stats[k] = image_stats(columns[k], quantiles)
            else:
                stats[k] = vector_stats(columns[k].reshape(n, -1), quantiles)
        self.episode_stats.append(stats)
        self.episodes.append(record)
        self.total_frames += n
        return ep

    def _episode_table(self, columns: dict[str, np.ndarray], n: int) -> pa.Table:
        sep = "_" if self.version == "v2.1" else "-"  # lerobot's temporary PNG names differ
        arrays = []
        for k in self.column_keys:
            ft, values = self.features[k], columns[k]
            if ft["dtype"] == "image":
                ext = "png" if self.image_format == "png" or is_depth_feature(ft) else "jpg"
                blobs = ([depth_png(d) for d in values] if is_depth_feature(ft)
                         else [_encode_image(img, self.image_format) for img in values])
                paths = [f"frame{sep}{i:06d}.{ext}" for i in range(n)]
                arrays.append(pa.StructArray.from_arrays(
                    [pa.array(blobs, pa.binary()), pa.array(paths, pa.string())], names=["bytes", "path"]))
            elif pa.types.is_fixed_size_list(self.schema.field(k).type):
                flat = pa.array(values.reshape(-1).astype(ft["dtype"]))
                arrays.append(pa.FixedSizeListArray.from_arrays(flat, type=self.schema.field(k).type))
            else:
                arrays.append(pa.array(values.reshape(-1).astype(ft["dtype"])))
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _write_v21(self, ep: int, table: pa.Table, columns: dict[str, np.ndarray]) -> None:
        data_tpl, video_tpl = PATHS["v2.1"]
        chunk = ep // self.chunks_size
        path = self.root / data_tpl.format(episode_chunk=chunk, episode_index=ep)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="snappy")
        for key in self.video_keys:
            vpath = self.root / video_tpl.format(episode_chunk=chunk, video_key=key, episode_index=ep)
            enc = self._new_encoder(key, vpath)
            enc.add(columns[key])
            enc.close()

    def _write_v30(self, table: pa.Table, columns: dict[str, np.ndarray], n: int, start: int) -> dict:
        data_tpl, video_tpl = PATHS["v3.0"]
        if self._data_writer is not None and self._data_bytes + table.nbytes >= self.data_mb * 2**20:
            self._data_writer.close()
            self._data_writer, self._data_bytes = None, 0
            self._data_file = self._next_file(self._data_file)
        if self._data_writer is None:
            c, f = self._data_file
            path = self.root / data_tpl.format(chunk_index=c, file_index=f)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._data_writer = pq.ParquetWriter(path, self.schema, compression="snappy")
        self._data_writer.write_table(table, row_group_size=n)  # one row group per episode
        self._data_bytes += table.nbytes
        record = {"data/chunk_index": self._data_file[0], "data/file_index": self._data_file[1],
                  "dataset_from_index": start, "dataset_to_index": start + n}
        for key in self.video_keys:
            (c, f), enc = self._video[key]
            # Roll over when this episode would likely push the file past the size limit; the
            # estimate uses the bytes per frame so far (the encoder is still buffering a few).
            if enc is not None and enc.frames and enc.bytes * (1 + n / enc.frames) >= self.video_mb * 2**20:
                enc.close()
                (c, f), enc = self._next_file((c, f)), None
            if enc is None:
                enc = self._new_encoder(key, self.root / video_tpl.format(video_key=key, chunk_index=c, file_index=f))
            from_ts = enc.frames / self.fps
            enc.add(columns[key])
            self._video[key] = ((c, f), enc)
            record.update({f"videos/{key}/chunk_index": c, f"videos/{key}/file_index": f,
                           f"videos/{key}/from_timestamp": from_ts,
                           f"videos/{key}/to_timestamp": from_ts + n / self.fps})
        return record

    def _next_file(self, cf: tuple[int, int]) -> tuple[int, int]:
        c, f = cf
        return (c + 1, 0) if f + 1 >= self.chunks_size else (c, f + 1)

    def _new_encoder(self, key: str, path: Path) -> Mp4Writer:
        h, w = self.features[key]["shape"][:2]
        enc = Mp4Writer(path, fps=self.fps, width=w, height=h, codec=self.video_codec, gop=self.gop,
                        options=_encoder_options(self.video_codec, self.crf, self.preset))
        self._first_video.setdefault(key, path)
        return enc

    # ----------------------------------------------------------------------------------------
    def finalize(self) -> Path:
        """Close open files and write meta/. Returns the dataset root."""
        if self._finalized:
            return self.root
        if not self.episodes:
            raise RuntimeError("no episodes were added")
        if self._data_writer is not None:
            self._data_writer.close()
        for key, (_, enc) in self._video.items():
            if enc is not None:
                enc.close()
        self._finalized = True
        for key in self.video_keys:
            self.features[key]["info"] = self._video_info(key)
        meta = self.root / "meta"
        meta.mkdir(exist_ok=True)
        if self.version == "v2.1":
            self._write_meta_v21(meta)
        else:
            self._write_meta_v30(meta)
        return self.root

    def _video_info(self, key: str) -> dict:
        import av

        with av.open(str(self._first_video[key])) as container:
            stream = container.streams.video[0]
            info = {
                "video.height": stream.codec_context.height,
                "video.width": stream.codec_context.width,
                "video.codec": stream.codec.canonical_name,
                "video.pix_fmt": stream.codec_context.pix_fmt,
            }
            has_audio = len(container.streams.audio) > 0
        if self.version == "v2.1":
            info.update({"video.is_depth_map": False, "video.fps": self.fps, "video.channels": 3,
                         "has_audio": has_audio})
        else:
            preset = _encoder_options(self.video_codec, self.crf, self.preset).get("preset")
            preset = int(preset) if preset is not None and preset.isdigit() else preset
            info.update({"video.fps": self.fps, "video.channels": 3, "video.g": self.gop,
                         "video.crf": self.crf, "video.preset": preset, "video.fast_decode": 0,
                         "video.video_backend": "pyav", "video.extra_options": {},
                         "is_depth_map": False, "has_audio": has_audio})
        return info

    def _info(self) -> dict:
        n_ep = len(self.episodes)
        data_path, video_path = PATHS[self.version]
        common = {
            "codebase_version": self.version,
            "robot_type": self.robot_type,
            "fps": self.fps,
            "total_episodes": n_ep,
            "total_frames": self.total_frames,
            "total_tasks": len(self.tasks),
            "chunks_size": self.chunks_size,
            "splits": {"train": f"0:{n_ep}"},
            "data_path": data_path,
            "video_path": video_path if self.video_keys else None,
            "features": self.features,
        }
        if self.version == "v2.1":
            order = ["codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks",
                     "total_videos", "total_chunks", "chunks_size", "fps", "splits", "data_path",
                     "video_path", "features"]
            common["total_videos"] = n_ep * len(self.video_keys)
            common["total_chunks"] = (n_ep - 1) // self.chunks_size + 1
        else:
            order = ["codebase_version", "fps", "features", "total_episodes", "total_frames",
                     "total_tasks", "chunks_size", "data_files_size_in_mb", "video_files_size_in_mb",
                     "data_path", "video_path", "robot_type", "splits"]
            common["data_files_size_in_mb"] = self.data_mb
            common["video_files_size_in_mb"] = self.video_mb
        return {**{k: common[k] for k in order}, **self.extra_info}

    def _write_meta_v21(self, meta: Path) -> None:
        (meta / "info.json").write_text(json.dumps(self._info(), indent=4))
        with open(meta / "tasks.jsonl", "w") as f:
            for task, idx in self.tasks.items():
                f.write(json.dumps({"task_index": idx, "task": task}) + "\n")
        with open(meta / "episodes.jsonl", "w") as f:
            for rec in self.episodes:
                f.write(json.dumps(rec) + "\n")
        with open(meta / "episodes_stats.jsonl", "w") as f:
            for rec, stats in zip(self.episodes, self.episode_stats):
                f.write(json.dumps({"episode_index": rec["episode_index"],
                                    "stats": stats_to_jsonable(stats)}) + "\n")

    def _write_meta_v30(self, meta: Path) -> None:
        (meta / "info.json").write_text(json.dumps(self._info(), indent=4))
        (meta / "stats.json").write_text(json.dumps(stats_to_jsonable(aggregate_stats(self.episode_stats)), indent=4))
        tasks = pa.table({"task_index": pa.array(list(self.tasks.values()), pa.int64()),
                          "task": pa.array(list(self.tasks), pa.string())})
        # pandas metadata that makes `task` the DataFrame index, as lerobot's file has.
        pandas_meta = {"index_columns": ["task"], "column_indexes": [], "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None}],
            "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.0"}
        tasks = tasks.replace_schema_metadata({"pandas": json.dumps(pandas_meta)})
        pq.write_table(tasks, meta / "tasks.parquet")

        rows = []
        for rec, stats in zip(self.episodes, self.episode_stats):
            row = dict(rec)
            for feat, feat_stats in stats_to_jsonable(stats).items():
                for name, value in feat_stats.items():
                    row[f"stats/{feat}/{name}"] = value
            row["meta/episodes/chunk_index"] = 0
            row["meta/episodes/file_index"] = 0
            rows.append(row)
        table = pa.Table.from_pylist(rows)
        path = meta / "episodes" / "chunk-000" / "file-000.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="snappy")
