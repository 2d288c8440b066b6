"""The demo env (closed-loop twin of the demo dataset) and the demo dataset itself."""

import json

import numpy as np
import pytest
import torch

from vggt_vla.constants import ACTION_KEY
from vggt_vla.recording import make_demo_dataset
from vggt_vla.data.lerobot import LeRobotSource
from vggt_vla.data.writer import available_av1_encoder
from vggt_vla.sim.demo_env import (CAMERA_KEYS, COLORS, EVAL_SEEDS, SHAPES, STATE_KEY, DemoEnv, _clip, _norm,
                                   random_action, rollout, scripted_action, success_rate)


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


def test_scripted_policy_succeeds_and_random_does_not():
    scripted = success_rate(lambda env: (lambda obs: scripted_action(env)), EVAL_SEEDS)
    rng = np.random.default_rng(0)
    rand = success_rate(lambda env: (lambda obs: random_action(rng)), EVAL_SEEDS)
    assert len(EVAL_SEEDS) == 100
    assert scripted >= 0.95, scripted
    assert rand < 0.20, rand


def test_doing_nothing_fails_and_episodes_end():
    env = DemoEnv(max_steps=30)
    assert not rollout(env, lambda obs: np.zeros(7, dtype=np.float32), seed=3)
    assert env.steps == 30 and env.done


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


def test_recorded_noise_drifts_and_the_recipe_check_reads_it(demo, tmp_path):
    """Executed actions carry a correlated drift (the recorded ones are the expert's), and
    demo_recipe_mismatch tells quick_start.sh whether a dataset was written the recipe's way."""
    from vggt_vla.recording import DEMO_NOISE_CORRELATION, demo_recipe_mismatch, record_demo_episode

    env = DemoEnv()
    drifts = {}
    for rho in (0.0, 0.8):
        episode = record_demo_episode(env, 5, np.random.default_rng(0), noise=0.3, noise_correlation=rho)
        moved = np.diff(episode[STATE_KEY][:, :2], axis=0) / 0.045  # executed xy actions
        drifts[rho] = moved - episode["action"][:-1, :2]  # [T-1, 2]: the noise, where no clipping hit
    lag1 = {rho: np.corrcoef(d[:-1, 0], d[1:, 0])[0, 1] for rho, d in drifts.items()}
    assert lag1[0.8] > 0.5 > lag1[0.0]
    root, _ = demo
    recorded = json.loads((root / "meta" / "info.json").read_text())["demo_recording"]
    assert recorded["noise_correlation"] == DEMO_NOISE_CORRELATION and recorded["episodes"] == 8
    assert "episodes 8" in demo_recipe_mismatch(root)  # the recipe wants DEFAULT_EPISODES
    assert demo_recipe_mismatch(tmp_path / "none") == "missing"


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


def test_live_demo_frames_are_new_scenes_in_the_datasets_format_and_mix(demo):
    """data.live_expert's items: FrameDataset's keys, shapes and dtypes; the same items for the same
    seed and new scenes otherwise; every frame_stride-th frame of each scene, each once, so push
    frames are as common as in a recorded dataset (~0.63, not the 0.5 of one frame per episode);
    items rendered from the scene they name; and the scene mix that data.live_shared_colour asks for."""
    from vggt_vla.data.dataset import FrameDataset
    from vggt_vla.data.normalize import Normalizer
    from vggt_vla.data.transforms import ImageTransform
    from vggt_vla.recording import DEMO_NOISE, LiveDemoFrames, demo_expert_path

    _, source = demo
    normalizer = Normalizer.from_stats(source.stats("mean_std"), "mean_std", [ACTION_KEY, STATE_KEY])
    recorded = FrameDataset(source, chunk_size=10, transform=ImageTransform(32), normalizer=normalizer)

    def frames(length, **kwargs):
        return LiveDemoFrames(length, chunk_size=10, transform=ImageTransform(32), normalizer=normalizer, **kwargs)

    live = frames(1000, seed=3)
    want, got = recorded[0], live[0]
    assert set(got) == set(want) - {"row"}
    for key, value in want.items():
        if isinstance(value, torch.Tensor):
            assert got[key].shape == value.shape and got[key].dtype == value.dtype, key
    again = frames(1000, seed=3)[0]
    assert all(torch.equal(got[k], again[k]) for k in ("images", "actions", "state", "goal_state"))
    assert not torch.equal(frames(1000, seed=4)[0]["images"], got["images"])
    assert len(live) == 1000 and len(set(live.items)) == 1000  # no frame twice
    per_scene = np.bincount([scene for scene, _ in live.items])
    assert 150 < len(live.scenes) < 400 and per_scene.max() <= 80 // 4 + 1  # ~27 / 4 frames a scene
    by_scene = {}
    for scene, t in live.items:
        by_scene.setdefault(scene, []).append(t)
    assert {int(d) for ts in by_scene.values() for d in np.diff(ts)} == {4}
    assert {ts[0] for ts in by_scene.values()} == {0, 1, 2, 3}  # a random offset per scene
    items = [live[i] for i in range(len(live))]
    assert len({it["images"].numpy().tobytes() for it in items}) == len(items)
    actions = np.stack([normalizer.unnormalize(ACTION_KEY, it["actions"].numpy()) for it in items])  # [N, T, 7]
    assert np.abs(actions).max() <= 1 + 1e-5 and np.allclose(actions[..., 6], -1.0, atol=1e-5)  # the expert's
    push = np.mean([it["instruction"].startswith("push") for it in items])
    env, rng, steps_all, pushes = DemoEnv(), np.random.default_rng(0), 0, 0
    for seed in range(1000):  # a recorded dataset's mix: the frames of episodes 0..999 (~0.63)
        steps = len(demo_expert_path(env, seed, rng, DEMO_NOISE)[ACTION_KEY])
        steps_all, pushes = steps_all + steps, pushes + steps * (env.task == "push")
    assert abs(push - pushes / steps_all) < 0.06, (push, pushes / steps_all)  # one frame per episode: ~0.5
    # an item shows its scene at its frame: the gripper drawn where the item's state says
    scene, t = live.items[7]
    env.draw_scene(live.scenes[scene]["seed"])
    env.restore(live.scenes[scene]["snapshot"][t])
    assert np.array_equal(ImageTransform(32).cameras([env.observation()[k] for k in CAMERA_KEYS]), items[7]["images"])
    state = normalizer.unnormalize(STATE_KEY, items[7]["state"].numpy())
    assert np.allclose(state[:2], env.gripper, atol=1e-5)

    def shared_share(dataset: LiveDemoFrames) -> float:
        kinds = []
        for scene in dataset.scenes:
            env.draw_scene(scene["seed"])
            kinds.append(env.target_colour_shared())
        return float(np.mean(kinds))

    assert 0.2 < shared_share(live) < 0.36  # the env's own mix: 2 in 7
    assert shared_share(frames(60, shared_colour=0.0)) == 0.0
    assert shared_share(frames(60, shared_colour=1.0)) == 1.0
    with pytest.raises(ValueError, match="frame_stride"):
        frames(10, frame_stride=0)
