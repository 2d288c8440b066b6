"""VLAModel end to end on tiny configs of the real architectures."""

import pytest
import torch

from conftest import make_batch, tiny_config
from vggt_vla.models.vla_model import VLAModel


def train_steps(model, batch, steps, lr=3e-3):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    losses = []
    for _ in range(steps):
        loss, _ = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("head", ["l1", "flow_matching"])
def test_loss_decreases_on_a_fixed_batch(tiny_qwen3, head):
    torch.manual_seed(0)
    cfg = tiny_config(tiny_qwen3, action_head={"type": head})
    model = VLAModel(cfg.model)
    batch = make_batch(cfg, batch_size=4)

    def fixed_loss():  # the flow-matching loss samples noise and times: fix them to compare
        torch.manual_seed(123)
        with torch.no_grad():
            return model(batch)[0].item()

    before = fixed_loss()
    train_steps(model, batch, 50)
    after = fixed_loss()
    # The rectified-flow loss keeps a floor even on one batch (the velocity target is random
    # given x_t near t=0), so it is held to a smaller relative drop than L1.
    factor = 0.5 if head == "l1" else 0.7
    assert after < factor * before, f"{head}: loss {before:.4f} -> {after:.4f}"


@pytest.mark.parametrize("num_cameras", [1, 2])
def test_output_shapes_for_one_and_two_cameras(tiny_qwen3, num_cameras):
    cfg = tiny_config(tiny_qwen3)
    model = VLAModel(cfg.model).eval()
    batch = make_batch(cfg, batch_size=3, num_cameras=num_cameras)
    inputs = model.fusion_inputs(batch)
    assert inputs.vision.shape == (3, num_cameras * 16, 32)  # 4x4 patches per camera
    assert inputs.grid == (4, 4)
    assert model.encode(batch).shape == (3, 4, 32)
    assert model.predict_action_chunk(batch).shape == (3, 5, 7)
    loss, metrics = model(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert metrics["l1_per_dim"].shape == (7,)


def test_camera_embedding_tells_cameras_apart(tiny_qwen3):
    cfg = tiny_config(tiny_qwen3)
    model = VLAModel(cfg.model).eval()
    batch = make_batch(cfg, num_cameras=2)
    batch["images"][:, 1] = batch["images"][:, 0]  # identical pixels in both cameras
    tokens = model.vision(batch["images"]).tokens  # [B, 2*16, D]
    assert not torch.allclose(tokens[:, :16], tokens[:, 16:])


def test_padded_language_tokens_do_not_change_the_output(tiny_qwen3):
    torch.manual_seed(0)
    cfg = tiny_config(tiny_qwen3)
    model = VLAModel(cfg.model).eval()
    batch = make_batch(cfg)  # instructions of different lengths -> the short one is padded
    inputs = model.fusion_inputs(batch)
    pad = ~inputs.language_mask
    assert pad.any(), "the test needs padding in the batch"
    out = model.backbone(inputs)
    inputs.language = inputs.language.masked_fill(pad[..., None], 123.0)  # garbage in padded slots
    assert torch.allclose(model.backbone(inputs), out, atol=1e-5)
    # and the same instruction alone (no padding at all) gives the same query outputs
    single = {k: (v[1:] if torch.is_tensor(v) else v[1:]) for k, v in batch.items()}
    assert torch.allclose(model.encode(single), out[1:], atol=1e-5)


def test_padded_action_steps_are_excluded_from_the_loss(tiny_qwen3):
    cfg = tiny_config(tiny_qwen3)
    model = VLAModel(cfg.model).eval()
    batch = make_batch(cfg)
    loss, _ = model(batch)
    batch["actions"][batch["action_pad_mask"]] = 50.0
    assert torch.allclose(model(batch)[0], loss)


def test_flow_matching_sampling_is_deterministic_under_a_seed(tiny_qwen3):
    cfg = tiny_config(tiny_qwen3, action_head={"type": "flow_matching"})
    model = VLAModel(cfg.model).eval()
    batch = make_batch(cfg)
    a = model.predict_action_chunk(batch, generator=torch.Generator().manual_seed(7))
    b = model.predict_action_chunk(batch, generator=torch.Generator().manual_seed(7))
    c = model.predict_action_chunk(batch, generator=torch.Generator().manual_seed(8))
    assert a.shape == (2, 5, 7)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_state_is_optional(tiny_qwen3):
    cfg = tiny_config(tiny_qwen3, state_dim=0)
    model = VLAModel(cfg.model).eval()
    batch = make_batch(cfg)
    assert "state" not in batch
    assert model.predict_action_chunk(batch).shape == (2, 5, 7)


def test_bad_batches_get_clear_errors(tiny_qwen3):
    cfg = tiny_config(tiny_qwen3)
    model = VLAModel(cfg.model)
    batch = make_batch(cfg)
    with pytest.raises(ValueError, match="action_dim"):
        model({**batch, "actions": batch["actions"][..., :6]})
    with pytest.raises(ValueError, match="state_dim"):
        model({**batch, "state": batch["state"][:, :7]})
    with pytest.raises(KeyError, match="action_pad_mask"):
        model({k: v for k, v in batch.items() if k != "action_pad_mask"})
    with pytest.raises(ValueError, match="num_cameras"):
        model.predict_action_chunk({**batch, "images": torch.rand(2, 3, 3, 32, 32)})
    with pytest.raises(ValueError, match="multiple of the patch size"):
        model.predict_action_chunk({**batch, "images": torch.rand(2, 2, 3, 30, 30)})


def test_language_film_starts_as_identity_and_then_conditions_vision_on_the_instruction(tiny_qwen3):
    torch.manual_seed(0)
    cfg = tiny_config(tiny_qwen3, language_film=True)
    model = VLAModel(cfg.model).eval()
    batch = make_batch(cfg)
    batch["images"][1] = batch["images"][0]  # same pixels, different instructions
    plain = model.vision(batch["images"]).tokens + model.token_type.weight[0]  # [B, N, D]
    assert torch.allclose(model.fusion_inputs(batch).vision, plain, atol=1e-6)  # zero-initialised
    torch.nn.init.normal_(model.film.to_scale_shift.weight, std=0.1)
    vision = model.fusion_inputs(batch).vision  # [2, N, D]
    assert not torch.allclose(vision[0], vision[1], atol=1e-3)
    loss, _ = model(batch)
    loss.backward()
    assert model.film.to_scale_shift.weight.grad.abs().sum() > 0


def test_conv_patch_stem_keeps_the_patch_grid(tiny_qwen3):
    from vggt_vla.config import ConfigError

    cfg = tiny_config(tiny_qwen3, vision={"patch_stem": "conv"})
    model = VLAModel(cfg.model).eval()
    batch = make_batch(cfg)
    assert model.fusion_inputs(batch).vision.shape == (2, 2 * 16, 32)  # 4x4 patches per camera
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.vision.backbone.proj) == 4  # 3 strided + 1x1
    with pytest.raises(ConfigError, match="power of 2"):
        tiny_config(tiny_qwen3, vision={"patch_stem": "conv", "patch_size": 12, "image_size": 36})


