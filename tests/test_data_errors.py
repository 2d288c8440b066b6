"""Bad input gets a clear error naming the problem (file, key or dimension)."""

import json
import shutil

import numpy as np
import pytest

from vggt_vla.config import ConfigError, DataConfig, config_from_dict
from vggt_vla.constants import CAMERA_KEYS
from vggt_vla.data.dataset import FrameDataset
from vggt_vla.data.lerobot import LeRobotSource
from vggt_vla.data.loader import build_source
from vggt_vla.data.meta import DatasetError, load_meta, resolve_dataset_root
from synthetic_data import make_synthetic_dataset
from vggt_vla.data.transforms import ImageTransform

WRIST2 = ("observation.images.image", "observation.images.image2")


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("errors")
    make_synthetic_dataset(base / "image", image_size=32)
    make_synthetic_dataset(base / "image2", image_size=32, cameras=WRIST2, version="v2.1")
    make_synthetic_dataset(base / "video", image_size=64, camera_dtype="video", video_codec="libx264",
                           version="v2.1")
    return base


@pytest.fixture
def copy_of(roots, tmp_path):
    def make(name):
        dst = tmp_path / name
        shutil.copytree(roots / name, dst)
        return dst
    return make


def cfg_for(root, tmp_path, **model):
    tree = {"data": {"dataset_root": str(root), "cache_dir": str(tmp_path / "cache"), "num_workers": 0},
            "model": {"vision": {"image_size": 32}, **model}}
    return config_from_dict(tree)


def test_missing_camera_lists_the_available_ones(roots, tmp_path):
    with pytest.raises(DatasetError) as err:
        LeRobotSource(roots / "image2", camera_keys=list(CAMERA_KEYS), cache_dir=tmp_path)
    msg = str(err.value)
    assert "observation.images.wrist_image" in msg
    assert "observation.images.image2" in msg and "rename_map" in msg


def test_rename_map_maps_a_dataset_camera_to_the_config_name(roots, tmp_path):
    source = LeRobotSource(roots / "image2", camera_keys=list(CAMERA_KEYS), cache_dir=tmp_path,
                           rename_map={"observation.images.image2": "observation.images.wrist_image"})
    assert source.camera_features == list(WRIST2)
    item = FrameDataset(source, chunk_size=2, transform=ImageTransform(32))[0]
    assert item["images"].shape == (2, 3, 32, 32)
    assert not np.array_equal(item["images"][0].numpy(), item["images"][1].numpy())


def test_action_and_state_dims_must_match_the_model(roots, tmp_path):
    with pytest.raises(DatasetError, match=r"7 dims but model.action_head.action_dim=6"):
        build_source(cfg_for(roots / "image", tmp_path, action_head={"action_dim": 6}))
    with pytest.raises(DatasetError, match=r"8 dims but model.state_dim=9"):
        build_source(cfg_for(roots / "image", tmp_path, state_dim=9))
    source = build_source(cfg_for(roots / "image", tmp_path, state_dim=0))  # no state wanted: none read
    assert source.state_dim == 0


def test_missing_state_or_action_feature(roots, tmp_path):
    with pytest.raises(DatasetError, match=r"action feature 'actions'.*data.action_key"):
        LeRobotSource(roots / "image", camera_keys=list(CAMERA_KEYS), action_key="actions", cache_dir=tmp_path)


def test_unknown_codebase_version(copy_of):
    root = copy_of("image")
    info = json.loads((root / "meta/info.json").read_text())
    info["codebase_version"] = "v1.6"
    (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match=r"'v1.6' is not supported.*v2.1.*v3.0"):
        load_meta(root)


def test_unreadable_data_file_is_named(copy_of, tmp_path):
    root = copy_of("image")
    bad = root / "data/chunk-000/file-000.parquet"
    bad.write_bytes(b"not a parquet file")
    with pytest.raises(DatasetError, match="file-000.parquet"):
        LeRobotSource(root, camera_keys=list(CAMERA_KEYS), cache_dir=tmp_path / "c")


