"""LIBERO in the loop: the env wrapper, the scripted expert, demo generation and eval.py --sim libero.

Needs the simulator (pip install -r requirements-sim.txt, plus Mesa for CPU rendering); skipped
otherwise. Small cameras and fast rendering keep the whole file around a minute or two on a CPU.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import needs_libero
from conftest import run_script as run

pytestmark = needs_libero

CAMS = ("observation.images.image", "observation.images.wrist_image")


@pytest.fixture(scope="module")
def env():
    from vggt_vla.sim.libero import LiberoEnv

    e = LiberoEnv("libero_spatial", 0, camera_size=48, fast_render=True)
    yield e
    e.close()


def test_env_observation_format_and_orientation(env):
    from vggt_vla.sim.libero import STATE_KEY, robot_state

    obs = env.reset(0)
    assert set(obs) == {*CAMS, STATE_KEY, "instruction"}
    assert obs["instruction"] == env.task.instruction and "black bowl" in obs["instruction"]
    for key in CAMS:
        assert obs[key].shape == (48, 48, 3) and obs[key].dtype == np.uint8
        assert obs[key].std() > 5  # a real picture, not a blank buffer
    raw = env.sim.render(camera_name="agentview", width=48, height=48)
    assert np.array_equal(obs[CAMS[0]], raw[::-1, ::-1])  # rotated 180 degrees, like the datasets
    state = obs[STATE_KEY]
    assert state.shape == (8,) and state.dtype == np.float32
    assert np.allclose(state, robot_state(env.raw))
    assert abs(np.linalg.norm(state[3:6]) - np.pi) < 0.3  # gripper pointing down: rotation near pi
    assert np.all(np.abs(state[6:]) < 0.05)  # finger positions


def test_env_step_moves_the_hand_and_replayed_frames_equal_live_ones(env):
    obs = env.reset(1)
    saved, live = [], []
    for _ in range(4):
        saved.append(env.sim_state())
        live.append(obs)
        obs, success = env.step([0.5, 0, 0, 0, 0, 0, -1])  # +x, 2.5 cm commanded per step
        assert not success
    assert obs["observation.state"][0] - live[0]["observation.state"][0] > 0.01
    assert env.steps == 4 and not env.done
    for state, frame in zip(saved, live):
        replay = env.render_state(state)
        for key in CAMS:
            assert np.array_equal(replay[key], frame[key])
    with pytest.raises(ValueError, match="7 finite numbers"):
        env.step([0, 0, 0])
    with pytest.raises(ValueError, match="initial states"):
        env.reset(999)


def test_replayed_frames_show_the_fixtures_where_the_episode_had_them(env):
    """LIBERO's reset draws the cabinet's and the stove's placement into the model, which a saved
    state does not hold: an episode's frames re-rendered after another reset need its fixture poses."""
    obs = env.reset(None, seed=123)
    state, poses = env.sim_state(), env.fixture_poses()
    assert poses.shape == (2, 7)  # libero_spatial: the wooden cabinet and the flat stove
    env.reset(None, seed=456)
    assert np.abs(env.fixture_poses()[:, :2] - poses[:, :2]).max() > 1e-3  # another draw moved them
    stale = env.render_state(state)
    env.set_fixture_poses(poses)
    replay = env.render_state(state)
    for key in CAMS:
        assert np.array_equal(replay[key], obs[key])
    assert not all(np.array_equal(stale[key], obs[key]) for key in CAMS)  # without them, a different scene
    env.reset(None, seed=123)
    assert np.array_equal(env.fixture_poses(), poses)  # the seeded reset draws them again (older generations)
    with pytest.raises(ValueError, match="2 fixtures"):
        env.set_fixture_poses(poses[:1])


