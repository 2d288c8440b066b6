"""The demo env (closed-loop twin of the demo dataset) and the demo dataset itself."""

import json

import numpy as np
import pytest

from vggt_vla.closed_loop import ClosedLoopSpec, closed_loop_eval
from vggt_vla.data.lerobot import LeRobotSource
from vggt_vla.data.writer import available_av1_encoder
from vggt_vla.recording.demo_dataset import make_demo_dataset
from vggt_vla.sim.demo_env import (CAMERA_KEYS, COLORS, EVAL_SEEDS, SHAPES, STATE_KEY, DemoEnv, _clip, _norm,
                                   scripted_action)


def test_observation_format():
    obs = DemoEnv().reset(seed=0)
    assert set(obs) == {*CAMERA_KEYS, STATE_KEY, "instruction"}
    for key in CAMERA_KEYS:
        assert obs[key].shape == (128, 128, 3) and obs[key].dtype == np.uint8
    assert obs[STATE_KEY].shape == (8,) and obs[STATE_KEY].dtype == np.float32
    assert isinstance(obs["instruction"], str)


def test_reset_is_deterministic_per_seed():
    a, b, c = DemoEnv().reset(seed=7), DemoEnv().reset(seed=7), DemoEnv().reset(seed=8)
    assert a["instruction"] == b["instruction"]
    for key in CAMERA_KEYS:
        assert np.array_equal(a[key], b[key])
    assert not np.array_equal(a[CAMERA_KEYS[0]], c[CAMERA_KEYS[0]])


def test_instructions_name_an_object_in_the_scene():
    env = DemoEnv()
    kinds = set()
    for seed in range(40):
        obs = env.reset(seed=seed)
        target = env.objects[env.target]
        assert target.name in obs["instruction"]
        assert target.color in COLORS and target.shape in SHAPES
        assert len({o.name for o in env.objects}) == len(env.objects), "object names must be unambiguous"
        kinds.add(obs["instruction"].split()[0])
    assert kinds == {"move", "push"}


def test_the_scripted_expert_solves_the_evaluation_scenes():
    result = closed_loop_eval(ClosedLoopSpec(sim="demo", policy="scripted", episodes_per_task=len(EVAL_SEEDS)),
                              progress=False)
    assert [r["seed"] for r in result["episode_records"]] == list(EVAL_SEEDS)
    assert result["success_rate"] >= 0.95, result["success_rate"]


def test_random_actions_rarely_succeed():
    result = closed_loop_eval(ClosedLoopSpec(sim="demo", policy="random", episodes_per_task=100), progress=False)
    assert result["success_rate"] < 0.20, result["success_rate"]


def test_doing_nothing_fails_and_the_episode_ends_at_max_steps():
    env = DemoEnv(max_steps=30)
    env.reset(seed=3)
    for _ in range(29):
        env.step(np.zeros(7, dtype=np.float32))
    assert not env.done
    env.step(np.zeros(7, dtype=np.float32))
    assert env.done and not env.success and env.steps == 30


def test_wrist_camera_follows_the_gripper():
    env = DemoEnv()
    first = env.reset(seed=1)
    moved = first
    for _ in range(5):
        moved, _ = env.step(np.array([0, 1, 0, 0, 0, 0, -1], dtype=np.float32))
    assert not np.array_equal(first[CAMERA_KEYS[1]], moved[CAMERA_KEYS[1]])
    assert moved[STATE_KEY][1] > first[STATE_KEY][1]
    # the agent view only changes around the gripper (objects were not touched: they're away from it)
    changed = np.argwhere((first[CAMERA_KEYS[0]] != moved[CAMERA_KEYS[0]]).any(-1))
    assert 0 < len(changed) < 0.1 * 128 * 128


def test_the_physics_helpers_give_numpys_exact_values():
    # DemoEnv.move and the expert use _norm / _clip for speed; a recorded dataset must not change.
    rng = np.random.default_rng(0)
    vectors = np.concatenate([rng.normal(size=(5000, 2)) * rng.uniform(0, 3, size=(5000, 1)),
                              [[0.0, 0.0], [1e-300, 0.0], [np.nan, 0.5], [np.inf, 1.0]]])
    for v in vectors:
        assert np.array_equal(_norm(v), np.linalg.norm(v), equal_nan=True), v
        assert np.array_equal(_clip(v, -0.95, 0.95), np.clip(v, -0.95, 0.95), equal_nan=True), v


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = make_demo_dataset(tmp_path_factory.mktemp("demo") / "ds", num_episodes=8, progress=False)
    return root, LeRobotSource(root, camera_keys=list(CAMERA_KEYS), cache_dir=tmp_path_factory.mktemp("cache"))


