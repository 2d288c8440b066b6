"""The LIBERO HDF5 reader and writer, on small synthetic files (no simulator needed, only h5py).

The same synthetic episodes are written as LIBERO HDF5 and as LeRobot v3.0; both readers must then
yield identical samples through build_datasets, and a tiny model must train on the HDF5 data.
"""

import json

import numpy as np
import pytest
import torch

h5py = pytest.importorskip("h5py", reason="h5py is not installed (pip install -r requirements-sim.txt)")

from conftest import tiny_config  # noqa: E402
from vggt_vla.config import ConfigError, config_from_dict  # noqa: E402
from vggt_vla.data.libero_hdf5 import LiberoHDF5Source, LiberoHDF5Writer, find_hdf5_files  # noqa: E402
from vggt_vla.data.loader import build_datasets  # noqa: E402
from vggt_vla.data.meta import DatasetError  # noqa: E402
from vggt_vla.data.writer import LeRobotWriter  # noqa: E402

CAMS = ["observation.images.image", "observation.images.wrist_image"]
TASKS = ["pick up the black bowl and place it on the plate", "push the red cube left"]


def synthetic_episode(rng, n, size=16):
    """One episode in simulator conventions: frames in the datasets' orientation."""
    return {
        "agent": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
        "wrist": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
        "ee_pos": rng.normal(size=(n, 3)), "ee_ori": rng.normal(size=(n, 3)),
        "gripper": rng.normal(size=(n, 2)) * 0.04, "joints": rng.normal(size=(n, 7)),
        "actions": rng.uniform(-1, 1, (n, 7)),
    }


@pytest.fixture(scope="module")
def two_formats(tmp_path_factory):
    """The same 6 episodes (2 tasks) as LIBERO HDF5 files and as a LeRobot v3.0 dataset."""
    root = tmp_path_factory.mktemp("libero")
    rng = np.random.default_rng(0)
    lengths = [[7, 4, 9], [5, 8, 6]]
    lerobot = LeRobotWriter(root / "lerobot", fps=10, version="v3.0", features={
        CAMS[0]: {"dtype": "image", "shape": [16, 16, 3], "names": None},
        CAMS[1]: {"dtype": "image", "shape": [16, 16, 3], "names": None},
        "observation.state": {"dtype": "float32", "shape": [8], "names": None},
        "action": {"dtype": "float32", "shape": [7], "names": None}})
    for t, task in enumerate(TASKS):
        # File names sort in task order, so HDF5 episode numbers match the LeRobot ones.
        h5 = LiberoHDF5Writer(root / "hdf5" / f"task{t}_demo.hdf5", instruction=task)
        for n in lengths[t]:
            ep = synthetic_episode(rng, n)
            h5.add_demo(actions=ep["actions"], states=rng.normal(size=(n, 20)), robot_states=rng.normal(size=(n, 9)),
                        agentview_rgb=ep["agent"], eye_in_hand_rgb=ep["wrist"], ee_pos=ep["ee_pos"],
                        ee_ori=ep["ee_ori"], gripper_states=ep["gripper"], joint_states=ep["joints"])
            state = np.concatenate([ep["ee_pos"], ep["ee_ori"], ep["gripper"]], axis=1).astype(np.float32)
            lerobot.add_episode({CAMS[0]: ep["agent"], CAMS[1]: ep["wrist"], "observation.state": state,
                                 "action": ep["actions"].astype(np.float32)}, task=task)
        h5.close()
    lerobot.finalize()
    return root


def data_config(language_model, data: dict, **train):
    model = tiny_config(language_model, action_head={"chunk_size": 4}).model
    import dataclasses

    return config_from_dict({"model": dataclasses.asdict(model),
                             "data": {"dataset_repo": "", "num_workers": 0, "val_fraction": 0.34, **data},
                             "train": {"batch_size": 4, "device": "cpu", **train}})


def test_file_layout_matches_the_release(two_formats):
    path = two_formats / "hdf5" / "task0_demo.hdf5"
    with h5py.File(path, "r") as f:
        assert json.loads(f["data"].attrs["problem_info"])["language_instruction"] == TASKS[0]
        assert f["data"].attrs["num_demos"] == 3
        demo = f["data/demo_0"]
        for key in ("actions", "states", "robot_states", "rewards", "dones"):
            assert demo[key].shape[0] == 7, key
        assert demo["dones"][-1] == 1 and demo["dones"][:-1].sum() == 0
        for key, width in (("ee_pos", 3), ("ee_ori", 3), ("ee_states", 6), ("gripper_states", 2), ("joint_states", 7)):
            assert demo["obs"][key].shape == (7, width), key
        assert demo["obs/agentview_rgb"].dtype == np.uint8 and demo["obs/agentview_rgb"].shape == (7, 16, 16, 3)


