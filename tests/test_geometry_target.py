"""Recorded geometry (data/geometry.py) and its training-only loss (models/geometry_head.py)."""

import dataclasses

import numpy as np
import pytest
import torch

from conftest import make_batch, tiny_config
from vggt_vla.config import ConfigError, config_from_dict
from vggt_vla.constants import CAMERA_KEYS, camera_extrinsics_key, camera_intrinsics_key, depth_key
from vggt_vla.data.geometry import decode_depth, depth_png, encode_depth, patch_geometry, project, unproject
from vggt_vla.data.writer import LeRobotWriter

SIZE = 32  # pixels per side of the synthetic cameras
GRID = (4, 4)


def _rotation(yaw: float, pitch: float) -> np.ndarray:
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return rz @ rx


def _camera(seed: int):
    """A mirrored pinhole (fx < 0, as LIBERO frames are stored) with a proper camera-from-base pose."""
    rng = np.random.default_rng(seed)
    f = 30.0 + 5 * seed
    intrinsics = np.array([-f, f, SIZE / 2 + 0.5, SIZE / 2 - 1.0], dtype=np.float32)
    R = _rotation(*rng.uniform(-0.6, 0.6, size=2))
    t = rng.uniform(-0.3, 0.3, size=3)
    extrinsics = np.concatenate([R, t[:, None]], axis=1).reshape(12).astype(np.float32)
    return intrinsics, extrinsics


def _plane_depth(z0: float) -> np.ndarray:
    """A fronto-parallel wall at z0 metres, with a hole (no depth) in the top-left patch."""
    depth = np.full((SIZE, SIZE), z0, dtype=np.float32)
    depth[:SIZE // GRID[0], :SIZE // GRID[1]] = 0
    return depth


def test_depth_survives_the_png_encoding_to_the_millimetre():
    depth = np.array([[0.0, 0.0004, 1.2344], [np.nan, -1.0, 70.0]], dtype=np.float32)
    back = decode_depth(depth_png(encode_depth(depth)))
    assert back.dtype == np.float32 and back.shape == (2, 3)
    assert np.allclose(back, [[0, 0, 1.234], [0, 0, 0]], atol=1e-6)  # 0 = no depth, as is beyond 65.5 m


def test_a_patch_point_matches_the_point_projected_by_hand():
    intrinsics, extrinsics = _camera(1)
    fx, fy, cx, cy = intrinsics.astype(np.float64)
    rt = extrinsics.reshape(3, 4).astype(np.float64)
    z0 = 0.8
    idx = np.arange(SIZE)
    geometry, valid = patch_geometry(_plane_depth(z0), intrinsics, extrinsics, idx, idx, GRID)
    assert geometry.shape == (16, 4) and valid.shape == (16,)
    assert not valid[0] and valid[1:].all() and np.all(geometry[0] == 0)
    step = SIZE // GRID[0]
    for patch in (1, 6, 15):
        r, c = divmod(patch, GRID[1])
        # A plane's mean point is the point under the patch centre (pixel centres at +0.5).
        u, v = (c + 0.5) * step, (r + 0.5) * step
        cam = np.array([(u - cx) * z0 / fx, (v - cy) * z0 / fy, z0])
        by_hand = rt[:, :3].T @ (cam - rt[:, 3])
        assert np.allclose(geometry[patch, :3], by_hand, atol=1e-5)
        assert geometry[patch, 3] == pytest.approx(z0)
        assert np.allclose(project(by_hand, intrinsics, extrinsics), [u, v, z0], atol=1e-4)


def test_unproject_and_project_are_inverse():
    intrinsics, extrinsics = _camera(2)
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 2.0, size=(SIZE, SIZE)).astype(np.float32)
    points = unproject(depth, intrinsics, extrinsics)  # [H, W, 3]
    uvz = project(points, intrinsics, extrinsics)
    v, u = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    assert np.allclose(uvz[..., 0], u, atol=1e-3) and np.allclose(uvz[..., 1], v, atol=1e-3)
    assert np.allclose(uvz[..., 2], depth, atol=1e-5)


