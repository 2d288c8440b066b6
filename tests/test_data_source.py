"""The Source interface and the table of formats: a third format plugs in with one class and one
table row, and trains."""

import numpy as np

from test_training import train_config
from vggt_vla.config import config_from_dict
from vggt_vla.data import source as source_mod
from vggt_vla.data.stats import vector_stats
from vggt_vla.training.trainer import Trainer


class ToySource(source_mod.SourceColumns):
    """Three episodes of six random frames, held in memory: the smallest complete Source."""

    def __init__(self, cfg):
        episodes, length = 3, 6
        rows = episodes * length
        rng = np.random.default_rng(0)
        self.camera_keys = list(cfg.data.camera_keys)
        self.state_key, self.action_key = cfg.data.state_key, cfg.data.action_key
        self.state_feature, self.action_feature = "toy/state", "toy/action"
        self.tasks = ["move to the red cube", "push the blue ball left"]
        self.state = rng.normal(size=(rows, 8)).astype(np.float32)
        self.action = rng.normal(size=(rows, 7)).astype(np.float32)
        self.task_index = np.repeat(np.arange(episodes) % 2, length)
        self.row_episode = np.repeat(np.arange(episodes), length)
        self.ep_start = np.arange(episodes) * length
        self.ep_end = self.ep_start + length
        self.episode_indices = np.arange(episodes)
        self._frames = rng.integers(0, 256, size=(rows, 32, 32, 3), dtype=np.uint8)

    def episode_position(self, episode_index: int) -> int:
        return int(episode_index)

    def frame(self, cam: int, row: int) -> np.ndarray:
        return self._frames[row]

    def stats(self, mode: str) -> dict:
        return {self.state_key: vector_stats(self.state, quantiles=True),
                self.action_key: vector_stats(self.action, quantiles=True)}

    def identity(self) -> dict:
        return {"dataset": "toy", "total_frames": len(self.state), "codebase_version": "toy"}


def test_a_third_format_plugs_in_through_the_table_and_trains(tiny_qwen3, tmp_path, monkeypatch):
    monkeypatch.setitem(source_mod.FORMATS, "toy", lambda cfg, progress: ToySource(cfg))
    tree = train_config(tiny_qwen3, "unused", tmp_path, head="l1", max_steps=1, eval_every=0,
                        image_every=0).to_dict()
    tree["data"]["dataset_format"] = "toy"  # the config accepts it because the table has it
    cfg = config_from_dict(tree)
    source = source_mod.build_source(cfg, progress=False)
    assert isinstance(source, ToySource) and (source.state_dim, source.action_dim) == (8, 7)
    result = Trainer(cfg, progress=False).fit()
    assert result["step"] == 1 and np.isfinite(result["val"]["l1"])


def test_an_unknown_format_is_refused_with_the_choices():
    import pytest

    from vggt_vla.config import ConfigError

    with pytest.raises(ConfigError, match="libero_hdf5"):
        config_from_dict({"data": {"dataset_format": "rlds"}})