def test_linear_pool_stem_keeps_the_grid_and_says_what_a_patch_holds_wherever_it_sits(tiny_qwen3):
    from vggt_vla.config import ConfigError
    from vggt_vla.models.vision_encoder import PatchEmbedding

    cfg = tiny_config(tiny_qwen3, vision={"patch_stem": "linear_pool"})
    model = VLAModel(cfg.model).eval()
    assert model.fusion_inputs(make_batch(cfg)).vision.shape == (2, 2 * 16, 32)  # 4x4 patches per camera
    with pytest.raises(ConfigError, match="must be even"):
        tiny_config(tiny_qwen3, vision={"patch_stem": "linear_pool", "patch_size": 7, "image_size": 28})

    # A 2x2 dot moved by 4 px inside the middle 16 px patch of a 48 px image (its responses stay
    # inside the patch): the max-pooled detectors give that patch the same feature, the linear
    # patchify does not. This is what lets a keypoint tell a cube from a ball at any offset.
    torch.manual_seed(0)
    embed = PatchEmbedding(16, 32, "linear_pool").double()
    images = torch.zeros(2, 3, 48, 48, dtype=torch.float64)
    images[0, :, 20:22, 20:22] = 1.0
    images[1, :, 24:26, 24:26] = 1.0
    pixels = (images - embed.mean) / embed.std
    pooled = embed.detectors(pixels)[:, :, 1, 1]  # [2, 32]: the middle patch
    linear = embed.proj(pixels)[:, :, 1, 1]  # [2, 32]
    assert torch.allclose(pooled[0], pooled[1], atol=1e-12)
    assert not torch.allclose(linear[0], linear[1], atol=1e-3)


def goal_model(language_model, goal_from):
    """A tiny model with the goal loss (weight 2) and a batch with goal states."""
    torch.manual_seed(0)
    cfg = tiny_config(language_model, goal_loss_weight=2.0, goal_from=goal_from, spatial_keypoints=3)
    batch = make_batch(cfg, batch_size=4)
    batch["goal_state"] = torch.randn(4, cfg.model.state_dim)
    return cfg, VLAModel(cfg.model), batch


@pytest.mark.parametrize("goal_from", ["head_inputs", "keypoint"])
def test_the_goal_loss_is_added_to_the_loss_with_its_weight(tiny_qwen3, goal_from):
    cfg, model, batch = goal_model(tiny_qwen3, goal_from)
    if goal_from == "keypoint":  # linear in one keypoint (x, y), the state and the instruction
        assert model.goal_head.in_features == 2 + cfg.model.state_dim + cfg.model.dim
    loss, metrics = model(batch)
    inputs = model.fusion_inputs(batch)
    goal = model._goal_loss(model.head_inputs(inputs), model._keypoints(inputs), inputs, batch)
    assert torch.allclose(loss, metrics["action_loss"] + 2.0 * metrics["goal_loss"])
    assert torch.allclose(metrics["goal_loss"], goal.detach())