def test_a_sampled_scene_can_start_on_a_second_fixture_draw(env):
    """redraw_fixtures: the sampled objects stay, the fixtures move under them, as when evaluation
    replays a benchmark state saved on another fixture draw."""
    def objects():  # the movable objects' positions [K, 3]
        m, d = env.sim.model, env.sim.data
        names = [n for n in env._env.env.objects_dict]
        return np.stack([d.body_xpos[m.body_name2id(env._env.env.objects_dict[n].root_body)] for n in names])

    env.reset(None, seed=321)
    plain_fixtures, plain_objects = env.fixture_poses(), objects()
    env.reset(None, seed=321, redraw_fixtures=True)
    moved = np.abs(env.fixture_poses()[:, :2] - plain_fixtures[:, :2]).max()
    assert moved > 1e-3 and np.abs(objects() - plain_objects).max() < 5e-3
    redrawn = env.fixture_poses()
    env.reset(None, seed=321, redraw_fixtures=True)
    assert np.array_equal(env.fixture_poses(), redrawn)  # seeded
    with pytest.raises(ValueError, match="sampled scenes"):
        env.reset(0, redraw_fixtures=True)


def test_a_seed_draws_the_same_scene_whatever_came_before(tmp_path):
    """LIBERO re-adds its drawer and knob samplers at every reset (task 4 opens the cabinet's drawer),
    so each reset of one seed used to draw another scene; LiberoEnv._reset_scene stops that."""
    from vggt_vla.recording.libero_demos import _libero_worker_init, _render_job
    from vggt_vla.sim.libero import cached_env
    from vggt_vla.sim.protocol import Episode

    _libero_worker_init({"suite": "libero_spatial", "image_size": 32, "fast_render": True, "max_mesh_faces": None,
                         "redraw_fixtures": False, "geometry": False})
    env = cached_env("libero_spatial", 4, camera_size=32, cameras=False, fast_render=True, max_mesh_faces=None)
    env.reset(None, seed=77)
    poses, state = env.fixture_poses(), env.sim_state()
    assert env.has_property_samplers
    env.reset(None, seed=78)
    env.reset(3)
    env.reset(None, seed=77)
    assert np.array_equal(env.fixture_poses(), poses) and np.allclose(env.sim_state(), state)
    # So an episode of such a task saved before fixture poses were recorded cannot be re-rendered as
    # it was simulated: refused, with the files to delete named.
    path = tmp_path / "task04_seed77.npz"
    np.savez(path, sim_state=state[None], instruction=np.array("pick up the black bowl"))
    with pytest.raises(ValueError, match=r"task04_\*\.npz and run the same command again"):
        _render_job((Episode(seed=77, task=4, init_state=None), str(path)))


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("libero_demos") / "ds"
    result = run("scripts/generate_libero_demos.py", "--tasks", "0", "--episodes_per_task", "1", "--format", "both",
                 "--image_size", "32", "--fast_render", "--max_mesh_faces", "2000", "--out", str(out))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return out


