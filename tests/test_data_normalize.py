"""Statistics (LeRobot's combination rules) and the Normalizer (modes, inverse, checkpoint dict)."""

import json

import numpy as np
import pytest
import torch

from vggt_vla.constants import CAMERA_KEYS
from vggt_vla.data.dataset import FrameDataset
from vggt_vla.data.lerobot import LeRobotSource
from vggt_vla.data.normalize import MODES, Normalizer
from vggt_vla.data.stats import QUANTILES, aggregate_stats, image_stats, vector_stats
from synthetic_data import make_synthetic_dataset
from vggt_vla.data.transforms import ImageTransform

RNG = np.random.default_rng(0)
X = (RNG.normal(size=(500, 4)) * [1.0, 5.0, 0.1, 0.0] + [0.0, 2.0, -1.0, 3.0]).astype(np.float32)  # dim 3 constant


@pytest.mark.parametrize("mode", MODES)
def test_normalize_then_unnormalize_is_identity(mode):
    norm = Normalizer.from_stats({"a": vector_stats(X)}, mode, ["a"])
    y = norm.normalize("a", X)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(norm.unnormalize("a", y), X, rtol=1e-5, atol=1e-5)
    yt = norm.normalize("a", torch.from_numpy(X))
    assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float32
    np.testing.assert_allclose(yt.numpy(), y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(norm.unnormalize("a", yt).numpy(), X, rtol=1e-5, atol=1e-5)


def test_modes_map_to_their_ranges():
    stats = {"a": vector_stats(X)}
    y = Normalizer.from_stats(stats, "mean_std", ["a"]).normalize("a", X)
    np.testing.assert_allclose(y[:, :3].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y[:, :3].std(0), 1, atol=1e-4)
    y = Normalizer.from_stats(stats, "min_max", ["a"]).normalize("a", X)
    np.testing.assert_allclose(y[:, :3].min(0), -1, atol=1e-6)
    np.testing.assert_allclose(y[:, :3].max(0), 1, atol=1e-6)
    y = Normalizer.from_stats(stats, "quantile", ["a"]).normalize("a", X)
    np.testing.assert_allclose(np.quantile(y[:, :3], [0.01, 0.99], axis=0), [[-1] * 3, [1] * 3], atol=1e-5)
    assert (y[:, 3] == 0).all(), "a constant dimension maps to 0, not inf/nan"
    np.testing.assert_array_equal(Normalizer.from_stats(stats, "none", ["a"]).normalize("a", X), X)


def test_checkpoint_dict_round_trip_through_json():
    norm = Normalizer.from_stats({"s": vector_stats(X), "a": vector_stats(X[:, :2])}, "quantile", ["s", "a"])
    restored = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert restored.mode == "quantile" and restored.keys == ["s", "a"]
    np.testing.assert_array_equal(restored.normalize("s", X), norm.normalize("s", X))
    np.testing.assert_array_equal(restored.unnormalize("a", X[:, :2]), norm.unnormalize("a", X[:, :2]))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="zscore"):
        Normalizer.from_stats({"a": vector_stats(X)}, "zscore", ["a"])
    with pytest.raises(KeyError, match="q01"):
        Normalizer.from_stats({"a": vector_stats(X, quantiles=False)}, "quantile", ["a"])
    norm = Normalizer.from_stats({"a": vector_stats(X)}, "mean_std", ["a"])
    with pytest.raises(KeyError, match="'b'"):
        norm.normalize("b", X)
    with pytest.raises(ValueError, match="3 dims"):
        norm.normalize("a", X[:, :3])


def test_aggregate_equals_stats_of_the_concatenation():
    parts = [X[:100], X[100:130], X[130:]]
    combined = aggregate_stats([{"x": vector_stats(p)} for p in parts])["x"]
    direct = vector_stats(X)
    for name in ("min", "max", "mean", "std"):
        np.testing.assert_allclose(combined[name], direct[name], rtol=1e-9, atol=1e-9)
    assert combined["count"][0] == 500
    # quantiles are count-weighted means of the episode quantiles (approximate, like lerobot)
    expect = sum(len(p) * vector_stats(p)["q99"] for p in parts) / 500
    np.testing.assert_allclose(combined["q99"], expect)


