"""Action chunks and the pad mask at episode ends; the collated batch format."""

import numpy as np
import pytest
import torch

from vggt_vla.constants import CAMERA_KEYS
from vggt_vla.data.batch import collate
from vggt_vla.data.dataset import FrameDataset
from vggt_vla.data.lerobot import LeRobotSource
from synthetic_data import make_synthetic_dataset
from vggt_vla.data.transforms import ImageTransform

LENGTHS = (7, 12, 3, 9)  # episode 2 is shorter than the chunk


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    truth = make_synthetic_dataset(tmp_path_factory.mktemp("chunks") / "ds", episode_lengths=LENGTHS, image_size=32)
    source = LeRobotSource(truth.root, camera_keys=list(CAMERA_KEYS), cache_dir=tmp_path_factory.mktemp("cache"))
    return truth, source


def _dataset(source, chunk, episodes=None):
    return FrameDataset(source, chunk_size=chunk, transform=ImageTransform(32), episodes=episodes)


def test_last_step_of_each_episode_pads_with_its_last_action(data):
    truth, source = data
    ds = _dataset(source, 8)
    for start, end in truth.episode_rows:
        item = ds[end - 1]  # all episodes selected: item i is global row i
        assert item["action_pad_mask"].tolist() == [False] + [True] * 7
        last = torch.from_numpy(truth.action[end - 1])
        assert torch.equal(item["actions"], last.expand(8, -1))


def test_chunk_never_reaches_into_the_next_episode(data):
    truth, source = data
    ds = _dataset(source, 8)
    start, end = truth.episode_rows[0]
    for row in range(start, end):
        item = ds[row]
        valid = (~item["action_pad_mask"]).sum().item()
        assert valid == min(8, end - row)
        np.testing.assert_array_equal(item["actions"][:valid].numpy(), truth.action[row:row + valid])
        next_episode_actions = truth.action[end:end + 8]
        for a in item["actions"].numpy():
            assert not any(np.array_equal(a, b) for b in next_episode_actions)


def test_episode_shorter_than_chunk(data):
    truth, source = data
    start, end = truth.episode_rows[2]  # 3 frames
    ds = _dataset(source, 8, episodes=[2])
    assert len(ds) == 3
    item = ds[0]
    assert item["action_pad_mask"].tolist() == [False] * 3 + [True] * 5
    np.testing.assert_array_equal(item["actions"][3:].numpy(), np.repeat(truth.action[end - 1:end], 5, axis=0))


def test_chunk_of_one_never_pads(data):
    _, source = data
    ds = _dataset(source, 1)
    assert not any(ds[i]["action_pad_mask"].any() for i in range(len(ds)))


def test_episode_subset_covers_exactly_its_rows(data):
    truth, source = data
    ds = _dataset(source, 4, episodes=[3, 1])
    expected = list(range(*truth.episode_rows[1])) + list(range(*truth.episode_rows[3]))
    assert sorted(ds.rows.tolist()) == expected
    assert set(ds.episodes.tolist()) == {1, 3}


def test_collate_builds_the_batch_format(data):
    _, source = data
    ds = _dataset(source, 5)
    batch = collate([ds[i] for i in (0, 6, 20)])
    assert set(batch) == {"images", "instruction", "state", "actions", "action_pad_mask", "goal_state", "row"}
    assert batch["row"].tolist() == [int(ds.rows[i]) for i in (0, 6, 20)]
    assert batch["images"].shape == (3, 2, 3, 32, 32) and batch["images"].dtype == torch.float32
    assert 0.0 <= batch["images"].min() and batch["images"].max() <= 1.0
    assert batch["instruction"] == [ds[0]["instruction"], ds[6]["instruction"], ds[20]["instruction"]]
    assert batch["state"].shape == (3, 8) and batch["state"].dtype == torch.float32
    assert batch["actions"].shape == (3, 5, 7) and batch["actions"].dtype == torch.float32
    assert batch["action_pad_mask"].shape == (3, 5) and batch["action_pad_mask"].dtype == torch.bool
    assert batch["action_pad_mask"][1].tolist() == [False, True, True, True, True]  # row 6 ends episode 0
    assert batch["goal_state"].shape == (3, 8) and batch["goal_state"].dtype == torch.float32


def test_goal_state_is_the_state_at_the_episodes_last_row(data):
    truth, source = data
    ds = _dataset(source, 4)
    for start, end in truth.episode_rows:
        last = torch.from_numpy(truth.state[end - 1])
        for row in (start, (start + end) // 2, end - 1):
            assert torch.equal(ds[row]["goal_state"], last)
