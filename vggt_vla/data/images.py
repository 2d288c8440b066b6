"""Random access to images stored in parquet (dtype "image": PNG/JPEG bytes per cell).

Parquet pages are compressed, so fetching one cell means decompressing its whole page; for
random-access training that is far too slow. On first use the encoded bytes of the needed
camera columns are copied once into a flat cache file per camera (bytes + offsets), which is
then memory-mapped: a sample costs one slice and one PNG/JPEG decode, memory is shared between
DataLoader workers through the page cache, and nothing per row lives in Python objects.

    store = ParquetImageStore(meta.data_files, ["observation.images.image"], cache_dir)
    rgb = store.image(0, row)   # [H, W, 3] uint8

The cache is keyed by the data files' paths, sizes and mtimes, so a changed dataset rebuilds it.
Default location: $VGGT_VLA_CACHE or ~/.cache/vggt_vla (DataConfig.cache_dir overrides).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .meta import DatasetError, read_parquet


def default_cache_dir() -> Path:
    return Path(os.environ.get("VGGT_VLA_CACHE", Path.home() / ".cache" / "vggt_vla"))


def decode_image(buf) -> np.ndarray:
    """PNG/JPEG bytes -> [H, W, 3] uint8 RGB."""
    from PIL import Image

    with Image.open(io.BytesIO(buf)) as img:
        if img.mode != "RGB":
            img = img.convert("RGB")
        return np.asarray(img)


class ParquetImageStore:
    """Encoded image bytes of some parquet columns, in global row order, memory-mapped."""

    def __init__(self, data_files: Sequence[Path], keys: Sequence[str], cache_dir: Optional[Path] = None,
                 progress: bool = True):
        self.keys = list(keys)
        cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        fingerprint = _fingerprint(data_files, self.keys)
        self.dir = cache_root / "parquet_images" / fingerprint
        if not (self.dir / "manifest.json").is_file():
            _build(data_files, self.keys, self.dir, progress)
        self._open()

    def _open(self) -> None:
        manifest = json.loads((self.dir / "manifest.json").read_text())
        self.num_rows = int(manifest["num_rows"])
        self._offsets = [np.load(self.dir / f"{i}.offsets.npy") for i in range(len(self.keys))]  # [N+1] int64
        self._data = [_memmap(self.dir / f"{i}.bin") for i in range(len(self.keys))]

    def __getstate__(self):  # pickled for spawn-started workers: re-map instead of copying bytes
        return {"keys": self.keys, "dir": self.dir}

    def __setstate__(self, state):
        self.keys, self.dir = state["keys"], state["dir"]
        self._open()

    def encoded(self, key_pos: int, row: int) -> memoryview:
        off = self._offsets[key_pos]
        return memoryview(self._data[key_pos][off[row]:off[row + 1]])

    def image(self, key_pos: int, row: int) -> np.ndarray:
        """[H, W, 3] uint8 of camera `self.keys[key_pos]` at global row `row`."""
        try:
            return decode_image(self.encoded(key_pos, row))
        except Exception as err:  # PIL.UnidentifiedImageError, truncated data
            raise DatasetError(f"row {row} of image feature {self.keys[key_pos]!r} is not a readable "
                               f"PNG/JPEG ({type(err).__name__}: {err})") from err


def _memmap(path: Path) -> np.ndarray:
    if path.stat().st_size == 0:  # np.memmap refuses empty files
        return np.zeros(0, dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")


def _fingerprint(data_files: Sequence[Path], keys: Sequence[str]) -> str:
    h = hashlib.sha1()
    for path in data_files:
        st = Path(path).stat()
        h.update(f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    h.update(json.dumps(list(keys)).encode())
    return h.hexdigest()[:20]


def _build(data_files: Sequence[Path], keys: Sequence[str], out_dir: Path, progress: bool) -> None:
    import pyarrow as pa
    from tqdm import tqdm

    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=out_dir.parent))
    except OSError as err:
        raise DatasetError(f"cannot create the image cache under {out_dir.parent} ({err}); set "
                           f"data.cache_dir or $VGGT_VLA_CACHE to a writable directory") from err
    try:
        sinks = [open(tmp / f"{i}.bin", "wb") for i in range(len(keys))]
        offsets = [[np.zeros(1, dtype=np.int64)] for _ in keys]
        total = [0] * len(keys)
        rows = 0
        files = tqdm(data_files, desc="caching parquet images", unit="file",
                     disable=not progress or len(data_files) < 4)
        for path in files:
            table = read_parquet(path, list(keys))
            for i, key in enumerate(keys):
                col = table.column(key).combine_chunks()
                # datasets' Image feature is struct<bytes, path>; plain binary columns also occur
                blobs = col.field("bytes") if pa.types.is_struct(col.type) else col
                if blobs.null_count:
                    bad = int(np.flatnonzero(blobs.is_null().to_numpy(zero_copy_only=False))[0])
                    raise DatasetError(f"{path}: image feature {key!r} has no bytes in row {bad} "
                                       f"(images stored only as paths are not supported)")
                blobs = blobs.cast(pa.large_binary())
                bufs = blobs.buffers()  # [validity, offsets int64, data]
                off = np.frombuffer(bufs[1], dtype=np.int64)[blobs.offset: blobs.offset + len(blobs) + 1]
                data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
                sinks[i].write(memoryview(data[off[0]:off[-1]]))
                offsets[i].append(off[1:] - off[0] + total[i])
                total[i] += int(off[-1] - off[0])
            rows += table.num_rows
        for i, sink in enumerate(sinks):
            sink.close()
            np.save(tmp / f"{i}.offsets.npy", np.concatenate(offsets[i]))
        (tmp / "manifest.json").write_text(json.dumps(
            {"keys": list(keys), "num_rows": rows, "files": [str(p) for p in data_files]}))
        try:
            os.replace(tmp, out_dir)  # atomic: a concurrent builder may have won; both are equal
        except OSError:
            if not (out_dir / "manifest.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