def test_image_stats_match_numpy():
    frames = RNG.integers(0, 256, size=(7, 9, 11, 3), dtype=np.uint8)
    stats = image_stats(frames)
    pixels = frames.reshape(-1, 3) / 255.0
    assert stats["mean"].shape == (3, 1, 1)
    np.testing.assert_allclose(stats["mean"].ravel(), pixels.mean(0))
    np.testing.assert_allclose(stats["std"].ravel(), pixels.std(0))
    np.testing.assert_allclose(stats["min"].ravel(), pixels.min(0))
    for name, q in QUANTILES.items():
        np.testing.assert_allclose(stats[name].ravel(), np.quantile(pixels, q, axis=0), atol=1e-12)
    assert stats["count"].tolist() == [7]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    out = {}
    for version in ("v2.1", "v3.0"):
        root = tmp_path_factory.mktemp(version) / "ds"
        out[version] = make_synthetic_dataset(root, version=version, image_size=32)
    return out, tmp_path_factory.mktemp("cache")


def _source(truth, cache):
    return LeRobotSource(truth.root, camera_keys=list(CAMERA_KEYS), cache_dir=cache)


def test_v21_per_episode_stats_are_combined(datasets):
    (all_ds, cache) = datasets
    truth = all_ds["v2.1"]
    stats = _source(truth, cache).stats("mean_std")
    np.testing.assert_allclose(stats["action"]["mean"], truth.action.mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(stats["action"]["std"], truth.action.std(0), rtol=1e-5)
    # v2.1 has no quantiles: quantile mode computes them over the data
    stats = _source(truth, cache).stats("quantile")
    np.testing.assert_allclose(stats["observation.state"]["q01"], np.quantile(truth.state, 0.01, axis=0), rtol=1e-6)


def test_v30_uses_meta_stats_json(datasets):
    (all_ds, cache) = datasets
    truth = all_ds["v3.0"]
    meta_stats = json.loads((truth.root / "meta" / "stats.json").read_text())
    stats = _source(truth, cache).stats("quantile")
    np.testing.assert_allclose(stats["action"]["q99"], meta_stats["action"]["q99"])
    np.testing.assert_allclose(stats["action"]["max"], truth.action.max(0))


def test_missing_statistics_are_computed_from_the_data(datasets):
    (all_ds, cache) = datasets
    truth = all_ds["v2.1"]
    (truth.root / "meta" / "episodes_stats.jsonl").rename(truth.root / "meta" / "hidden.jsonl")
    try:
        source = _source(truth, cache)
        assert source.meta.load_stats() is None
        stats = source.stats("mean_std")
        np.testing.assert_allclose(stats["action"]["mean"], truth.action.mean(0), rtol=1e-6, atol=1e-7)
    finally:
        (truth.root / "meta" / "hidden.jsonl").rename(truth.root / "meta" / "episodes_stats.jsonl")


def test_dataset_items_are_normalized_and_invertible(datasets):
    (all_ds, cache) = datasets
    truth = all_ds["v3.0"]
    source = _source(truth, cache)
    norm = Normalizer.from_stats(source.stats("min_max"), "min_max", ["action", "observation.state"])
    ds = FrameDataset(source, chunk_size=3, transform=ImageTransform(32), normalizer=norm)
    states = torch.stack([ds[i]["state"] for i in range(len(ds))])
    assert states.min() >= -1 - 1e-6 and states.max() <= 1 + 1e-6
    item = ds[4]
    np.testing.assert_allclose(norm.unnormalize("action", item["actions"]).numpy(), truth.action[4:7], atol=1e-6)
    np.testing.assert_allclose(norm.unnormalize("observation.state", item["state"]).numpy(), truth.state[4], atol=1e-6)