def test_missing_data_file_is_named(copy_of, tmp_path):
    root = copy_of("image2")
    (root / "data/chunk-000/episode_000002.parquet").unlink()
    with pytest.raises(DatasetError, match="episode_000002.parquet"):
        LeRobotSource(root, camera_keys=list(WRIST2), cache_dir=tmp_path / "c")


def test_unreadable_video_is_named(copy_of, tmp_path):
    root = copy_of("video")
    mp4 = root / f"videos/chunk-000/{CAMERA_KEYS[0]}/episode_000001.mp4"
    mp4.write_bytes(b"\x00" * 100)
    source = LeRobotSource(root, camera_keys=list(CAMERA_KEYS), cache_dir=tmp_path / "c")
    ds = FrameDataset(source, chunk_size=2, transform=ImageTransform(64))
    ds[0]  # episode 0 is intact
    with pytest.raises(DatasetError, match="episode_000001.mp4"):
        ds[8]  # first frame of episode 1


def test_frame_past_the_end_of_a_video_is_named(roots, tmp_path):
    source = LeRobotSource(roots / "video", camera_keys=list(CAMERA_KEYS), cache_dir=tmp_path)
    path = source.meta.video[CAMERA_KEYS[0]].paths[0]  # episode 0: 7 frames, 0.0 .. 0.6 s
    assert source._video.frame(path, 0.6).shape == (64, 64, 3)
    with pytest.raises(DatasetError, match=r"episode_000000.mp4: no frame within"):
        source._video.frame(path, 0.9)


def test_metadata_and_data_disagree(copy_of, tmp_path):
    root = copy_of("image2")
    lines = (root / "meta/episodes.jsonl").read_text().splitlines()
    ep = json.loads(lines[1])
    ep["length"] += 1
    lines[1] = json.dumps(ep)
    (root / "meta/episodes.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"episode 1 has 12 data rows but its metadata says length 13"):
        LeRobotSource(root, camera_keys=list(WRIST2), cache_dir=tmp_path / "c")


def test_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="info.json is missing"):
        resolve_dataset_root(str(tmp_path))
    with pytest.raises(DatasetError, match="neither an existing directory nor a hub repo id"):
        resolve_dataset_root(str(tmp_path / "nope" / "deeper"))


def test_missing_dataset_root_is_not_looked_up_on_the_hub(tmp_path):
    with pytest.raises(DatasetError, match=r"data.dataset_root=.*does not exist.*make_demo_dataset"):
        build_source(cfg_for(tmp_path / "data" / "demo", tmp_path))


def test_hub_download_failure_suggests_dataset_root(monkeypatch):
    import huggingface_hub

    def offline(**kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(DatasetError, match=r"'lerobot/libero_spatial_image'.*data.dataset_root"):
        resolve_dataset_root("lerobot/libero_spatial_image")


def test_hub_repo_id_resolves_through_snapshot_download(monkeypatch, roots, tmp_path):
    import huggingface_hub

    calls = []

    def fake_snapshot(repo_id, repo_type, revision):
        calls.append((repo_id, repo_type, revision))
        return str(roots / "image")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    cfg = config_from_dict({"data": {"dataset_repo": "someone/tiny", "dataset_revision": "v3.0",
                                     "cache_dir": str(tmp_path), "num_workers": 0},
                            "model": {"vision": {"image_size": 32}}})
    source = build_source(cfg)
    assert calls == [("someone/tiny", "dataset", "v3.0")]
    assert source.num_rows == 31


@pytest.mark.parametrize("field,value", [("val_fraction", 1.0), ("normalization", "zscore"),
                                         ("num_workers", -1), ("crop_scale", 0.0), ("camera_keys", [])])
def test_data_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=f"data.{field}"):
        DataConfig(**{field: value})