def test_generated_demos_load_identically_in_both_formats(demos):
    import h5py

    from vggt_vla.data.lerobot import LeRobotSource
    from vggt_vla.data.libero_hdf5 import LiberoHDF5Source, find_hdf5_files
    from vggt_vla.sim.libero import simulator_versions

    summary = json.loads((demos / "expert_success.json").read_text())
    assert summary["kept"] == 1 and summary["per_task"][0]["successes"] == 1 and summary["fast_render"]
    assert summary["max_mesh_faces"] == 2000
    info = json.loads((demos / "lerobot" / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10
    assert info["features"]["observation.images.image"]["shape"] == [32, 32, 3]
    versions = simulator_versions()  # recorded with the data: physics and rendering vary by release
    assert versions["mujoco"] and info["simulator_versions"] == summary["simulator_versions"] == versions
    with h5py.File(find_hdf5_files(str(demos / "libero_hdf5"))[0], "r") as f:
        assert json.loads(f["data"].attrs["simulator_versions"]) == versions
    a = LeRobotSource(demos / "lerobot", camera_keys=list(CAMS), progress=False)
    b = LiberoHDF5Source(find_hdf5_files(str(demos / "libero_hdf5")), camera_keys=list(CAMS), progress=False)
    assert a.num_rows == b.num_rows > 20 and a.tasks == b.tasks
    assert np.allclose(a.action, b.action, atol=1e-6) and np.allclose(a.state, b.state, atol=1e-6)
    assert np.abs(a.action[:, -1]).max() == pytest.approx(1.0)  # gripper commands are -1 / +1
    for row in (0, a.num_rows // 2, a.num_rows - 1):
        for cam in range(2):
            assert np.array_equal(a.frame(cam, row), b.frame(cam, row))


@pytest.fixture(scope="module")
def trained_on_demos(demos, tiny_qwen3, tmp_path_factory):
    """A tiny policy trained for a few steps on the generated LeRobot dataset."""
    import dataclasses

    from conftest import tiny_config
    from vggt_vla.config import config_from_dict
    from vggt_vla.training.trainer import Trainer

    run_dir = tmp_path_factory.mktemp("libero_run")
    model = tiny_config(tiny_qwen3, action_head={"chunk_size": 5}).model
    cfg = config_from_dict({
        "model": dataclasses.asdict(model),
        "data": {"dataset_repo": "", "dataset_root": str(demos / "lerobot"), "num_workers": 0, "val_fraction": 0},
        "sim": {"name": "libero", "camera_size": 32, "fast_render": True, "max_mesh_faces": 2000},  # as the demos
        "train": {"batch_size": 4, "max_steps": 3, "warmup_steps": 1, "log_every": 1, "eval_every": 0,
                  "save_every": 3, "image_every": 0, "device": "cpu", "log_dir": str(run_dir), "exp_name": "run"}})
    Trainer(cfg, progress=False).fit()
    return run_dir / "run"


def test_eval_runs_a_checkpoint_in_libero(trained_on_demos, tmp_path):
    out = run("scripts/eval.py", "--checkpoint", str(trained_on_demos), "--sim", "libero", "--tasks", "0",
              "--episodes_per_task", "1", "--max_steps", "6",  # rendered as the demos: from the checkpoint's sim:
              "--videos", str(tmp_path / "videos"), "--json", str(tmp_path / "r.json"), "--device", "cpu")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["episodes"] == 1 and result["errors"] == 0
    episode = result["episode_records"][0]
    assert episode["steps"] == 6 and not episode["success"]  # 6 steps cannot solve the task
    assert result["settings"]["fast_render"] and result["checkpoint"].endswith(".pt")
    assert result["settings"]["camera_size"] == 32 and result["settings"]["max_mesh_faces"] == 2000
    assert Path(episode["video"]).stat().st_size > 0


def test_light_meshes_leave_the_physics_exactly_as_it_was(tmp_path):
    """max_mesh_faces (sim/light_meshes.py): fewer mesh triangles to render, and the same
    trajectory, state for state, under the same actions. (In its own process: two LIBERO envs in
    one would share the rendering context of this module's env.)"""
    code = """
import json, sys
import numpy as np
from vggt_vla.sim.libero import LiberoEnv
actions = np.random.default_rng(0).uniform(-1, 1, size=(15, 7))
out = {}
for faces in (None, 2000):
    env = LiberoEnv("libero_spatial", 0, cameras=False, max_mesh_faces=faces)
    env.reset(0)
    for a in actions:
        env.step(a)
    out[str(faces)] = {"faces": int(env.sim.model.nmeshface), "state": env.sim_state().tolist()}
    env.close()
print(json.dumps(out))
"""
    result = run("-c", code, VGGT_VLA_CACHE=str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr[-3000:]
    full, light = json.loads(result.stdout.strip().splitlines()[-1]).values()
    assert light["faces"] < 0.6 * full["faces"] and light["state"] == full["state"]


def test_eval_scripted_policy_reports_success(tmp_path):
    """The scripted expert solves a short episode, run by the one episode runner (closed_loop.py)."""
    out = run("scripts/eval.py", "--sim", "libero", "--policy", "scripted", "--tasks", "0", "--episodes_per_task",
              "1", "--json", str(tmp_path / "s.json"))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    result = json.loads((tmp_path / "s.json").read_text())
    task = result["per_task"][0]
    assert task["successes"] == 1 and task["ci95"][0] < 1.0 == task["ci95"][1]
    assert result["successes"] == 1 and 0 < result["mean_length"] < result["max_steps"]
    assert "overall: 100.0%" in out.stdout
    assert set(result["simulator_versions"]) == {"mujoco", "robosuite", "libero"}


def test_eval_rejects_bad_libero_arguments(tmp_path):
    out = run("scripts/eval.py", "--sim", "libero")
    assert out.returncode == 2 and "--policy scripted" in out.stderr
    out = run("scripts/eval.py", "--sim", "libero", "--policy", "scripted", "--tasks", "0", "--episodes_per_task", "51",
              "--json", str(tmp_path / "x.json"))
    assert out.returncode == 2 and "has states 0..49" in out.stderr
    out = run("scripts/eval.py", "--sim", "libero", "--policy", "scripted", "--tasks", "0", "--episodes_per_task", "10",
              "--first_state", "45", "--json", str(tmp_path / "x.json"))
    assert out.returncode == 2 and "initial states 45..54" in out.stderr and "has states 0..49" in out.stderr


def test_eval_on_drawn_scenes(tmp_path):
    """--scenes: new scenes instead of the benchmark's states, seeded beyond the demonstrations', as
    the demonstrations start them ('sampled') or as the fixed states are started ('redrawn')."""
    from vggt_vla.sim.libero import DEMO_SEED, EVAL_SCENE_SEED, libero_episodes
    from vggt_vla.sim.protocol import EnvOptions

    drawn = libero_episodes(EnvOptions(scenes="redrawn"), [0, 4], 3, None)
    assert [(e.task, e.seed, e.init_state, e.redraw_fixtures) for e in drawn[2:4]] == \
        [(0, EVAL_SCENE_SEED + 2, None, True), (4, EVAL_SCENE_SEED + 4000, None, True)]
    assert min(e.seed for e in drawn) > DEMO_SEED + 9999  # no demonstration scene
    assert not any(e.redraw_fixtures for e in libero_episodes(EnvOptions(scenes="sampled"), [0], 2, None))
    out = run("scripts/eval.py", "--sim", "libero", "--policy", "scripted", "--tasks", "0", "--episodes_per_task", "1",
              "--scenes", "redrawn", "--max_steps", "3", "--json", str(tmp_path / "d.json"))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    result = json.loads((tmp_path / "d.json").read_text())
    assert result["settings"]["scenes"] == "redrawn"
    assert [(r["seed"], r["init_state"]) for r in result["episode_records"]] == [(EVAL_SCENE_SEED, None)]
    out = run("scripts/eval.py", "--sim", "libero", "--policy", "scripted", "--scenes", "sampled", "--first_state", "10",
              "--json", str(tmp_path / "x.json"))
    assert out.returncode == 2 and "picked by --seed" in out.stderr
    out = run("scripts/eval.py", "--sim", "demo", "--policy", "scripted", "--scenes", "sampled",
              "--json", str(tmp_path / "y.json"))
    assert out.returncode == 2 and "drop --scenes" in out.stderr


def test_second_set_of_initial_states_is_disjoint_from_the_first(tmp_path):
    """--first_state 10: the benchmark's states 10-19, each with its own episode seed, so a second
    score shares neither a scene nor a seed with the usual states 0-9."""
    from vggt_vla.sim.libero import libero_episodes
    from vggt_vla.sim.protocol import EnvOptions

    usual = libero_episodes(EnvOptions(), [0, 3], 10, None)
    second = libero_episodes(EnvOptions(), [0, 3], 10, None, first_state=10)
    assert [e.init_state for e in second if e.task == 3] == list(range(10, 20))
    assert {(e.task, e.init_state) for e in usual}.isdisjoint({(e.task, e.init_state) for e in second})
    assert {e.seed for e in usual}.isdisjoint({e.seed for e in second})
    out = run("scripts/eval.py", "--sim", "libero", "--policy", "scripted", "--tasks", "0", "--episodes_per_task", "1",
              "--first_state", "10", "--max_steps", "2", "--json", str(tmp_path / "s.json"))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    result = json.loads((tmp_path / "s.json").read_text())
    assert result["settings"]["first_state"] == 10 and result["episode_records"][0]["seed"] == 10


def test_sampled_scenes_differ_by_seed_and_repeat(env):
    """Demonstrations start from scenes LIBERO's sampler draws (init_state=None): new per seed,
    the same for the same seed."""
    def bowl_positions(seed):
        env.reset(None, seed=seed)
        return np.array(env.sim.data.qpos[:])

    a, b, c = bowl_positions(1_000_000), bowl_positions(1_000_001), bowl_positions(1_000_000)
    assert np.array_equal(a, c) and not np.allclose(a, b)
    with pytest.raises(ValueError, match="needs a seed"):
        env.reset(None)


def test_generation_resumes_and_refuses_other_settings(demos, tmp_path):
    import shutil

    from vggt_vla.sim.libero_expert import EXPERT_REVISION

    out = tmp_path / "ds"
    shutil.copytree(demos, out)
    saved = sorted((out / "episodes").glob("*.npz"))
    assert len(saved) == 1
    before = saved[0].stat().st_mtime_ns
    rows_before = json.loads((out / "lerobot" / "meta" / "info.json").read_text())["total_frames"]
    # An interrupted run: the expert episodes are on disk, the datasets are not finished. It was
    # written before action_noise_correlation existed (its settings lack the key): still resumable.
    (out / "expert_success.json").unlink()
    shutil.rmtree(out / "lerobot")
    settings_file = out / "episodes" / "settings.json"
    settings = json.loads(settings_file.read_text())
    assert settings.pop("action_noise_correlation") == 0.0
    settings_file.write_text(json.dumps(settings))
    args = ["scripts/generate_libero_demos.py", "--tasks", "0", "--episodes_per_task", "1", "--format", "both",
            "--max_mesh_faces", "2000", "--image_size", "32", "--fast_render", "--out", str(out)]
    result = run(*args)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert saved[0].stat().st_mtime_ns == before  # resumed: the episode was not simulated again
    assert json.loads((out / "lerobot" / "meta" / "info.json").read_text())["total_frames"] == rows_before
    assert json.loads((out / "expert_success.json").read_text())["kept"] == 1
    result = run(*args[:-5], "--image_size", "48", "--fast_render", "--out", str(out))
    assert result.returncode == 2 and "other settings" in result.stderr and "image_size: 32" in result.stderr
    result = run(*args, "--max_mesh_faces", "5000")  # rendered otherwise: refused, not mixed
    assert result.returncode == 2 and "max_mesh_faces: 2000 there, 5000 asked" in result.stderr
    result = run(*args, "--action_noise", "0.1", "--action_noise_correlation", "0.8")
    assert result.returncode == 2 and "action_noise_correlation: 0.0 there, 0.8 asked" in result.stderr
    result = run(*args[:-2], "--out", str(tmp_path / "new"), "--action_noise_correlation", "1.0")
    assert result.returncode == 2 and "action_noise_correlation 1.0 in [0, 1)" in result.stderr
    result = run(*args, "--redraw_fixtures")  # scenes started otherwise: refused, not mixed
    assert result.returncode == 2 and "redraw_fixtures: False there, True asked" in result.stderr
    result = run(*args[:-2], "--out", str(tmp_path / "new"), "--redraw_fixtures", "--init_states", "benchmark")
    assert result.returncode == 2 and "redraw_fixtures applies to sampled scenes" in result.stderr
    # Episodes of an earlier scripted expert (a generation that predates the revision reads as 1):
    # refused, not mixed with this expert's.
    settings_file.write_text(json.dumps({k: v for k, v in settings.items() if k != "expert_revision"}))
    result = run(*args)
    assert result.returncode == 2 and f"expert_revision: 1 there, {EXPERT_REVISION} asked" in result.stderr


def toy_quick_start(tmp_path, config: str, *settings: str):
    """quick_start.sh on `config` at toy size: 2 demonstrations per task, 3 training steps at 32 px,
    1 closed-loop episode per task capped at 30 steps, one simulator process; `settings`: more
    --set values."""
    import os
    import subprocess

    root = Path(__file__).resolve().parents[1]
    args = ["bash", "scripts/quick_start.sh", f"configs/train_{config}.yaml",
            "--dataset_root", str(tmp_path / "demos" / "lerobot"), "--log_dir", str(tmp_path / "logs"),
            "--max_steps", "3", "--batch_size", "4", "--no_progress",
            "--set", "sim.demos_per_task=2", "--set", "sim.eval_episodes_per_task=1",
            "--set", "sim.camera_size=32", "--set", "model.vision.image_size=32", "--set", "model.vision.patch_size=8",
            "--set", "train.warmup_steps=1", "--set", "train.save_every=3", "--set", "train.eval_every=0",
            "--set", "train.image_every=0", "--set", "data.val_fraction=0", "--set", "sim.eval_max_steps=30",
            "--set", "sim.workers=1"]  # a second simulator process costs more than it saves here
    for setting in settings:
        args += ["--set", setting]
    return subprocess.run(args, cwd=root, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True,
                          text=True, timeout=900)


# The geometry variant is `heavy` only for CI's time: its parts run in CI in tests/test_libero_geometry.py
# (recording) and tests/test_geometry_target.py (the loss in training).
@pytest.mark.parametrize("config", ["libero_cpu", pytest.param("libero_cpu_geometry", marks=pytest.mark.heavy)])
def test_quick_start_runs_the_libero_pipeline(tmp_path, config):
    """The libero_cpu pipeline end to end at toy size: 1 task, 2 demonstrations, 3 training steps,
    1 closed-loop episode (the plumbing, not the success rate); and its variant with the geometry
    recorded and learned from."""
    # robustness scoring: one perturbed-suite episode and one with the camera moved (3 episodes in all)
    out = toy_quick_start(tmp_path, config, "sim.tasks=[0]", "sim.robustness_suites=[libero_spatial_swap]",
                          "sim.robustness_episodes_per_task=1", "sim.eval_camera_shift=[0.05,5]")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for stage in ("model report", "data", "training", "evaluation"):
        assert f"-- {stage} took" in out.stdout
    assert "libero overall:" in out.stdout
    summary = json.loads((tmp_path / "demos" / "expert_success.json").read_text())
    assert summary["episodes"] == 2 and summary["init_states"] == "sampled" and summary["image_size"] == 32
    assert summary["geometry"] == (config == "libero_cpu_geometry")
    result = json.loads((tmp_path / "logs" / config / "eval_libero_spatial.json").read_text())
    assert result["episodes"] == 1 and result["settings"]["fast_render"] and result["settings"]["camera_size"] == 32
    assert result["per_task"][0]["task"] == 0 and result["errors"] == 0 and result["max_steps"] == 30
    for name, suite in (("eval_libero_spatial_swap.json", "libero_spatial_swap"),
                        ("eval_libero_spatial_camera_0.05m_5deg.json", "libero_spatial")):
        result = json.loads((tmp_path / "logs" / config / name).read_text())
        assert result["episodes"] == 1 and result["errors"] == 0 and result["settings"]["suite"] == suite
    assert result["settings"]["camera_shift"] == [0.05, 5.0]
    metrics = (tmp_path / "logs" / config / "metrics.jsonl").read_text()
    assert ("train/geometry_loss" in metrics) == (config == "libero_cpu_geometry")


@pytest.mark.parametrize("config,suite,task", [("libero_object_cpu", "libero_object", 1),
                                               ("libero_goal_cpu", "libero_goal", 7)])
def test_quick_start_runs_the_other_suites(tmp_path, config, suite, task):
    """libero_object's and libero_goal's one command at toy size, on one task each: the scripted
    expert's demonstrations of that suite, training, one closed-loop episode with its table; the
    demonstrations and the evaluation both rendered with simplified meshes (sim.max_mesh_faces)."""
    out = toy_quick_start(tmp_path, config, f"sim.tasks=[{task}]", "sim.max_mesh_faces=2000")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "libero overall:" in out.stdout
    summary = json.loads((tmp_path / "demos" / "expert_success.json").read_text())
    assert summary["episodes"] == 2 and summary["suite"] == suite and summary["max_mesh_faces"] == 2000
    result = json.loads((tmp_path / "logs" / config / f"eval_{suite}.json").read_text())
    assert result["episodes"] == 1 and result["errors"] == 0 and result["settings"]["suite"] == suite
    assert result["settings"]["max_mesh_faces"] == 2000
    assert result["per_task"][0]["task"] == task


def test_perturbed_suites_keep_their_base_suites_episode_cap():
    """LIBERO-PRO's variants are scored over the standard horizon (220 steps for libero_spatial's),
    not the 500 of an unknown suite."""
    from vggt_vla.sim.libero import suite_max_steps

    assert [suite_max_steps(s) for s in ("libero_spatial", "libero_spatial_swap", "libero_spatial_lan",
                                         "libero_object_object", "libero_10", "libero_10_swap", "other")] == \
        [220, 220, 220, 280, 520, 520, 500]