def test_demo_dataset_shape(demo):
    root, source = demo
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10 and info["total_episodes"] == 8
    for key in CAMERA_KEYS:
        assert info["features"][key]["shape"] == [128, 128, 3]
    assert source.state_dim == 8 and source.action_dim == 7
    assert source.action.min() >= -1 and source.action.max() <= 1
    lengths = source.meta.episodes.length
    assert lengths.min() >= 3 and lengths.max() <= 80


def test_demo_dataset_matches_the_env(demo):
    """Episode i starts from env.reset(seed=i): same pixels, state, instruction, expert action."""
    _, source = demo
    env = DemoEnv()
    for pos, ep in enumerate(source.episode_indices):
        obs = env.reset(seed=int(ep))
        row = int(source.ep_start[pos])
        for cam, key in enumerate(CAMERA_KEYS):
            assert np.array_equal(source.frame(cam, row), obs[key])
        np.testing.assert_array_equal(source.state[row], obs[STATE_KEY])
        np.testing.assert_array_equal(source.action[row], scripted_action(env))
        assert source.tasks[source.task_index[row]] == obs["instruction"]


def test_correlated_action_noise_drifts_the_executed_actions():
    """The executed actions carry the noise, correlated over steps as asked; the recorded ones are
    the expert's."""
    from vggt_vla.recording.demo_dataset import record_demo_episode

    env = DemoEnv()
    drifts = {}
    for rho in (0.0, 0.8):
        episode = record_demo_episode(env, 5, np.random.default_rng(0), action_noise=0.3,
                                      action_noise_correlation=rho)
        moved = np.diff(episode[STATE_KEY][:, :2], axis=0) / 0.045  # executed xy actions
        drifts[rho] = moved - episode["action"][:-1, :2]  # [T-1, 2]: the noise, where no clipping hit
    lag1 = {rho: np.corrcoef(d[:-1, 0], d[1:, 0])[0, 1] for rho, d in drifts.items()}
    assert lag1[0.8] > 0.5 > lag1[0.0]


def test_the_recipe_check_reads_the_recorded_settings(demo, tmp_path):
    """demo_recipe_mismatch tells quick_start.sh whether a dataset was written the recipe's way."""
    from vggt_vla.recording.demo_dataset import DEFAULT_ACTION_NOISE_CORRELATION, demo_recipe_mismatch

    root, _ = demo
    recorded = json.loads((root / "meta" / "info.json").read_text())["demo_recording"]
    assert recorded["action_noise_correlation"] == DEFAULT_ACTION_NOISE_CORRELATION and recorded["episodes"] == 8
    assert demo_recipe_mismatch(root) == "episodes 8 (the recipe: 1000)"
    assert demo_recipe_mismatch(tmp_path / "none") == "missing"


def test_the_recipe_check_reads_datasets_written_before_the_action_noise_spelling(tmp_path):
    from vggt_vla.recording.demo_dataset import demo_recipe_mismatch

    old = {"episodes": 1000, "seed": 0, "noise": 0.3, "noise_correlation": 0.0, "image_size": 128,
           "num_objects": 3, "task_types": ["reach", "push"]}
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "info.json").write_text(json.dumps({"demo_recording": old}))
    assert demo_recipe_mismatch(tmp_path) is None
    old["noise_correlation"] = 0.8
    (tmp_path / "meta" / "info.json").write_text(json.dumps({"demo_recording": old}))
    assert demo_recipe_mismatch(tmp_path) == "action_noise_correlation 0.8 (the recipe: 0.0)"


def test_demo_video_dataset(tmp_path):
    if available_av1_encoder() is None:
        pytest.skip("no AV1 encoder in this PyAV build")
    root = make_demo_dataset(tmp_path / "video", num_episodes=3, video=True, progress=False)
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["features"][CAMERA_KEYS[0]]["dtype"] == "video"
    assert info["features"][CAMERA_KEYS[0]]["info"]["video.codec"] == "av1"
    source = LeRobotSource(root, camera_keys=list(CAMERA_KEYS), cache_dir=tmp_path / "cache")
    obs = DemoEnv().reset(seed=2)
    got = source.frame(0, int(source.ep_start[2])).astype(float)
    assert np.abs(got - obs[CAMERA_KEYS[0]]).mean() < 4.0