def test_augmented_crops_move_the_geometry_with_the_image():
    """Red encodes the column, depth too: after a random crop, flip and resize, each patch's depth
    must still agree with the colour under it."""
    from vggt_vla.data.transforms import ImageTransform

    cols = np.tile(np.arange(SIZE), (SIZE, 1))  # [H, W]
    frame = np.zeros((SIZE, SIZE, 3), np.uint8)
    frame[..., 0] = cols * 8
    depth = (1.0 + cols / 100).astype(np.float32)
    intrinsics, extrinsics = _camera(0)
    torch.manual_seed(0)
    for flip in (False, True):
        t = ImageTransform(SIZE, flip=flip, augment=True, crop_scale=0.5, color_jitter=0.0)
        images, geometry, valid = t.with_geometry([frame, frame], [depth, depth], [(intrinsics, extrinsics)] * 2,
                                                  GRID)
        assert images.shape == (2, 3, SIZE, SIZE) and geometry.shape == (2, 16, 4) and valid.all()
        red = images[:, 0].reshape(2, GRID[0], SIZE // GRID[0], GRID[1], SIZE // GRID[1]).mean((2, 4))  # [2, 4, 4]
        column_from_colour = red.reshape(2, -1).numpy() * 255 / 8
        column_from_depth = (geometry[..., 3].numpy() - 1.0) * 100
        assert np.abs(column_from_colour - column_from_depth).max() < 1.0


def _write_geometry_dataset(root, episode_lengths=(6, 5)) -> dict:
    from vggt_vla.recording.schema import episode_features

    writer = LeRobotWriter(root, fps=10, features=episode_features(SIZE, [f"s{i}" for i in range(8)], geometry=True),
                           overwrite=True)
    rng = np.random.default_rng(0)
    written = {}
    for n in episode_lengths:
        frames = {"observation.state": rng.normal(size=(n, 8)).astype(np.float32),
                  "action": rng.uniform(-1, 1, size=(n, 7)).astype(np.float32)}
        for i, cam in enumerate(CAMERA_KEYS):
            frames[cam] = rng.integers(0, 255, size=(n, SIZE, SIZE, 3), dtype=np.uint8)
            depth = rng.uniform(0.3, 2.5, size=(n, SIZE, SIZE)).astype(np.float32)
            frames[depth_key(cam)] = encode_depth(depth)
            k, e = _camera(i)
            frames[camera_intrinsics_key(cam)] = np.tile(k, (n, 1))
            frames[camera_extrinsics_key(cam)] = np.tile(e, (n, 1))
            written.setdefault(cam, []).append(np.round(depth * 1000) / 1000)
        writer.add_episode(frames, task="put the bowl on the plate")
    writer.finalize()
    return {cam: np.concatenate(v) for cam, v in written.items()}


def test_geometry_round_trips_through_the_writer_and_the_loader(tmp_path):
    from vggt_vla.data.dataset import FrameDataset
    from vggt_vla.data.lerobot import LeRobotSource
    from vggt_vla.data.transforms import ImageTransform

    depths = _write_geometry_dataset(tmp_path / "ds")
    plain = LeRobotSource(tmp_path / "ds", camera_keys=None, progress=False, cache_dir=tmp_path / "cache")
    assert plain.camera_keys == list(CAMERA_KEYS)  # depth maps are not cameras
    src = LeRobotSource(tmp_path / "ds", camera_keys=None, geometry=True, progress=False, cache_dir=tmp_path / "cache")
    for cam_pos, cam in enumerate(CAMERA_KEYS):
        for row in (0, 7, 10):
            assert np.allclose(src.depth(cam_pos, row), depths[cam][row], atol=1e-6)
            k, e = src.camera(cam_pos, row)
            assert np.array_equal(k, _camera(cam_pos)[0]) and np.array_equal(e, _camera(cam_pos)[1])
    ds = FrameDataset(src, chunk_size=3, transform=ImageTransform(SIZE), geometry_grid=GRID)
    item = ds[4]
    assert item["geometry"].shape == (2, 16, 4) and item["geometry_valid"].all()
    idx = np.arange(SIZE)
    want, _ = patch_geometry(depths[CAMERA_KEYS[1]][item["row"]], *_camera(1), idx, idx, GRID)
    assert np.allclose(item["geometry"][1].numpy(), want, atol=1e-5)


def test_the_geometry_loss_on_a_dataset_without_depth_names_the_fix(tmp_path):
    from synthetic_data import make_synthetic_dataset
    from vggt_vla.data.lerobot import LeRobotSource
    from vggt_vla.data.meta import DatasetError

    make_synthetic_dataset(tmp_path / "plain", image_size=16)
    with pytest.raises(DatasetError, match=r"no recorded geometry.*--geometry --rerender"):
        LeRobotSource(tmp_path / "plain", camera_keys=None, geometry=True, progress=False, cache_dir=tmp_path / "c")


def _geometry_cfg(tiny_qwen3, **target):
    return tiny_config(tiny_qwen3, geometry_target={"weight": 1.0, "layer": 1, **target})


def _with_targets(batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    B, V = batch["images"].shape[:2]
    batch["geometry"] = torch.rand(B, V, 16, 4, generator=g)
    batch["geometry_valid"] = torch.ones(B, V, 16, dtype=torch.bool)
    batch["geometry_valid"][0, 0, :3] = False
    return batch


def test_the_geometry_head_trains_and_is_absent_at_inference(tiny_qwen3):
    from vggt_vla.models.geometry_head import GeometryHead
    from vggt_vla.models.vla_model import VLAModel

    cfg = _geometry_cfg(tiny_qwen3)
    model = VLAModel(cfg.model)
    batch = _with_targets(make_batch(cfg))
    before = GeometryHead.forward_count
    loss, metrics = model(batch)
    assert GeometryHead.forward_count == before + 1 and metrics["geometry_loss"] > 0
    loss.backward()
    assert model.geometry_head.mlp[-1].weight.grad.abs().sum() > 0
    model.predict_action_chunk(batch)
    assert GeometryHead.forward_count == before + 1  # inference never runs the head
    # ... and predicts exactly what the same network without the head predicts.
    plain = VLAModel(tiny_config(tiny_qwen3).model)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("geometry_head.")})
    torch.testing.assert_close(plain.predict_action_chunk(batch), model.predict_action_chunk(batch))


