"""LIBERO's recorded geometry (depth and camera parameters), its perturbations (LIBERO-PRO's rephrased
instructions, a shifted camera) and geometry in generated demonstrations. Skipped without the simulator."""

import json

import numpy as np
import pytest

from conftest import run_script as run
from conftest import needs_libero
from test_libero_sim import CAMS
from vggt_vla.constants import camera_extrinsics_key, camera_intrinsics_key, depth_key

pytestmark = needs_libero


def _camera_centre(extrinsics):
    rt = np.asarray(extrinsics, dtype=np.float64).reshape(3, 4)
    return -rt[:, :3].T @ rt[:, 3], rt[:, :3]


def test_the_two_cameras_see_the_same_points():
    """Wrist pixels moved to the base frame and projected into the agent view land at the agent
    view's own depth: intrinsics (mirrored), extrinsics and depth scale all agree."""
    from vggt_vla.data.geometry import project, unproject
    from vggt_vla.sim.libero import LiberoEnv

    env = LiberoEnv("libero_spatial", 0, camera_size=64, fast_render=True)
    try:
        env.reset(0)
        obs = env.render_cameras(geometry=True)
        plain = env.render_cameras()
    finally:
        env.close()
    for cam in CAMS:
        assert np.array_equal(obs[cam], plain[cam])  # depth comes with the same pictures
        assert obs[depth_key(cam)].shape == (64, 64) and obs[depth_key(cam)].min() > 0
    wrist, agent = CAMS[1], CAMS[0]
    points = unproject(obs[depth_key(wrist)], obs[camera_intrinsics_key(wrist)], obs[camera_extrinsics_key(wrist)])
    uvz = project(points.reshape(-1, 3), obs[camera_intrinsics_key(agent)], obs[camera_extrinsics_key(agent)])
    inside = (uvz[:, 0] >= 0) & (uvz[:, 0] < 64) & (uvz[:, 1] >= 0) & (uvz[:, 1] < 64)
    assert inside.mean() > 0.9
    seen = obs[depth_key(agent)][uvz[inside, 1].astype(int), uvz[inside, 0].astype(int)]
    assert np.median(np.abs(seen - uvz[inside, 2])) < 0.01  # metres; occlusions make the tail
    heights = points[..., 2].reshape(-1)  # most of the wrist view is the flat table top
    assert np.mean(np.abs(heights - np.median(heights)) < 0.002) > 0.5


def test_a_shifted_camera_moves_by_what_was_asked():
    from vggt_vla.sim.libero import LiberoEnv

    poses = {}
    for shift in (None, (0.05, 5.0)):
        env = LiberoEnv("libero_spatial", 0, camera_size=32, fast_render=True, camera_shift=shift)
        try:
            poses[shift] = [_camera_centre(env.reset(k) and env.render_cameras(geometry=True)
                                           [camera_extrinsics_key(CAMS[0])]) for k in (0, 1)]
        finally:
            env.close()
    (c0, r0), (c0b, _) = poses[None]
    (c1, r1), (c1b, _) = poses[(0.05, 5.0)]
    assert np.allclose(c0, c0b) and np.allclose(c1, c1b)  # the same after every reset
    assert np.linalg.norm(c1 - c0) == pytest.approx(0.05, abs=1e-6)
    angle = np.degrees(np.arccos((np.trace(r0 @ r1.T) - 1) / 2))
    assert angle == pytest.approx(5.0, abs=1e-3)


def test_rephrased_suites_give_the_policy_the_bddl_instruction():
    from vggt_vla.sim.libero import bddl_language, load_task

    original, rephrased = load_task("libero_spatial", 0), load_task("libero_spatial_lan", 0)
    assert rephrased.instruction == bddl_language(rephrased.bddl_file) != original.instruction
    assert rephrased.instruction.startswith("lift the black bowl")
    # The other suites keep the benchmark's instruction, which the datasets store.
    assert load_task("libero_spatial_swap", 0).instruction == original.instruction


def test_eval_rejects_a_bad_camera_shift(tmp_path):
    out = run("scripts/eval.py", "--sim", "libero", "--policy", "scripted", "--camera_shift", "0.05",
              "--json", str(tmp_path / "r.json"))
    assert out.returncode == 2 and "METRES,DEGREES" in out.stderr


def test_geometry_is_added_to_a_generation_without_simulating_again(tmp_path):
    out = tmp_path / "ds"
    args = ["scripts/generate_libero_demos.py", "--tasks", "0", "--episodes_per_task", "1", "--format", "both",
            "--image_size", "32", "--fast_render", "--out", str(out)]
    result = run(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    episode = next((out / "episodes").glob("*.npz"))
    import h5py

    from vggt_vla.data.libero_hdf5 import find_hdf5_files

    def h5_frames():
        with h5py.File(find_hdf5_files(str(out / "libero_hdf5"))[0], "r") as f:
            return f["data/demo_0/obs/agentview_rgb"][:]

    rendered = h5_frames()
    # As a generation saved before fixture poses were recorded: the seeded reset must find them again.
    with np.load(episode) as f:
        assert f["fixture_poses"].shape == (2, 7)
        saved = {k: f[k] for k in f.files if k != "fixture_poses"}
    np.savez(episode, **saved)
    simulated = episode.stat().st_mtime_ns
    result = run(*args, "--geometry")
    assert result.returncode == 2 and "--rerender" in result.stderr and "without geometry" in result.stderr
    result = run(*args, "--geometry", "--rerender")
    assert result.returncode == 0, result.stderr[-3000:]
    assert episode.stat().st_mtime_ns == simulated  # rendered from the saved episode
    assert np.array_equal(h5_frames(), rendered)  # the same fixtures, found again
    summary = json.loads((out / "expert_success.json").read_text())
    assert summary["fixtures_as_simulated"] is True
    info = json.loads((out / "lerobot" / "meta" / "info.json").read_text())
    assert info["features"][depth_key(CAMS[0])]["shape"] == [32, 32, 1] and "geometry" in info
    assert summary["geometry"] is True

    from vggt_vla.data.lerobot import LeRobotSource

    src = LeRobotSource(out / "lerobot", camera_keys=list(CAMS), geometry=True, progress=False,
                        cache_dir=tmp_path / "cache")
    row = src.num_rows // 2
    with h5py.File(find_hdf5_files(str(out / "libero_hdf5"))[0], "r") as f:
        h5_depth = f["data/demo_0/obs/agentview_depth"][row, ..., 0]
        h5_k = f["data/demo_0/obs/agentview_intrinsics"][row]
    assert np.allclose(src.depth(0, row), h5_depth[::-1, ::-1], atol=1e-3)  # stored like the raw renders
    k = src.camera(0, row)[0]
    assert np.allclose(h5_k, [-k[0], -k[1], 32 - k[2], 32 - k[3]])
