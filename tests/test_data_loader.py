"""build_datasets / build_dataloaders(cfg): episode-level split, the batch format, workers, checkpointed stats."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vggt_vla.config import config_from_dict
from vggt_vla.data.batch import collate
from vggt_vla.data.loader import build_datasets, split_episodes
from vggt_vla.data.normalize import Normalizer
from vggt_vla.training.training_data import build_dataloaders
from synthetic_data import make_synthetic_dataset

LENGTHS = (6, 9, 4, 7, 5, 8, 6, 5, 7, 6)


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("loader")
    make_synthetic_dataset(base / "image", episode_lengths=LENGTHS, image_size=32)
    make_synthetic_dataset(base / "video", episode_lengths=LENGTHS[:4], image_size=64, camera_dtype="video",
                           video_codec="libx264")
    return base


def make_cfg(root, tmp_path, **data):
    tree = {
        "data": {"dataset_root": str(root), "cache_dir": str(tmp_path / "cache"), "num_workers": 0,
                 "val_fraction": 0.2, **data},
        "model": {"state_dim": 8, "vision": {"image_size": 32, "patch_size": 8},
                  "action_head": {"chunk_size": 4, "action_dim": 7}},
        "train": {"batch_size": 5},
    }
    return config_from_dict(tree)


def test_split_is_by_whole_episodes_and_deterministic():
    eps = np.arange(10)
    train, val = split_episodes(eps, 0.2, seed=3)
    assert len(val) == 2 and len(train) == 8
    assert set(train) | set(val) == set(eps) and not set(train) & set(val)
    again = split_episodes(eps[::-1], 0.2, seed=3)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)
    assert not np.array_equal(split_episodes(eps, 0.2, seed=4)[1], val)
    assert len(split_episodes(eps, 0.01)[1]) == 1  # any positive fraction holds out one episode
    assert len(split_episodes(eps[:2], 0.9)[0]) == 1  # but training keeps at least one
    assert len(split_episodes(eps, 0.0)[1]) == 0
    assert len(split_episodes(eps[:1], 0.5)[1]) == 0


def test_train_and_val_never_share_an_episode(roots, tmp_path):
    train, val, norm = build_datasets(make_cfg(roots / "image", tmp_path))
    assert set(train.episodes) & set(val.episodes) == set()
    assert set(train.episodes) | set(val.episodes) == set(range(len(LENGTHS)))
    src = train.source
    assert set(src.row_episode[train.rows]) .isdisjoint(set(src.row_episode[val.rows]))
    assert len(train) + len(val) == sum(LENGTHS)
    assert not train.transform.augment and not val.transform.augment


def test_batches_have_the_batch_format(roots, tmp_path):
    loaders = build_dataloaders(make_cfg(roots / "image", tmp_path))
    batch = next(iter(loaders.train))
    assert batch["images"].shape == (5, 2, 3, 32, 32) and batch["images"].dtype == torch.float32
    assert float(batch["images"].min()) >= 0.0 and float(batch["images"].max()) <= 1.0
    assert len(batch["instruction"]) == 5 and all(isinstance(s, str) for s in batch["instruction"])
    assert batch["state"].shape == (5, 8) and batch["state"].dtype == torch.float32
    assert batch["actions"].shape == (5, 4, 7) and batch["actions"].dtype == torch.float32
    assert batch["action_pad_mask"].shape == (5, 4) and batch["action_pad_mask"].dtype == torch.bool
    # validation order is fixed, training order is shuffled (and seeded)
    val_a = [b["state"] for b in loaders.val]
    val_b = [b["state"] for b in loaders.val]
    assert all(torch.equal(a, b) for a, b in zip(val_a, val_b))
    first = [b["state"] for b in build_dataloaders(make_cfg(roots / "image", tmp_path)).train]
    again = [b["state"] for b in build_dataloaders(make_cfg(roots / "image", tmp_path)).train]
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_episode_filter_and_no_validation(roots, tmp_path):
    train, val, _ = build_datasets(make_cfg(roots / "image", tmp_path, episodes=[1, 3, 5], val_fraction=0.0))
    assert val is None and sorted(train.episodes.tolist()) == [1, 3, 5]
    assert len(train) == LENGTHS[1] + LENGTHS[3] + LENGTHS[5]


def test_checkpoint_normalizer_is_reused(roots, tmp_path):
    cfg = make_cfg(roots / "image", tmp_path, normalization="quantile")
    train, _, norm = build_datasets(cfg)
    saved = norm.to_dict()
    # a checkpoint trained with other stats: the loader must use those, not the dataset's
    other = Normalizer.from_dict({"mode": "none", "stats": {k: {"mean": v["mean"]} for k, v in saved["stats"].items()}})
    train2, _, norm2 = build_datasets(cfg, normalizer=other)
    assert norm2 is other
    raw = train.source.action[train.rows[0]]
    np.testing.assert_array_equal(train2[0]["actions"][0].numpy(), raw)
    restored, _, _ = build_datasets(cfg, normalizer=Normalizer.from_dict(saved))
    assert torch.equal(restored[0]["actions"], train[0]["actions"])


def test_augmentation_only_in_training(roots, tmp_path):
    train, val, _ = build_datasets(make_cfg(roots / "image", tmp_path, augment=True, color_jitter=0.3))
    assert train.transform.augment and not val.transform.augment
    torch.manual_seed(0)
    a = train[0]["images"]
    torch.manual_seed(1)
    b = train[0]["images"]
    assert not torch.equal(a, b)
    assert torch.equal(val[0]["images"], val[0]["images"])


@pytest.mark.parametrize("kind", ["image", "video"])
def test_worker_processes_give_the_same_batches(roots, tmp_path, kind):
    cfg0 = make_cfg(roots / kind, tmp_path, val_fraction=0.0)
    cfg2 = make_cfg(roots / kind, tmp_path, val_fraction=0.0, num_workers=2)
    loader0 = build_dataloaders(cfg0).train
    ds = loader0.dataset
    ds[0], ds[len(ds) - 1]  # open decoders in this process before the workers fork
    plain = list(loader0)
    # the same dataset object, forked; a worker that hangs fails the test instead of stalling it
    loader2 = DataLoader(ds, batch_size=5, shuffle=True, num_workers=2, collate_fn=collate, timeout=60,
                         generator=torch.Generator().manual_seed(cfg2.train.seed))
    with_workers = list(loader2)
    assert len(plain) == len(with_workers)
    for a, b in zip(plain, with_workers):
        assert a["instruction"] == b["instruction"]
        for key in ("images", "state", "actions", "action_pad_mask"):
            assert torch.equal(a[key], b[key]), key
    built = build_dataloaders(cfg2).train  # the configured path: persistent workers, prefetch
    assert built.num_workers == 2 and built.persistent_workers and built.prefetch_factor == 2
    assert sum(len(b["instruction"]) for b in built) == len(ds)
