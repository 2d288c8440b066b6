"""VGGTAdapter (model.backbone: vggt) on a tiny aggregator of the real VGGT classes."""

import pytest
import torch
from safetensors.torch import save_file

from conftest import make_batch, tiny_config
from vggt_vla.models.pretrained import PretrainedUnavailable
from vggt_vla.models.vggt import CheckpointError, vggt_1b
from vggt_vla.models.vla_model import VLAModel

TINY_AGGREGATOR = dict(img_size=28, embed_dim=32, depth=3, num_heads=4, num_register_tokens=2,
                       vit_embed_dim=32, vit_depth=1, vit_num_heads=4,
                       init_values=1.0)  # LayerScale 1: random blocks that actually mix tokens


@pytest.fixture(scope="module")
def tiny_vggt_checkpoint(tmp_path_factory):
    """A tiny aggregator saved in the official checkpoint layout (aggregator.* + head keys)."""
    torch.manual_seed(1)
    agg = vggt_1b(**TINY_AGGREGATOR)
    state = {f"aggregator.{k}": v.contiguous() for k, v in agg.state_dict().items()}
    state["camera_head.trunk.0.weight"] = torch.zeros(3, 3)  # heads are present and ignored
    folder = tmp_path_factory.mktemp("vggt")
    save_file(state, str(folder / "model.safetensors"))
    return str(folder), agg.state_dict()


def vggt_config(language_model, checkpoint, **vggt):
    return tiny_config(language_model, backbone="vggt", vggt={
        "checkpoint": checkpoint, "aggregator_kwargs": TINY_AGGREGATOR, "image_size": 28,
        "fusion_depth": 1, "fusion_heads": 4, "inject_last_k": 2, **vggt})


def test_pretrained_weights_are_loaded(tiny_qwen3, tiny_vggt_checkpoint):
    folder, state = tiny_vggt_checkpoint
    model = VLAModel(vggt_config(tiny_qwen3, folder).model)
    loaded = model.backbone.aggregator.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


@pytest.mark.parametrize("fusion", ["late", "cross_attention", "inject"])
def test_fusion_modes_train_with_vggt_frozen(tiny_qwen3, tiny_vggt_checkpoint, fusion):
    torch.manual_seed(0)
    folder, state = tiny_vggt_checkpoint
    cfg = vggt_config(tiny_qwen3, folder, fusion=fusion)
    model = VLAModel(cfg.model)
    aggregator = model.backbone.aggregator
    trainable = [p for p in model.parameters() if p.requires_grad]
    frozen_ids = {id(p) for p in aggregator.parameters()}
    assert trainable and not any(id(p) in frozen_ids for p in trainable)  # not in the optimizer
    opt = torch.optim.AdamW(trainable, lr=3e-3)
    batch = make_batch(cfg, batch_size=4)  # 32 px camera images, resized to VGGT's 28 px
    model.train()
    assert not aggregator.training
    losses = []
    for _ in range(40):
        loss, _ = model(batch)
        opt.zero_grad()
        loss.backward()
        if not losses:
            assert all(p.grad is None for p in aggregator.parameters())
            assert model.action_queries.grad is not None and model.action_queries.grad.abs().sum() > 0
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], f"{fusion}: {losses[0]:.4f} -> {losses[-1]:.4f}"
    after = aggregator.state_dict()
    assert all(torch.equal(after[k], state[k]) for k in state)  # VGGT untouched
    assert model.predict_action_chunk(batch).shape == (4, 5, 7)


def test_inject_ignores_padded_language_tokens(tiny_qwen3, tiny_vggt_checkpoint):
    folder, _ = tiny_vggt_checkpoint
    cfg = vggt_config(tiny_qwen3, folder, fusion="inject")
    model = VLAModel(cfg.model).eval()
    batch = make_batch(cfg)
    inputs = model.fusion_inputs(batch)
    pad = ~inputs.language_mask
    assert pad.any()
    with torch.no_grad():
        out = model.backbone(inputs)
        inputs.language = inputs.language.masked_fill(pad[..., None], 50.0)
        assert torch.allclose(model.backbone(inputs), out, atol=1e-5)


def test_late_fusion_with_several_layers_and_camera_tokens(tiny_qwen3, tiny_vggt_checkpoint):
    folder, _ = tiny_vggt_checkpoint
    cfg = vggt_config(tiny_qwen3, folder, feature_layers=[0, -1], use_camera_tokens=True)
    model = VLAModel(cfg.model).eval()
    assert model.backbone.feature_proj.in_features == 2 * 32 * 2
    for cams in (1, 2):
        assert model.predict_action_chunk(make_batch(cfg, num_cameras=cams)).shape == (2, 5, 7)


def test_unfrozen_vggt_gets_gradients(tiny_qwen3, tiny_vggt_checkpoint):
    folder, _ = tiny_vggt_checkpoint
    cfg = vggt_config(tiny_qwen3, folder, freeze_vggt=False)
    model = VLAModel(cfg.model)
    model(make_batch(cfg))[0].backward()
    assert any(p.grad is not None for p in model.backbone.aggregator.parameters())


def test_missing_checkpoint_errors(tiny_qwen3, tmp_path):
    with pytest.raises(PretrainedUnavailable, match="no-such-org/VGGT"):
        VLAModel(vggt_config(tiny_qwen3, "no-such-org/VGGT").model)
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        VLAModel(vggt_config(tiny_qwen3, str(tmp_path)).model)


def test_bad_layer_index_is_a_clear_error(tiny_qwen3, tiny_vggt_checkpoint):
    folder, _ = tiny_vggt_checkpoint
    with pytest.raises(ValueError, match="feature_layers"):
        VLAModel(vggt_config(tiny_qwen3, folder, feature_layers=[7]).model)


def test_injection_leaves_vggt_tokens_alone_when_nothing_is_attendable():
    # Masked-out injected tokens are never attended to, so every VGGT layer output must equal
    # the plain forward; unmasked ones change only the layers from the injection point on.
    torch.manual_seed(0)
    agg = vggt_1b(**TINY_AGGREGATOR).eval()
    images = torch.rand(2, 2, 3, 28, 42)
    extra = torch.randn(2, 5, 32)
    with torch.no_grad():
        plain, _ = agg(images)
        masked, _, _ = agg.forward_with_injection(images, extra, torch.zeros(2, 5, dtype=torch.bool),
                                                  first_layer=1, layer_indices=None)
        live, _, out = agg.forward_with_injection(images, extra, torch.ones(2, 5, dtype=torch.bool),
                                                  first_layer=1, layer_indices=None)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, masked))
    assert torch.allclose(live[0], plain[0], atol=1e-6)
    assert not torch.allclose(live[1][..., 32:], plain[1][..., 32:])  # global half of layer 1
    assert out.shape == (2, 5, 32)
