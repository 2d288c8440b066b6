"""LiveSceneFrames (vggt_vla/recording/live_scenes.py): data.live's training items, new scenes of
the demo env simulated when training starts."""

import numpy as np
import pytest
import torch

from vggt_vla.config import LiveScenesConfig
from vggt_vla.constants import ACTION_KEY, CAMERA_KEYS, STATE_KEY
from vggt_vla.data.dataset import FrameDataset
from vggt_vla.data.lerobot import LeRobotSource
from vggt_vla.data.normalize import Normalizer
from vggt_vla.data.transforms import ImageTransform
from vggt_vla.recording.demo_dataset import DEFAULT_ACTION_NOISE
from vggt_vla.recording.demo_env_episodes import expert_episode
from vggt_vla.recording.live_scenes import LiveSceneFrames
from vggt_vla.sim.demo_env import DemoEnv

STRIDE = LiveScenesConfig().frame_stride  # 4


@pytest.fixture(scope="module")
def source(demo_dataset):
    return LeRobotSource(demo_dataset, camera_keys=list(CAMERA_KEYS))


@pytest.fixture(scope="module")
def normalizer(source):
    return Normalizer.from_stats(source.stats("mean_std"), "mean_std", [ACTION_KEY, STATE_KEY])


def frames(normalizer, length, seed=0, **live):
    return LiveSceneFrames(length, LiveScenesConfig(enabled=True, **live), chunk_size=10,
                           transform=ImageTransform(32), normalizer=normalizer, seed=seed)


@pytest.fixture(scope="module")
def live(normalizer):
    return frames(normalizer, 1000, seed=3)


@pytest.fixture(scope="module")
def items(live):
    return [live[i] for i in range(len(live))]


def test_items_have_the_recorded_items_format(source, normalizer, live):
    want = FrameDataset(source, chunk_size=10, transform=ImageTransform(32), normalizer=normalizer)[0]
    got = live[0]
    assert set(got) == set(want) - {"row"}
    for key, value in want.items():
        if isinstance(value, torch.Tensor):
            assert got[key].shape == value.shape and got[key].dtype == value.dtype, key


def test_the_seed_alone_decides_the_items(normalizer, live):
    got, again = live[0], frames(normalizer, 1000, seed=3)[0]
    assert all(torch.equal(got[k], again[k]) for k in ("images", "actions", "state", "goal_state"))
    assert not torch.equal(frames(normalizer, 1000, seed=4)[0]["images"], got["images"])


def test_every_stride_th_frame_of_each_scene_is_an_item_once(live, items):
    assert len(live) == 1000 and len(set(live.items)) == 1000  # no frame twice
    per_scene = np.bincount([scene for scene, _ in live.items])
    assert 150 < len(live.scenes) < 400 and per_scene.max() <= 80 // STRIDE + 1  # ~27 / 4 frames a scene
    by_scene = {}
    for scene, t in live.items:
        by_scene.setdefault(scene, []).append(t)
    assert {int(d) for ts in by_scene.values() for d in np.diff(ts)} == {STRIDE}
    assert {ts[0] for ts in by_scene.values()} == set(range(STRIDE))  # a random offset per scene
    assert len({it["images"].numpy().tobytes() for it in items}) == len(items)


def test_instructions_are_mixed_as_in_a_recorded_dataset(items):
    """Frames come from episodes in proportion to their length: push frames are as common as in a
    recorded dataset (~0.63), not the 0.5 of one frame per episode."""
    push = np.mean([it["instruction"].startswith("push") for it in items])
    env, rng, steps_all, pushes = DemoEnv(), np.random.default_rng(0), 0, 0
    for seed in range(1000):  # a recorded dataset's mix: the frames of episodes 0..999
        steps = len(expert_episode(env, seed, rng, DEFAULT_ACTION_NOISE)[ACTION_KEY])
        steps_all, pushes = steps_all + steps, pushes + steps * (env.task == "push")
    assert abs(push - pushes / steps_all) < 0.06, (push, pushes / steps_all)


def test_the_recorded_actions_are_the_experts(normalizer, items):
    actions = np.stack([normalizer.unnormalize(ACTION_KEY, it["actions"].numpy()) for it in items])  # [N, T, 7]
    assert np.abs(actions).max() <= 1 + 1e-5 and np.allclose(actions[..., 6], -1.0, atol=1e-5)


def test_an_item_shows_its_scene_at_its_frame(normalizer, live, items):
    """The gripper is drawn where the item's state says."""
    env = DemoEnv()
    scene, t = live.items[7]
    env.draw_scene(live.scenes[scene]["seed"])
    env.restore(live.scenes[scene]["snapshot"][t])
    assert np.array_equal(ImageTransform(32).cameras([env.observation()[k] for k in CAMERA_KEYS]), items[7]["images"])
    state = normalizer.unnormalize(STATE_KEY, items[7]["state"].numpy())
    assert np.allclose(state[:2], env.gripper, atol=1e-5)


def shared_share(dataset: LiveSceneFrames) -> float:
    env, kinds = DemoEnv(), []
    for scene in dataset.scenes:
        env.draw_scene(scene["seed"])
        kinds.append(env.target_colour_shared())
    return float(np.mean(kinds))


def test_shared_colour_sets_the_scene_mix(normalizer, live):
    assert 0.2 < shared_share(live) < 0.36  # null: the env's own mix, 2 in 7
    assert shared_share(frames(normalizer, 60, shared_colour=0.0)) == 0.0
    assert shared_share(frames(normalizer, 60, shared_colour=1.0)) == 1.0