def test_reader_rotates_frames_and_builds_the_state(two_formats):
    path = two_formats / "hdf5" / "task1_demo.hdf5"
    src = LiberoHDF5Source([path], camera_keys=CAMS, progress=False)
    assert src.tasks == [TASKS[1]] and src.num_rows == 5 + 8 + 6 and src.state_dim == 8 and src.action_dim == 7
    with h5py.File(path, "r") as f:
        stored = f["data/demo_1/obs/eye_in_hand_rgb"][3]
        obs = f["data/demo_1/obs"]
        state = np.concatenate([obs["ee_pos"][3], obs["ee_ori"][3], obs["gripper_states"][3]])
    row = 5 + 3  # episode 1 starts after episode 0's 5 rows
    assert np.array_equal(src.frame(1, row), stored[::-1, ::-1])  # the file holds raw (upside-down) renders
    assert np.allclose(src.state[row], state, atol=1e-6)


def test_demos_are_numbered_numerically(tmp_path):
    w = LiberoHDF5Writer(tmp_path / "a.hdf5", instruction="x")
    rng = np.random.default_rng(1)
    for n in range(2, 14):  # demo_0 .. demo_11: demo_10 must come after demo_9, not after demo_1
        ep = synthetic_episode(rng, n, size=4)
        w.add_demo(actions=ep["actions"], states=np.zeros((n, 1)), robot_states=np.zeros((n, 9)),
                   agentview_rgb=ep["agent"], eye_in_hand_rgb=ep["wrist"], ee_pos=ep["ee_pos"], ee_ori=ep["ee_ori"],
                   gripper_states=ep["gripper"], joint_states=ep["joints"])
    w.close()
    src = LiberoHDF5Source([tmp_path / "a.hdf5"], camera_keys=CAMS, progress=False)
    assert (src.ep_end - src.ep_start).tolist() == list(range(2, 14))


def test_both_formats_yield_the_same_samples(two_formats, tiny_qwen3):
    hdf5 = build_datasets(data_config(tiny_qwen3, {"dataset_format": "libero_hdf5",
                                                   "dataset_root": str(two_formats / "hdf5")}), progress=False)
    lerobot = build_datasets(data_config(tiny_qwen3, {"dataset_root": str(two_formats / "lerobot")}), progress=False)
    for name in ("observation.state", "action"):
        for stat in ("mean", "std"):
            assert np.allclose(hdf5.normalizer.stats[name][stat], lerobot.normalizer.stats[name][stat], atol=1e-5)
    for a, b in ((hdf5.train, lerobot.train), (hdf5.val, lerobot.val)):
        assert len(a) == len(b) > 0
        assert list(a.episodes) == list(b.episodes)
        for i in range(len(a)):
            x, y = a[i], b[i]
            assert x["instruction"] == y["instruction"]
            assert torch.equal(x["images"], y["images"])
            assert torch.equal(x["action_pad_mask"], y["action_pad_mask"])
            assert torch.allclose(x["state"], y["state"], atol=1e-5)
            assert torch.allclose(x["actions"], y["actions"], atol=1e-5)


def test_trains_on_hdf5(two_formats, tiny_qwen3, tmp_path):
    from vggt_vla.offline_eval import plot_episode_traces
    from vggt_vla.policy import Policy
    from vggt_vla.training.trainer import Trainer

    cfg = data_config(tiny_qwen3, {"dataset_format": "libero_hdf5",
                                   "hdf5_files": [str(two_formats / "hdf5" / "task*_demo.hdf5")]},
                      max_steps=3, log_every=1, eval_every=0, save_every=3, image_every=0, val_batches=1,
                      warmup_steps=1, log_dir=str(tmp_path), exp_name="h5")
    result = Trainer(cfg, progress=False).fit()
    assert np.isfinite(result["val"]["l1"])
    policy = Policy.from_pretrained(tmp_path / "h5", device="cpu", n_action_steps=2)
    val = build_datasets(cfg, policy.normalizer, progress=False).val
    assert plot_episode_traces(policy, val, str(tmp_path / "plots"), episodes=1)


def test_errors_name_the_problem(two_formats, tmp_path, tiny_qwen3):
    with pytest.raises(ConfigError, match="dataset_root.*or data.hdf5_files"):
        data_config(tiny_qwen3, {"dataset_format": "libero_hdf5"})
    with pytest.raises(ConfigError, match="hdf5_files is only read"):
        data_config(tiny_qwen3, {"dataset_root": "x", "hdf5_files": ["a.hdf5"]})
    with pytest.raises(DatasetError, match="no .hdf5 files"):
        find_hdf5_files(str(tmp_path))
    with pytest.raises(DatasetError, match="matches no file"):
        find_hdf5_files(files=[str(tmp_path / "*.hdf5")])
    path = two_formats / "hdf5" / "task0_demo.hdf5"
    with pytest.raises(DatasetError, match="no camera 'front_rgb'.*rename_map"):
        LiberoHDF5Source([path], camera_keys=["observation.images.front"], progress=False,
                         rename_map={"front_rgb": "observation.images.front"})
    bad = tmp_path / "bad.hdf5"
    with h5py.File(bad, "w") as f:
        f.create_group("data/demo_0")
    with pytest.raises(DatasetError, match="problem_info"):
        LiberoHDF5Source([bad], camera_keys=CAMS, progress=False)
    (tmp_path / "junk.hdf5").write_text("not hdf5")
    with pytest.raises(DatasetError, match="not a readable HDF5 file"):
        LiberoHDF5Source([tmp_path / "junk.hdf5"], camera_keys=CAMS, progress=False)
