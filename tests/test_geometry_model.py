"""The small VGGT trained here (models/geometry_model.py, training/geometry_model.py): its targets,
its checkpoint, and that the policy loads it through VGGT-1B's own loading path."""

import json

import numpy as np
import pytest
import torch

from conftest import run_script, tiny_config
from test_geometry_target import _write_geometry_dataset
from vggt_vla.data.geometry import pose_target

# A tiny preset of the port (28 px frames, 2 x 2 patches of 14), with SMALL_KWARGS's kind of
# patchifier: DINOv2's, cut to one block.
TINY = dict(img_size=28, patch_size=14, embed_dim=32, depth=1, num_heads=2,
            patch_embed="dinov2_vits14_reg", vit_embed_dim=32, vit_depth=1, vit_num_heads=2)


def test_pose_target_is_the_relative_camera_pose():
    rng = np.random.default_rng(0)
    a = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    a *= np.sign(np.linalg.det(a))  # a proper rotation
    t0, t1 = rng.normal(size=3), rng.normal(size=3)
    R1 = np.eye(3)
    extrinsics = np.stack([np.concatenate([a, t0[:, None]], 1).reshape(12), np.concatenate([R1, t1[:, None]], 1).reshape(12)])
    pose = pose_target(extrinsics)
    assert np.allclose(pose[0], [0, 0, 0, 1, 0, 0, 0], atol=1e-6)  # frame 0 is the world
    # camera_1-from-camera_0 = R1 a^T, so a point at camera 0's origin lands at t1 - R1 a^T t0.
    assert np.allclose(pose[1, :3], t1 - a.T @ t0, atol=1e-5)
    w, x, y, z = pose[1, 3:]
    R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                  [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                  [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    assert np.allclose(R, R1 @ a.T, atol=1e-5) and w >= 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("geometry_model")
    _write_geometry_dataset(root / "ds", episode_lengths=(6, 5, 4))
    out = root / "teacher"
    result = run_script("scripts/train_geometry_model.py", "--dataset", str(root / "ds"), "--out", str(out),
                        "--steps", "3", "--batch_size", "2", "--num_workers", "0", "--val_fraction", "0.3",
                        "--aggregator_kwargs", json.dumps(TINY), VGGT_VLA_CACHE=str(root / "cache"))
    assert result.returncode == 0, result.stderr[-3000:]
    return root, out


def test_training_reports_held_out_accuracy_and_refuses_to_overwrite(trained):
    root, out = trained
    info = json.loads((out / "config.json").read_text())
    assert info["aggregator_kwargs"] == TINY and len(info["val_episodes"]) == 1
    assert set(info["val_episodes"]).isdisjoint(info["train_episodes"])
    held = info["held_out"]
    assert held["frames"] > 0 and held["depth_absrel"] > 0 and held["point_error_cm"] > 0
    floor = info["held_out_mean_frame"]  # the input-blind floor, scored on the same frames
    assert floor["frames"] == held["frames"] and floor["depth_absrel"] > 0 and floor != held
    again = run_script("scripts/train_geometry_model.py", "--dataset", str(root / "ds"), "--out", str(out),
                       "--steps", "1", "--aggregator_kwargs", json.dumps(TINY))
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_the_policy_loads_it_like_vggt_1b(trained, tiny_qwen3):
    from safetensors.torch import load_file

    from vggt_vla.models.vla_model import VLAModel

    _, out = trained
    saved = load_file(str(out / "model.safetensors"))
    assert any(k.startswith("heads.") for k in saved)  # the training heads ride along, unloaded
    alignment = {"enabled": True, "checkpoint": str(out), "aggregator_kwargs": TINY, "image_size": 28,
                 "student_layer": 0, "projector_dim": 16}
    model = VLAModel(tiny_config(tiny_qwen3, geometry_alignment=alignment).model, geometry_teacher=True)
    for key, value in model.geometry_teacher.aggregator.state_dict().items():
        assert torch.equal(value, saved[f"aggregator.{key}"])
    backbone = VLAModel(tiny_config(tiny_qwen3, backbone="vggt", vggt={
        "checkpoint": str(out), "aggregator_kwargs": TINY, "image_size": 28, "fusion": "late",
        "fusion_depth": 1, "fusion_heads": 4}).model)
    for key, value in backbone.backbone.aggregator.state_dict().items():
        assert torch.equal(value, saved[f"aggregator.{key}"])


def test_a_checkpoint_of_another_width_is_refused_by_name(trained, tiny_qwen3):
    from vggt_vla.models.vggt import CheckpointError
    from vggt_vla.models.vla_model import VLAModel

    _, out = trained
    alignment = {"enabled": True, "checkpoint": str(out), "aggregator_kwargs": {**TINY, "embed_dim": 16},
                 "image_size": 28, "student_layer": 0, "projector_dim": 16}
    with pytest.raises(CheckpointError, match=r"embed_dim': 32.*embed_dim': 16.*aggregator_kwargs"):
        VLAModel(tiny_config(tiny_qwen3, geometry_alignment=alignment).model, geometry_teacher=True)
