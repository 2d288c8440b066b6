"""Write every kind of LeRobot dataset with our writer and read it back.

Numeric features must come back bit-exact; PNG images exactly; JPEG and video within codec
tolerance and closer to the right frame than to its neighbours (so a wrong seek is caught).
"""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from vggt_vla.constants import CAMERA_KEYS
from vggt_vla.data.dataset import FrameDataset
from vggt_vla.data.lerobot import LeRobotSource
from vggt_vla.data.meta import load_meta
from synthetic_data import make_synthetic_dataset
from vggt_vla.data.transforms import ImageTransform
from vggt_vla.data.writer import available_av1_encoder

AV1 = available_av1_encoder()
SIZE = 64
CHUNK = 8

# (id, version, camera dtype, writer options)
KINDS = [
    ("v21-png", "v2.1", "image", {}),
    ("v30-png", "v3.0", "image", {}),
    ("v30-png-multifile", "v3.0", "image", {"data_files_size_in_mb": 0.02}),
    ("v30-jpeg", "v3.0", "image", {"image_format": "jpeg"}),
    ("v21-av1", "v2.1", "video", {"video_codec": AV1}),
    ("v30-av1", "v3.0", "video", {"video_codec": AV1}),
    ("v21-h264", "v2.1", "video", {"video_codec": "libx264"}),
    ("v30-h264-multifile", "v3.0", "video", {"video_codec": "libx264", "video_files_size_in_mb": 0.002}),
]


@pytest.fixture(scope="module", params=KINDS, ids=[k[0] for k in KINDS])
def written(request, tmp_path_factory):
    name, version, dtype, opts = request.param
    if opts.get("video_codec", "x") is None:
        pytest.skip("this PyAV build has no AV1 encoder (libsvtav1 / libaom-av1 / librav1e)")
    root = tmp_path_factory.mktemp(name) / "ds"
    truth = make_synthetic_dataset(root, version=version, camera_dtype=dtype, image_size=SIZE, **opts)
    source = LeRobotSource(root, camera_keys=list(CAMERA_KEYS), cache_dir=tmp_path_factory.mktemp("cache"))
    return name, truth, source


def _items(source, order=None):
    ds = FrameDataset(source, chunk_size=CHUNK, transform=ImageTransform(SIZE))
    order = range(len(ds)) if order is None else order
    return ds, {int(ds.rows[i]): ds[i] for i in order}


def test_metadata_matches_what_was_written(written):
    name, truth, source = written
    meta = source.meta
    assert meta.version == ("v2.1" if name.startswith("v21") else "v3.0")
    assert meta.fps == 10
    assert meta.total_frames == len(truth.state) == source.num_rows
    assert list(meta.episodes.length) == [e - s for s, e in truth.episode_rows]
    assert meta.tasks == list(dict.fromkeys(truth.tasks))
    assert [t[0] for t in meta.episodes.tasks] == truth.tasks
    assert meta.camera_keys == list(CAMERA_KEYS)
    info = json.loads((truth.root / "meta" / "info.json").read_text())
    assert info["features"]["observation.state"]["shape"] == [8]
    assert info["features"]["index"] == {"dtype": "int64", "shape": [1], "names": None}
    if "multifile" in name:
        kind = "data" if "png" in name else "video"
        files = meta.data_files if kind == "data" else meta.video[CAMERA_KEYS[0]].paths
        assert len(files) > 1, "the size limit should have rolled over to several files"
    if meta.version == "v3.0" and "video" in str(meta.features[CAMERA_KEYS[0]]["dtype"]) and "multifile" not in name:
        # several episodes share one mp4: later episodes start later in it
        assert meta.video[CAMERA_KEYS[0]].from_timestamp[1] == pytest.approx(truth.episode_rows[1][0] / 10)


