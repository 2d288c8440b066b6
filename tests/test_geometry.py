"""VGGT as a training-time geometry teacher (model.geometry_alignment), on tiny random teachers
with the shared VGGT fixture's dimensions (../shared/vggt/fixture/config.json)."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from conftest import assert_two_process_step_in_sync, make_batch, run_script, tiny_config
from vggt_vla.config import ConfigError, load_config
from vggt_vla.models.geometry import GeometryTeacher, cosine_alignment_loss, resample_to_grid
from vggt_vla.models.vggt import Aggregator, vggt_1b
from vggt_vla.models.vla_model import VLAModel

# The shared fixture's aggregator: C = 64, 2 layers, 4 heads, 4 registers, patch 14.
TEACHER = dict(img_size=56, embed_dim=64, depth=2, num_heads=4, num_register_tokens=4,
               vit_embed_dim=64, vit_depth=2, vit_num_heads=4, init_values=1.0)


@pytest.fixture(scope="module")
def teacher_checkpoint(tmp_path_factory) -> str:
    """A random teacher saved in the official VGGT checkpoint layout (aggregator.* keys)."""
    torch.manual_seed(3)
    agg = vggt_1b(**TEACHER)
    folder = tmp_path_factory.mktemp("teacher")
    save_file({f"aggregator.{k}": v.contiguous() for k, v in agg.state_dict().items()},
              str(folder / "model.safetensors"))
    return str(folder)


def align_config(language_model, teacher, image_size=56, **model):
    alignment = {"enabled": True, "checkpoint": teacher, "aggregator_kwargs": TEACHER,
                 "image_size": image_size, "student_layer": 0, "projector_dim": 48}
    return tiny_config(language_model, geometry_alignment=alignment, **model)


def test_resample_keeps_cameras_apart_and_is_identity_on_the_same_grid():
    import torch.nn.functional as F

    h, w, C = 3, 5, 4  # a non-square grid: a transposed or column-major reshape would show
    cams = [torch.arange(h * w * C, dtype=torch.float32).view(h, w, C) * s for s in (1.0, -2.0)]
    tokens = torch.cat([c.reshape(1, h * w, C) for c in cams], dim=1).repeat(2, 1, 1)  # [B=2, V*h*w, C]
    same = resample_to_grid(tokens, (h, w), (h, w))
    assert same.shape == (2, 2, h * w, C) and torch.equal(same.flatten(1, 2), tokens)
    up = resample_to_grid(tokens, (h, w), (4, 6))  # e.g. 14x14 patch tokens -> VGGT's 16x16
    assert up.shape == (2, 2, 24, C)
    for v, cam in enumerate(cams):  # each camera resampled on its own, row-major
        want = F.interpolate(cam.permute(2, 0, 1)[None], size=(4, 6), mode="bilinear", align_corners=False)
        assert torch.allclose(up[0, v], want[0].permute(1, 2, 0).reshape(24, C))


def test_vggt_1b_sizes_known_to_the_config_match_the_preset():
    from vggt_vla.config import VGGT_1B_DEPTH, VGGT_1B_WIDTH

    with torch.device("meta"):
        agg = vggt_1b()
    assert agg.depth == VGGT_1B_DEPTH and agg.camera_token.shape[-1] == VGGT_1B_WIDTH


def test_cosine_loss_values():
    a = torch.randn(2, 2, 4, 8)
    assert cosine_alignment_loss(a, 3 * a).item() == pytest.approx(0.0, abs=1e-6)
    assert cosine_alignment_loss(a, -a).item() == pytest.approx(2.0, abs=1e-6)
    e0, e1 = torch.zeros(1, 1, 1, 8), torch.zeros(1, 1, 1, 8)
    e0[..., 0], e1[..., 1] = 1, 1
    assert cosine_alignment_loss(e0, e1).item() == pytest.approx(1.0)


@pytest.mark.parametrize("image_size", [56, 28])  # teacher grid 4x4 (= the student's) and 2x2
def test_gradient_reaches_student_and_projector_not_teacher(tiny_qwen3, teacher_checkpoint, image_size):
    torch.manual_seed(0)
    cfg = align_config(tiny_qwen3, teacher_checkpoint, image_size)
    model = VLAModel(cfg.model, geometry_teacher=True)
    teacher = model.geometry_teacher
    assert teacher.grid == (image_size // 14,) * 2
    assert not any(p.requires_grad for p in teacher.parameters())
    batch = make_batch(cfg)
    model.train()
    assert not teacher.aggregator.training
    loss, metrics = model(batch)
    weight = cfg.model.geometry_alignment.weight
    assert 0 < metrics["align_loss"].item() < 2
    assert torch.allclose(loss, metrics["action_loss"] + weight * metrics["align_loss"])
    # The alignment term alone reaches the projector and the student (the patch embedding and the
    # tapped backbone layer), and never the teacher.
    model.zero_grad()
    _, student = model.backbone.run(model.fusion_inputs(batch), 0)
    align = model.alignment.loss(student, (4, 4), batch["images"])
    align.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.alignment.projector.parameters())
    assert model.vision.backbone.proj.weight.grad.abs().sum() > 0
    assert model.backbone.layers[0].block.attn.qkv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.backbone.layers[1].parameters())  # after the tap
    assert all(p.grad is None for p in teacher.parameters())


def test_alignment_pulls_the_student_to_the_teacher(tiny_qwen3, teacher_checkpoint):
    torch.manual_seed(0)
    cfg = align_config(tiny_qwen3, teacher_checkpoint)
    model = VLAModel(cfg.model, geometry_teacher=True).train()
    batch = make_batch(cfg, batch_size=4)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    first = None
    for _ in range(30):
        loss, metrics = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else metrics["align_loss"].item()
    assert metrics["align_loss"].item() < 0.5 * first


@pytest.mark.parametrize("fusion", ["late", "cross_attention"])
def test_the_vggt_adapter_fusion_blocks_are_students_too(tiny_qwen3, teacher_checkpoint, fusion):
    backbone = {"checkpoint": teacher_checkpoint, "aggregator_kwargs": TEACHER, "image_size": 28,
                "fusion": fusion, "fusion_depth": 2, "fusion_heads": 4, "use_camera_tokens": True}
    cfg = align_config(tiny_qwen3, teacher_checkpoint, backbone="vggt", vggt=backbone)
    model = VLAModel(cfg.model, geometry_teacher=True)
    batch = make_batch(cfg)
    loss, metrics = model(batch)
    assert 0 < metrics["align_loss"].item() < 2
    inputs = model.fusion_inputs(batch)
    _, student = model.backbone.run(inputs, 0)  # the vision tokens after block 0
    assert student.shape == (2, 2 * 16, 32)
    with torch.no_grad():  # the same slice, by hand: block 0 over the whole fusion sequence
        adapter = model.backbone
        vggt = adapter._vggt_tokens(adapter._frames(inputs.images))  # [B, 2*4 + 2 camera tokens, D]
        vision = inputs.vision if fusion == "late" else adapter.cross(inputs.vision, vggt)
        prefix = [vggt] if fusion == "late" else []
        x = torch.cat(prefix + [vision, inputs.language, inputs.state, inputs.queries], dim=1)
        start = vggt.shape[1] if prefix else 0
        ones = lambda n: torch.ones(2, n, dtype=torch.bool)  # noqa: E731
        mask = torch.cat([ones(start + vision.shape[1]), inputs.language_mask, ones(1 + 4)], dim=1)
        want = adapter.blocks[0](x, mask)[:, start:start + vision.shape[1]]
        assert torch.allclose(student, want, atol=1e-5)
    model.alignment.loss(student, (4, 4), batch["images"]).backward()
    assert model.vision.backbone.proj.weight.grad.abs().sum() > 0
    assert model.backbone.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.backbone.blocks[1].parameters())  # after the tap
    assert model.predict_action_chunk(batch).shape == (2, 5, 7)


def test_teacher_features_come_from_the_cache_once_stored(tiny_qwen3, teacher_checkpoint, tmp_path):
    from vggt_vla.training.feature_cache import FeatureCache

    cfg = align_config(tiny_qwen3, teacher_checkpoint)
    model = VLAModel(cfg.model, geometry_teacher=True).eval()
    teacher = model.geometry_teacher
    teacher.feature_cache = FeatureCache(tmp_path, {"test": 1}, num_frames=10)
    batch = make_batch(cfg, batch_size=3)
    ids = torch.tensor([7, 2, 5])
    before = GeometryTeacher.forward_count
    plain = teacher(batch["images"])  # no frame ids: computed, not cached
    first = teacher(batch["images"], ids)  # fills frames 7, 2, 5
    again = teacher(batch["images"], ids)  # all hits: the aggregator does not run
    assert GeometryTeacher.forward_count == before + 2
    assert teacher.feature_cache.num_hits == 3 and teacher.feature_cache.num_misses == 3
    assert plain.shape == (3, 2, 16, 2 * 64)
    assert torch.equal(first, again)  # a computed frame comes back as it will from the cache
    assert torch.allclose(again, plain, atol=1e-2)  # float16 on disk


def test_config_rejects_unsupported_students_and_layers(tiny_qwen3, teacher_checkpoint):
    on = ["model.geometry_alignment.enabled=true"]
    with pytest.raises(ConfigError, match="model.geometry_alignment.enabled.*inject"):
        load_config("full", on + ["model.vggt.fusion=inject"])
    with pytest.raises(ConfigError, match="model.geometry_alignment.feature_layers"):
        load_config("simple", on + ["model.geometry_alignment.feature_layers=[24]"])
    with pytest.raises(ConfigError, match="model.geometry_alignment.student_layer"):
        load_config("simple", on + ["model.geometry_alignment.student_layer=6"])
    with pytest.raises(ConfigError, match="model.geometry_alignment.image_size"):
        load_config("simple", on + ["model.geometry_alignment.image_size=200"])
    # the command line says the same and exits with 2, before building anything
    out = run_script("scripts/test_model.py", "--config", "full", "--set", on[0], "--set", "model.vggt.fusion=inject")
    assert out.returncode == 2 and "model.geometry_alignment.enabled" in out.stderr + out.stdout


def test_inject_mode_builds_no_vision_encoder(tiny_qwen3, teacher_checkpoint):
    backbone = {"checkpoint": teacher_checkpoint, "aggregator_kwargs": TEACHER, "image_size": 28,
                "fusion": "inject", "inject_last_k": 1}
    cfg = tiny_config(tiny_qwen3, backbone="vggt", vggt=backbone)
    model = VLAModel(cfg.model)
    assert model.vision is None
    loss, _ = model(make_batch(cfg))
    loss.backward()
    assert model.predict_action_chunk(make_batch(cfg)).shape == (2, 5, 7)
    with pytest.raises(ConfigError, match="model.language_film"):
        tiny_config(tiny_qwen3, backbone="vggt", vggt=backbone, language_film=True)


@pytest.fixture(scope="module")
def aligned_run(tiny_qwen3, teacher_checkpoint, demo_dataset, tmp_path_factory):
    """Two epochs with the geometry teacher and the frame cache: (config, fit result, what the
    trainer saw: train / validation frames, cache hits and misses, teacher forwards)."""
    from vggt_vla.config import config_from_dict
    from vggt_vla.training.trainer import Trainer

    tmp_path = tmp_path_factory.mktemp("aligned")
    cfg = config_from_dict({
        "model": align_config(tiny_qwen3, teacher_checkpoint).to_dict()["model"],
        "data": {"dataset_repo": "", "dataset_root": demo_dataset, "num_workers": 0, "val_fraction": 0.25},
        "train": {"batch_size": 16, "num_epochs": 2, "warmup_steps": 0, "log_every": 5, "eval_every": 0,
                  "image_every": 0, "cache_features": True, "feature_cache_dir": str(tmp_path / "cache"),
                  "log_dir": str(tmp_path / "logs"), "exp_name": "align", "device": "cpu"},
    })
    trainer = Trainer(cfg, progress=False)
    before = GeometryTeacher.forward_count
    result = trainer.fit()
    cache = trainer.accelerator.unwrap_model(trainer.model).geometry_teacher.feature_cache
    seen = {"frames": len(trainer.train_set), "val_frames": len(trainer.val_set), "hits": cache.num_hits,
            "misses": cache.num_misses, "teacher_forwards": GeometryTeacher.forward_count - before}
    return cfg, result, seen


def test_the_frame_cache_runs_the_teacher_once_per_frame(aligned_run):
    _, result, seen = aligned_run
    # each frame's teacher forward ran once over the run: the second epoch was served from disk
    # (and the final validation computed the validation frames once)
    assert seen["hits"] == seen["frames"] and seen["misses"] == seen["frames"] + seen["val_frames"]
    assert seen["teacher_forwards"] > result["step"] // 2
    logged = (Path(result["run_dir"]) / "metrics.jsonl").read_text()
    for name in ("train/align_loss", "train/action_loss", "val/align_loss", "val/action_loss"):
        assert name in logged


def test_the_checkpoint_holds_the_projector_and_names_the_teacher(aligned_run, teacher_checkpoint):
    from vggt_vla.checkpoint import load_checkpoint

    ckpt = load_checkpoint(aligned_run[1]["run_dir"])
    assert ckpt["pretrained_parts"]["alignment.teacher"] == teacher_checkpoint
    assert not any(k.startswith("alignment.teacher.") for k in ckpt["model"])
    assert any(k.startswith("alignment.projector.") for k in ckpt["model"])


def test_the_policy_builds_no_teacher_and_runs_none(aligned_run):
    from vggt_vla.policy import Policy

    policy = Policy.from_pretrained(aligned_run[1]["run_dir"], device="cpu")
    assert policy.model.geometry_teacher is None
    assert not any(isinstance(m, (Aggregator, GeometryTeacher)) for m in policy.model.modules())
    before = GeometryTeacher.forward_count
    batch = make_batch(policy.cfg)
    del batch["actions"], batch["action_pad_mask"]
    assert policy.model.predict_action_chunk(batch).shape == (2, 5, 7)
    assert GeometryTeacher.forward_count == before


def test_a_resumed_run_gets_the_teacher_from_its_source_and_the_projector_from_the_checkpoint(aligned_run,
                                                                                             tmp_path):
    """... and the frame cache is attached again."""
    import copy
    import shutil

    from vggt_vla.checkpoint import load_checkpoint
    from vggt_vla.training.trainer import Trainer

    cfg, result, _ = aligned_run
    cfg = copy.deepcopy(cfg)
    cfg.train.num_epochs = 3
    run = shutil.copytree(result["run_dir"], tmp_path / "align")  # the other tests read the original
    ckpt = load_checkpoint(run)
    resumed = Trainer(cfg, resume=str(run), progress=False)
    model = resumed.accelerator.unwrap_model(resumed.model)
    assert model.geometry_teacher is not None and model.geometry_teacher.feature_cache is not None
    assert all(torch.equal(v, ckpt["model"][f"alignment.projector.{k}"])
               for k, v in model.alignment.projector.state_dict().items())
    assert resumed.fit(stop_after=1)["step"] == result["step"] + 1


def test_every_vggt_mode_trains_in_two_processes(tiny_qwen3, teacher_checkpoint, demo_dataset, tmp_path):
    """late, inject, cross_attention and the geometry teacher under DDP; plus an unfrozen trunk
    read at layer 0, whose later layers get no gradient (DDP must not wait for them)."""
    from vggt_vla.config import config_from_dict

    trunk = {"checkpoint": teacher_checkpoint, "aggregator_kwargs": TEACHER, "image_size": 28,
             "fusion_depth": 1, "fusion_heads": 4, "inject_last_k": 1}
    models = [tiny_config(tiny_qwen3, backbone="vggt", vggt={**trunk, "fusion": fusion})
              for fusion in ("late", "inject", "cross_attention")]
    models.append(align_config(tiny_qwen3, teacher_checkpoint))
    models.append(tiny_config(tiny_qwen3, backbone="vggt",
                              vggt={**trunk, "freeze_vggt": False, "feature_layers": [0]}))
    configs = [config_from_dict({
        "model": m.to_dict()["model"],
        "data": {"dataset_repo": "", "dataset_root": demo_dataset, "num_workers": 0, "val_fraction": 0.0},
        "train": {"batch_size": 4, "max_steps": 2, "warmup_steps": 0, "eval_every": 0, "image_every": 0,
                  "log_dir": str(tmp_path / "logs"), "exp_name": f"mode{i}", "device": "cpu"},
    }) for i, m in enumerate(models)]
    assert_two_process_step_in_sync(configs, tmp_path)
