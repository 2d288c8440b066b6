"""The disk cache of frozen vision-tower features (train.cache_features)."""

import pytest
import torch

from conftest import make_batch, tiny_config
from vggt_vla.config import ConfigError, config_from_dict
from vggt_vla.models.vla_model import VLAModel
from vggt_vla.training.feature_cache import FeatureCache, tower_fingerprint


def tower_model(tiny_qwen3, tiny_dinov2):
    cfg = tiny_config(tiny_qwen3, vision={"use_vision_tower": True, "vision_tower_name": tiny_dinov2})
    return cfg, VLAModel(cfg.model).eval()


def test_cached_features_match_and_skip_the_tower(tiny_qwen3, tiny_dinov2, tmp_path):
    cfg, model = tower_model(tiny_qwen3, tiny_dinov2)
    key = {"tower_weights": tower_fingerprint(model.vision.backbone)}
    model.vision.feature_cache = FeatureCache(tmp_path, key, num_frames=10)
    calls = []
    model.vision.backbone.register_forward_hook(lambda *a: calls.append(1))
    batch = make_batch(cfg, batch_size=3)
    ids = torch.tensor([7, 2, 5])
    with torch.no_grad():
        plain = model.vision(batch["images"]).tokens  # no frame ids: the cache is not used
        first = model.vision(batch["images"], ids).tokens  # fills frames 7, 2, 5
        assert len(calls) == 2
        again = model.vision(batch["images"], ids).tokens  # all hits: the tower does not run
        assert len(calls) == 2
        mixed_ids = torch.tensor([2, 9, 5])  # frame 9 is new: only it goes through the tower
        mixed = model.vision(batch["images"][[1, 0, 2]], mixed_ids).tokens
        assert len(calls) == 3
    assert torch.equal(first, again)  # a computed frame comes back as it will from the cache
    assert torch.allclose(again, plain, atol=2e-2, rtol=1e-2)  # float16 on disk
    assert torch.allclose(mixed, plain[[1, 0, 2]], atol=2e-2, rtol=1e-2)
    assert model.vision.feature_cache.hits(torch.arange(10).numpy()).sum() == 4


def test_cache_survives_reopening_and_keys_separate_caches(tmp_path):
    cache = FeatureCache(tmp_path, {"tower": "a"}, num_frames=4)
    cache.store(torch.tensor([1, 3]).numpy(), torch.ones(2, 2, 5, 8))
    reopened = FeatureCache(tmp_path, {"tower": "a"}, num_frames=4)
    assert reopened.hits(torch.arange(4).numpy()).tolist() == [False, True, False, True]
    assert torch.equal(reopened.load(torch.tensor([3]).numpy()), torch.ones(1, 2, 5, 8))
    other = FeatureCache(tmp_path, {"tower": "b"}, num_frames=4)  # e.g. other weights or image size
    assert other.dir != cache.dir and not other.hits(torch.arange(4).numpy()).any()


def test_fingerprint_follows_the_weights(tiny_qwen3, tiny_dinov2):
    _, model = tower_model(tiny_qwen3, tiny_dinov2)
    before = tower_fingerprint(model.vision.backbone)
    with torch.no_grad():
        next(model.vision.backbone.parameters()).add_(1e-3)
    assert tower_fingerprint(model.vision.backbone) != before


@pytest.mark.parametrize("vision, data, message", [
    ({"use_vision_tower": False}, {}, "needs a frozen vision tower"),
    ({"use_vision_tower": True, "freeze_vision_tower": False}, {}, "needs a frozen vision tower"),
    ({"use_vision_tower": True}, {"augment": True}, "augment: false"),
])
def test_cache_features_config_checks(vision, data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"model": {"vision": vision}, "data": data, "train": {"cache_features": True}})


def test_training_with_the_cache(tiny_qwen3, tiny_dinov2, demo_dataset, tmp_path):
    from test_training import train_config
    from vggt_vla.training.trainer import Trainer

    cfg = train_config(tiny_qwen3, demo_dataset, tmp_path, head="l1", max_steps=12, cache_features=True,
                       eval_every=0, image_every=0,
                       vision={"use_vision_tower": True, "vision_tower_name": tiny_dinov2})
    trainer = Trainer(cfg, progress=False)
    cache = trainer.accelerator.unwrap_model(trainer.model).vision.feature_cache
    trainer.fit()
    filled = int(cache.filled.sum())
    assert 0 < filled <= len(trainer.train_set)
    assert cache.dir.parent == tmp_path / "feature_cache"
