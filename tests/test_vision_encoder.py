"""Each vision-encoder mode, through the real loading code on tiny saved models."""

import pytest
import torch

from vggt_vla.config import VisionConfig
from vggt_vla.models.pretrained import PretrainedUnavailable
from vggt_vla.models.vision_encoder import VisionEncoder, sincos_2d


def encode(cfg: VisionConfig, images, dim=32):
    torch.manual_seed(0)
    enc = VisionEncoder(cfg, dim)
    return enc, enc(images)


def test_patch_embedding_default_geometry():
    enc = VisionEncoder(VisionConfig(), dim=768)
    out = enc(torch.rand(1, 1, 3, 224, 224))
    assert out.grid == (14, 14)
    assert out.tokens.shape == (1, 196, 768)


def test_sincos_positions_are_distinct_per_patch():
    pos = sincos_2d(4, 6, 32)
    assert pos.shape == (24, 32)
    assert torch.cdist(pos, pos).add(torch.eye(24) * 1e3).min() > 1e-3


@pytest.mark.parametrize("fixture", ["tiny_dinov2", "tiny_clip", "tiny_siglip"])
def test_transformers_towers(fixture, request):
    path = request.getfixturevalue(fixture)
    cfg = VisionConfig(use_vision_tower=True, vision_tower_name=path, image_size=32)
    enc, out = encode(cfg, torch.rand(2, 2, 3, 32, 32))
    assert out.grid == (4, 4)  # 32 px / patch 8: prefix tokens (CLS, registers) dropped
    assert out.tokens.shape == (2, 2 * 16, 32)
    # frozen tower, trainable projection
    assert not any(p.requires_grad for p in enc.backbone.parameters())
    assert all(p.requires_grad for p in enc.proj.parameters())
    enc.train()
    assert not enc.backbone.training


def test_tower_at_another_resolution(tiny_dinov2, tiny_clip):
    for path in (tiny_dinov2, tiny_clip):
        cfg = VisionConfig(use_vision_tower=True, vision_tower_name=path, image_size=48)
        _, out = encode(cfg, torch.rand(1, 1, 3, 48, 48))
        assert out.grid == (6, 6) and out.tokens.shape == (1, 36, 32)


def test_frozen_tower_builds_no_autograd_graph(tiny_dinov2):
    cfg = VisionConfig(use_vision_tower=True, vision_tower_name=tiny_dinov2, image_size=32)
    enc, out = encode(cfg, torch.rand(1, 2, 3, 32, 32))
    out.tokens.sum().backward()
    assert enc.proj.weight.grad is not None
    assert all(p.grad is None for p in enc.backbone.parameters())


def test_unfrozen_tower_trains(tiny_dinov2):
    cfg = VisionConfig(use_vision_tower=True, vision_tower_name=tiny_dinov2, image_size=32,
                       freeze_vision_tower=False)
    enc, out = encode(cfg, torch.rand(1, 1, 3, 32, 32))
    out.tokens.sum().backward()
    assert any(p.grad is not None for p in enc.backbone.parameters())


def test_timm_tower():
    pytest.importorskip("timm")
    # The real timm architecture, built with random weights (the hub is not reachable in tests).
    from vggt_vla.models.vision_encoder import TimmVisionTower

    tower = TimmVisionTower("timm/vit_small_patch14_dinov2", image_size=28, random_weights=True)
    feats, grid = tower(torch.rand(2, 3, 28, 28))
    assert grid == (2, 2) and feats.shape == (2, 4, 384)


def test_timm_tower_without_weights_is_a_clear_error():
    pytest.importorskip("timm")
    cfg = VisionConfig(use_vision_tower=True, vision_tower_name="timm/vit_small_patch14_dinov2", image_size=28)
    with pytest.raises(PretrainedUnavailable, match="vit_small_patch14_dinov2"):
        VisionEncoder(cfg, 32)


def test_missing_tower_is_a_clear_error(tmp_path):
    cfg = VisionConfig(use_vision_tower=True, vision_tower_name="no-such-org/no-such-model")
    with pytest.raises(PretrainedUnavailable, match="no-such-org/no-such-model"):
        VisionEncoder(cfg, 32)