def test_numeric_features_and_instructions_are_exact(written):
    _, truth, source = written
    _, items = _items(source)
    for row, item in items.items():
        ep = next(i for i, (s, e) in enumerate(truth.episode_rows) if s <= row < e)
        end = truth.episode_rows[ep][1]
        want_rows = np.minimum(np.arange(row, row + CHUNK), end - 1)
        np.testing.assert_array_equal(item["state"].numpy(), truth.state[row])
        np.testing.assert_array_equal(item["actions"].numpy(), truth.action[want_rows])
        np.testing.assert_array_equal(item["action_pad_mask"].numpy(), np.arange(row, row + CHUNK) >= end)
        assert item["instruction"] == truth.tasks[ep]


def test_images_match_within_codec_tolerance(written):
    name, truth, source = written
    _, items = _items(source)
    lossless = "png" in name
    for row, item in items.items():
        assert item["images"].shape == (len(CAMERA_KEYS), 3, SIZE, SIZE)
        got = item["images"].numpy().transpose(0, 2, 3, 1) * 255.0  # [V, H, W, 3]
        for v, cam in enumerate(CAMERA_KEYS):
            err = np.abs(got[v] - truth.frames[cam][row]).mean()
            if lossless:
                assert np.abs(got[v] - truth.frames[cam][row]).max() < 1e-3
                continue
            assert err < 6.0, f"{cam} row {row}: mean abs error {err:.2f} / 255"
            for other in (row - 1, row + 1):  # the neighbouring frames must be further away
                if 0 <= other < len(truth.state):
                    assert err < np.abs(got[v] - truth.frames[cam][other]).mean()


def test_random_access_equals_sequential(written):
    _, _, source = written
    ds, sequential = _items(source)
    order = np.random.default_rng(1).permutation(len(ds))  # backward seeks, file switches
    _, shuffled = _items(source, order)
    for row, item in shuffled.items():
        np.testing.assert_array_equal(item["images"].numpy(), sequential[row]["images"].numpy())


def test_layout_is_lerobots(written):
    """The files sit where lerobot puts them and have its column types."""
    name, truth, source = written
    root = truth.root
    if name.startswith("v21"):
        assert (root / "data/chunk-000/episode_000002.parquet").is_file()
        assert (root / "meta/episodes.jsonl").is_file() and (root / "meta/episodes_stats.jsonl").is_file()
        assert not (root / "meta/stats.json").exists()
        if "av1" in name or "h264" in name:
            assert (root / f"videos/chunk-000/{CAMERA_KEYS[1]}/episode_000003.mp4").is_file()
    else:
        assert (root / "data/chunk-000/file-000.parquet").is_file()
        assert (root / "meta/stats.json").is_file() and (root / "meta/tasks.parquet").is_file()
        eps = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet")
        assert eps.column("dataset_to_index").to_pylist()[-1] == len(truth.state)
        assert "stats/action/q99" in eps.column_names
        if "av1" in name or "h264" in name:
            assert (root / f"videos/{CAMERA_KEYS[1]}/chunk-000/file-000.mp4").is_file()
    schema = pq.read_schema(source.meta.data_files[0])
    assert str(schema.field("observation.state").type) == "fixed_size_list<element: float>[8]"
    assert str(schema.field("timestamp").type) == "float"
    assert str(schema.field("index").type) == "int64"
    if source.meta.features[CAMERA_KEYS[0]]["dtype"] == "image":
        assert str(schema.field(CAMERA_KEYS[0]).type) == "struct<bytes: binary, path: string>"
    else:
        assert CAMERA_KEYS[0] not in schema.names
    assert "huggingface" in json.dumps({k.decode(): 1 for k in schema.metadata})


def test_video_codec_recorded(written):
    name, _, source = written
    info = source.meta.features[CAMERA_KEYS[0]].get("info")
    if "av1" in name:
        assert info["video.codec"] == "av1"
    elif "h264" in name:
        assert info["video.codec"] == "h264"
    else:
        assert info is None


def test_load_meta_reads_hub_snapshot_layout_from_a_path(written):
    _, truth, _ = written
    meta = load_meta(str(truth.root))
    assert meta.root == truth.root