def test_the_geometry_loss_ignores_patches_without_depth(tiny_qwen3):
    from vggt_vla.models.vla_model import VLAModel

    cfg = _geometry_cfg(tiny_qwen3, predict="depth")
    model = VLAModel(cfg.model)
    batch = _with_targets(make_batch(cfg))
    _, a = model(batch)
    batch["geometry"][0, 0, :3] = 1e6  # where geometry_valid is False
    _, b = model(batch)
    assert a["geometry_loss"] == b["geometry_loss"]
    del batch["geometry"]
    with pytest.raises(KeyError, match="recorded geometry"):
        model(batch)


def test_geometry_target_config_is_checked(tiny_qwen3):
    base = dataclasses.asdict(tiny_config(tiny_qwen3).model)
    cases = [({"geometry_target": {"weight": 1.0, "layer": 2}}, "out of range"),
             ({"geometry_target": {"weight": -1.0}}, ">= 0"),
             ({"geometry_target": {"weight": 1.0, "predict": "normals"}}, "predict"),
             ({"geometry_target": {"weight": 1.0}, "geometry_alignment": {"enabled": True}}, "one of them")]
    for overrides, message in cases:
        model = {**base, **{k: {**base[k], **v} for k, v in overrides.items()}}
        with pytest.raises(ConfigError, match=message):
            config_from_dict({"model": model})


