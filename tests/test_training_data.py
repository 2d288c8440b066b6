"""What a run trains on (vggt_vla/training/training_data.py): the recorded frames, or with data.live
the demo env's live scenes, and the same choice for the trainer, the DataLoaders and the benchmark."""

import numpy as np
import pytest

from vggt_vla.config import config_from_dict
from vggt_vla.data.dataset import FrameDataset
from vggt_vla.data.loader import split_episodes
from vggt_vla.recording.live_scenes import LiveSceneFrames
from vggt_vla.training.training_data import build_dataloaders, build_training_data, describe_training_set


def config(dataset, live=None, **train):
    return config_from_dict({
        "model": {"state_dim": 8, "vision": {"image_size": 32, "patch_size": 8}, "action_head": {"chunk_size": 10}},
        "data": {"dataset_repo": "", "dataset_root": dataset, "num_workers": 0, "val_fraction": 0.25,
                 **({"live": live} if live else {})},
        "sim": {"name": "demo", "camera_size": 32},
        "train": {"batch_size": 4, "max_steps": 8, **train},
    })


def test_without_data_live_it_trains_on_the_recorded_frames(demo_dataset):
    train, val, _ = build_training_data(config(demo_dataset), progress=False)
    assert isinstance(train, FrameDataset)
    assert describe_training_set(train) == f"recorded frames of the dataset: {len(train)} items"


def test_data_live_trains_on_one_epoch_of_live_scenes_and_validates_on_recorded_episodes(demo_dataset):
    train, val, normalizer = build_training_data(config(demo_dataset, {"enabled": True}, accumulation_steps=2),
                                                 progress=False, processes=3)
    assert isinstance(train, LiveSceneFrames)
    assert len(train) == 8 * 4 * 2 * 3  # max_steps x batch_size x accumulation_steps x processes
    assert isinstance(val, FrameDataset)
    assert val.episodes.tolist() == split_episodes(range(8), 0.25)[1].tolist()
    assert train.normalizer is normalizer and train.env.image_size == 32  # sim.camera_size
    assert describe_training_set(train).startswith(f"live scenes of the demo env (data.live): {len(train.scenes)} "
                                                   f"new scenes simulated in ")


def test_the_live_settings_reach_the_scenes(demo_dataset):
    plain, _, _ = build_training_data(config(demo_dataset, {"enabled": True}), progress=False)
    tuned, _, _ = build_training_data(config(demo_dataset, {"enabled": True, "frame_stride": 2,
                                                            "action_noise_correlation": 0.8}), progress=False)
    assert tuned.scenes[0]["seed"] == plain.scenes[0]["seed"]  # the same scene (drawn before any noise)
    assert not np.array_equal(tuned.scenes[0]["snapshot"], plain.scenes[0]["snapshot"])  # another path
    assert {t2 - t1 for (s1, t1), (s2, t2) in zip(tuned.items, tuned.items[1:]) if s1 == s2} == {2}


def test_live_items_asks_for_fewer_items(demo_dataset):
    train, _, _ = build_training_data(config(demo_dataset, {"enabled": True}), progress=False, live_items=12)
    assert len(train) == 12


def test_the_dataloaders_load_the_live_scenes(demo_dataset):
    loaders = build_dataloaders(config(demo_dataset, {"enabled": True}), progress=False)
    assert isinstance(loaders.train.dataset, LiveSceneFrames) and isinstance(loaders.val.dataset, FrameDataset)
    assert next(iter(loaders.train))["images"].shape == (4, 2, 3, 32, 32)


@pytest.mark.parametrize("live", [None, {"enabled": True}])
def test_the_benchmark_times_the_training_set(demo_dataset, live):
    from vggt_vla.benchmark import _training_set

    train, described = _training_set(config(demo_dataset, live), demo_dataset, items=12)
    assert type(train) is (LiveSceneFrames if live else FrameDataset)
    assert described == f"{demo_dataset}: {describe_training_set(train)}"
