"""Frame access internals: the parquet image cache and the seeking video reader."""

import pickle

import numpy as np
import pytest

from vggt_vla.constants import CAMERA_KEYS
from vggt_vla.data.images import ParquetImageStore
from vggt_vla.data.dataset import FrameDataset
from vggt_vla.data.lerobot import LeRobotSource
from vggt_vla.data.meta import DatasetError, load_meta
from synthetic_data import make_synthetic_dataset
from vggt_vla.data.transforms import ImageTransform
from vggt_vla.data.video import VideoFrameReader


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("frames")
    image = make_synthetic_dataset(base / "image", version="v2.1", image_size=32)
    video = make_synthetic_dataset(base / "video", version="v2.1", camera_dtype="video", video_codec="libx264",
                                   image_size=64, episode_lengths=(20, 15))
    return image, video


def test_image_cache_is_built_once_and_keyed_by_the_files(data, tmp_path):
    image, _ = data
    meta = load_meta(image.root)
    store = ParquetImageStore(meta.data_files, list(CAMERA_KEYS), tmp_path)
    again = ParquetImageStore(meta.data_files, list(CAMERA_KEYS), tmp_path)
    assert again.dir == store.dir and store.num_rows == len(image.state)
    assert len(list((tmp_path / "parquet_images").iterdir())) == 1
    np.testing.assert_array_equal(store.image(1, 5), image.frames[CAMERA_KEYS[1]][5])
    other = ParquetImageStore(meta.data_files, list(CAMERA_KEYS[:1]), tmp_path)  # other columns, other cache
    assert other.dir != store.dir


def test_unwritable_cache_dir_is_named(data, tmp_path):
    image, _ = data
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(DatasetError, match="data.cache_dir"):
        ParquetImageStore(load_meta(image.root).data_files, list(CAMERA_KEYS), blocker / "cache")


def test_forward_decoding_equals_seeking(data):
    _, video = data
    path = load_meta(video.root).video[CAMERA_KEYS[0]].paths[0]
    forward = VideoFrameReader()
    sequential = [forward.frame(path, k / 10) for k in range(20)]  # no seeks after the first
    for k in np.random.default_rng(0).permutation(20):
        fresh = VideoFrameReader()  # every frame by a seek from scratch
        np.testing.assert_array_equal(fresh.frame(path, k / 10), sequential[k])
    err = np.abs(sequential[7].astype(float) - video.frames[CAMERA_KEYS[0]][7]).mean()
    assert err < 6


def test_reader_with_one_open_file_alternates_correctly(data):
    _, video = data
    paths = load_meta(video.root).video[CAMERA_KEYS[1]].paths
    reader = VideoFrameReader(max_open=1)
    reference = VideoFrameReader()
    for k in range(10):
        p = paths[k % 2]
        np.testing.assert_array_equal(reader.frame(p, k / 10), reference.frame(p, k / 10))
    assert len(reader._open) == 1


def test_datasets_pickle_without_copying_frames(data, tmp_path):
    """Spawn-started workers receive the dataset pickled: decoders reopen, caches re-map."""
    for truth in data:
        source = LeRobotSource(truth.root, camera_keys=list(CAMERA_KEYS), cache_dir=tmp_path)
        ds = FrameDataset(source, chunk_size=3, transform=ImageTransform(32))
        before = ds[4]["images"]
        blob = pickle.dumps(ds)
        assert len(blob) < 200_000
        np.testing.assert_array_equal(pickle.loads(blob)[4]["images"].numpy(), before.numpy())


def test_episodes_stored_out_of_order_across_files(tmp_path):
    """v3.0 files need not hold episodes in index order (e.g. after merging datasets)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    truth = make_synthetic_dataset(tmp_path / "ds", image_size=32, data_files_size_in_mb=0.001)
    data = tmp_path / "ds" / "data" / "chunk-000"
    assert (data / "file-001.parquet").is_file()
    (data / "file-000.parquet").rename(data / "tmp.parquet")
    (data / "file-001.parquet").rename(data / "file-000.parquet")
    (data / "tmp.parquet").rename(data / "file-001.parquet")
    eps_path = tmp_path / "ds" / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    eps = pq.read_table(eps_path)
    files = eps.column("data/file_index").to_pylist()
    swapped = [{0: 1, 1: 0}.get(f, f) for f in files]
    eps = eps.set_column(eps.column_names.index("data/file_index"), "data/file_index", pa.array(swapped, pa.int64()))
    pq.write_table(eps, eps_path)

    source = LeRobotSource(tmp_path / "ds", camera_keys=list(CAMERA_KEYS), cache_dir=tmp_path / "c")
    assert source.ep_start[1] == 0  # episode 1 now comes first
    ds = FrameDataset(source, chunk_size=4, transform=ImageTransform(32), episodes=[0])
    start, end = truth.episode_rows[0]
    for i in range(end - start):
        item = ds[i]
        np.testing.assert_array_equal(item["state"].numpy(), truth.state[start + i])
        np.testing.assert_allclose(item["images"][0].numpy().transpose(1, 2, 0) * 255,
                                   truth.frames[CAMERA_KEYS[0]][start + i], atol=1e-3)