def test_a_policy_trains_with_the_geometry_loss_and_the_probe_reads_its_tokens(tmp_path, tiny_qwen3):
    import json

    from vggt_vla.geometry_probe import probe_geometry
    from vggt_vla.policy import Policy
    from vggt_vla.training.trainer import Trainer

    _write_geometry_dataset(tmp_path / "ds", episode_lengths=(6, 5, 7, 4))
    model = dataclasses.asdict(_geometry_cfg(tiny_qwen3).model)
    cfg = config_from_dict({
        "model": model,
        "data": {"dataset_repo": "", "dataset_root": str(tmp_path / "ds"), "num_workers": 0, "val_fraction": 0.25,
                 "augment": True, "cache_dir": str(tmp_path / "cache")},
        "train": {"batch_size": 4, "max_steps": 2, "warmup_steps": 1, "log_every": 1, "eval_every": 2,
                  "val_batches": 1, "save_every": 2, "image_every": 0, "device": "cpu",
                  "log_dir": str(tmp_path / "logs"), "exp_name": "geo"}})
    Trainer(cfg, progress=False).fit()
    lines = [json.loads(x) for x in (tmp_path / "logs" / "geo" / "metrics.jsonl").read_text().splitlines()]
    assert any("train/geometry_loss" in x for x in lines) and any("val/geometry_loss" in x for x in lines)
    policy = Policy.from_pretrained(tmp_path / "logs" / "geo", device="cpu")
    result = probe_geometry(policy, str(tmp_path / "ds"), frames=6, cache_dir=str(tmp_path / "cache"))
    assert list(result["layers"]) == ["position", "encoder", "layer 0", "layer 1"]
    for row in result["layers"].values():
        assert np.isfinite(row["point_error_cm"]) and set(row["r2"]) == {"x", "y", "z", "depth"}


def test_a_camera_shift_is_checked_and_refused_by_the_demo_env():
    from vggt_vla.closed_loop import ClosedLoopSpec
    from vggt_vla.sim.demo_env import make_demo_env

    spec = ClosedLoopSpec(sim="demo", policy="scripted", camera_shift=(0.05, 5))
    assert spec.env_options.camera_shift == (0.05, 5.0)
    with pytest.raises(ValueError, match="METRES|metres"):
        ClosedLoopSpec(sim="demo", policy="scripted", camera_shift=(0.05, float("nan")))
    with pytest.raises(ValueError, match="cannot be shifted"):
        make_demo_env(spec.env_options, 0)


def test_the_probe_credits_tokens_only_for_what_position_does_not_explain():
    """score_readouts: a token carrying each frame's scene offset beats the floor (position alone);
    a token of noise does not; and the floor itself recovers a fixed per-patch layout."""
    from vggt_vla.geometry_probe import score_readouts

    rng = np.random.default_rng(0)
    slots, dim = 8, 6

    def split(frames):
        layout = np.linspace(0.2, 1.6, slots * 4).reshape(slots, 4)     # [slots, 4] the fixed camera's mean
        offset = rng.normal(0, 0.3, (frames, 1, 4))                     # [frames, 1, 4] what the scene changes
        y = (layout[None] + offset).reshape(-1, 4)                      # [frames*slots, 4]
        signal = np.repeat(offset, slots, axis=1).reshape(-1, 4) @ np.eye(4, dim)  # [frames*slots, dim]
        noise = rng.normal(size=(frames * slots, dim))
        return {"informed": signal + 0.01 * noise, "blind": noise}, y, np.ones(len(y), bool)

    out = score_readouts(split(200), split(100), slots, alpha=1e-3)
    floor = out["position"]["point_error_cm"]
    assert out["informed"]["point_error_cm"] < 0.1 * floor
    assert abs(out["blind"]["point_error_cm"] - floor) < 0.05 * floor
    assert out["informed"]["r2"]["depth"] > 0.95 and out["position"]["r2"]["depth"] < 0.8