@pytest.mark.parametrize("goal_from", ["head_inputs", "keypoint"])
def test_the_goal_loss_trains_its_head_and_the_keypoints_only_from_a_keypoint(tiny_qwen3, goal_from):
    _, model, batch = goal_model(tiny_qwen3, goal_from)
    inputs = model.fusion_inputs(batch)
    goal = model._goal_loss(model.head_inputs(inputs), model._keypoints(inputs), inputs, batch)
    goal.backward()  # the goal loss alone: what does it train?
    assert model.goal_head.weight.grad.abs().sum() > 0 and model.keypoints.score.weight.grad.abs().sum() > 0
    backbone_grad = sum(p.grad.abs().sum() for p in model.backbone.parameters() if p.grad is not None)
    assert (backbone_grad > 0) == (goal_from == "head_inputs")  # keypoint: only the keypoint's pathway
    model.zero_grad()
    before = model(batch)[1]["goal_loss"].item()
    train_steps(model, batch, 40)
    assert model(batch)[1]["goal_loss"].item() < 0.5 * before


def test_the_goal_loss_needs_the_goal_state(tiny_qwen3):
    _, model, batch = goal_model(tiny_qwen3, "keypoint")
    with pytest.raises(KeyError, match="goal_state"):
        model({k: v for k, v in batch.items() if k != "goal_state"})
    with pytest.raises(ValueError, match=r"goal_state.*state_dim"):
        model({**batch, "goal_state": torch.zeros(4, 3)})


@pytest.mark.parametrize("overrides, message", [
    ({"goal_loss_weight": 1.0, "state_dim": 0}, "state_dim is 0"),
    ({"goal_loss_weight": -1.0}, "goal_loss_weight must be >= 0"),
    ({"goal_loss_weight": 1.0, "goal_from": "keypoint"}, "spatial_keypoints is 0"),
    ({"goal_from": "everything"}, "goal_from"),
])
def test_the_goal_options_are_checked(tiny_qwen3, overrides, message):
    from vggt_vla.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        tiny_config(tiny_qwen3, **overrides)


def test_there_is_no_goal_head_by_default(tiny_qwen3):
    _, _, batch = goal_model(tiny_qwen3, "keypoint")
    plain = VLAModel(tiny_config(tiny_qwen3).model)
    assert plain.goal_head is None and "goal_loss" not in plain(batch)[1]


def test_spatial_keypoints_find_where_a_feature_peaks():
    from vggt_vla.models.keypoints import SpatialKeypoints, patch_centres

    centres = patch_centres(2, 4)
    assert centres[0].tolist() == [-0.75, -0.5] and centres[-1].tolist() == [0.75, 0.5]  # x right, y down
    kp = SpatialKeypoints(dim=8, num_keypoints=2)
    with torch.no_grad():
        kp.norm.weight.fill_(1.0)
        kp.score.weight.zero_()
        kp.score.bias.zero_()
        kp.score.weight[0, 0] = 50.0  # keypoint 0 follows channel 0
    vision = torch.zeros(1, 2 * 8, 8)  # two cameras of 2x4 patches
    vision[0, 6, 0] = 1.0  # camera 0, row 1, column 2
    vision[0, 8 + 1, 0] = 1.0  # camera 1, row 0, column 1
    points = kp.keypoints(vision, (2, 4), num_cameras=2)  # [1, 2, 2, 2]
    assert torch.allclose(points[0, 0, 0], torch.tensor([0.25, 0.5]), atol=1e-3)
    assert torch.allclose(points[0, 1, 0], torch.tensor([-0.25, -0.5]), atol=1e-3)
    assert torch.allclose(points[0, 0, 1], torch.zeros(2), atol=1e-5)  # a flat score: the grid's centre


@pytest.mark.parametrize("num_cameras", [1, 2])
def test_keypoint_tokens_join_what_the_head_reads(tiny_qwen3, num_cameras):
    torch.manual_seed(0)
    cfg = tiny_config(tiny_qwen3, spatial_keypoints=4, language_film=True)
    model = VLAModel(cfg.model)
    batch = make_batch(cfg, batch_size=3, num_cameras=num_cameras)
    assert model.encode(batch).shape == (3, 4 + 2, 32)  # 4 queries + one token per camera slot
    assert model.predict_action_chunk(batch).shape == (3, 5, 7)
    loss, _ = model(batch)
    loss.backward()
    assert model.keypoints.score.weight.grad.abs().sum() > 0  # the head's loss reaches the keypoints
