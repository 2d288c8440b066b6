"""Policy (vggt_vla/policy.py) and the config's inference: section: a checkpoint carries how it is
run, explicit arguments override it, and a setting the checkpoint cannot run is refused.

The checkpoints here are written directly (a tiny untrained model, unit statistics): these tests
are about the settings, not about what the model learned."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from conftest import run_script, tiny_config
from vggt_vla.checkpoint import atomic_torch_save, checkpoint_config, load_checkpoint, model_state
from vggt_vla.config import ENSEMBLE_OFF, ConfigError, InferenceConfig
from vggt_vla.constants import ACTION_KEY, STATE_KEY
from vggt_vla.data.normalize import Normalizer
from vggt_vla.models.vla_model import VLAModel
from vggt_vla.policy import Policy


def write_checkpoint(path, cfg, drop_inference: bool = False):
    """A checkpoint as the trainer writes it (the entries Policy reads). drop_inference: as written
    by a version without the inference: section."""
    torch.manual_seed(0)
    model = VLAModel(cfg.model)
    parts = model.pretrained_parts()
    m = cfg.model
    stats = {ACTION_KEY: {"mean": np.zeros(m.action_head.action_dim), "std": np.ones(m.action_head.action_dim)},
             STATE_KEY: {"mean": np.zeros(m.state_dim), "std": np.ones(m.state_dim)}}
    config = cfg.to_dict()
    if drop_inference:
        del config["inference"]
    atomic_torch_save({"model": model_state(model, parts), "pretrained_parts": parts, "config": config,
                       "normalization": Normalizer(stats, "mean_std").to_dict()}, path)
    return path


def with_inference(cfg, **settings):
    return dataclasses.replace(cfg, inference=InferenceConfig(**settings))


@pytest.fixture(scope="module")
def queue_of_3(tiny_qwen3, tmp_path_factory):
    """A checkpoint whose config runs a queue of 3 (tiny config: chunks of 5)."""
    cfg = with_inference(tiny_config(tiny_qwen3), n_action_steps=3)
    return write_checkpoint(tmp_path_factory.mktemp("queue_of_3") / "q3.pt", cfg)


def observation(cfg) -> dict:
    rng = np.random.default_rng(0)
    obs = {key: rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for key in cfg.data.camera_keys}
    return {**obs, STATE_KEY: np.zeros(cfg.model.state_dim, np.float32), "instruction": "pick up the black bowl"}


def count_predictions(policy, steps: int) -> int:
    calls = []
    real = policy.model.predict_action_chunk
    policy.model.predict_action_chunk = lambda *a, **k: calls.append(1) or real(*a, **k)
    obs = observation(policy.cfg)
    policy.reset()
    for _ in range(steps):
        policy.select_action(obs)
    return len(calls)


def test_the_inference_section_round_trips_through_a_checkpoint(queue_of_3):
    assert checkpoint_config(load_checkpoint(queue_of_3)).inference == InferenceConfig(n_action_steps=3)


def test_policy_runs_the_checkpoint_inference_section(queue_of_3):
    policy = Policy.from_pretrained(queue_of_3, device="cpu")
    assert (policy.n_action_steps, policy.temporal_ensemble_coeff) == (3, None)
    assert count_predictions(policy, 7) == 3  # a new chunk at steps 0, 3, 6 (the default: 0, 5)


def test_an_explicit_n_action_steps_overrides_the_section(queue_of_3):
    policy = Policy.from_pretrained(queue_of_3, device="cpu", n_action_steps=2)
    assert count_predictions(policy, 7) == 4


def test_an_explicit_ensemble_coefficient_overrides_the_section(queue_of_3):
    policy = Policy.from_pretrained(queue_of_3, device="cpu", temporal_ensemble_coeff=0.01)
    assert policy.temporal_ensemble_coeff == 0.01
    assert count_predictions(policy, 4) == 4  # ensembling predicts at every step


def test_ensembling_in_the_section_can_be_switched_off(tiny_qwen3, tmp_path):
    cfg = with_inference(tiny_config(tiny_qwen3), n_action_steps=3, temporal_ensemble=0.01)
    path = write_checkpoint(tmp_path / "ensemble.pt", cfg)
    assert Policy.from_pretrained(path, device="cpu").temporal_ensemble_coeff == 0.01
    policy = Policy.from_pretrained(path, device="cpu", temporal_ensemble_coeff=ENSEMBLE_OFF)
    assert policy.temporal_ensemble_coeff is None and count_predictions(policy, 7) == 3


def test_a_checkpoint_without_the_section_runs_the_default(tiny_qwen3, tmp_path):
    path = write_checkpoint(tmp_path / "old.pt", tiny_config(tiny_qwen3), drop_inference=True)
    assert "inference" not in torch.load(path, weights_only=False)["config"]
    policy = Policy.from_pretrained(path, device="cpu")
    assert policy.inference == InferenceConfig() and policy.n_action_steps == 5


@pytest.mark.parametrize("n, message", [(6, r"n_action_steps=6 is more than the model.action_head.chunk_size=5"),
                                        (0, r"n_action_steps must be >= 1")])
def test_an_n_action_steps_the_checkpoint_cannot_run_is_refused(queue_of_3, n, message):
    with pytest.raises(ConfigError, match=message):
        Policy.from_pretrained(queue_of_3, device="cpu", n_action_steps=n)


def test_closed_loop_workers_run_the_checkpoint_inference_section(queue_of_3):
    from vggt_vla import closed_loop

    closed_loop._init_worker(closed_loop.ClosedLoopSpec(policy=str(queue_of_3), device="cpu"), None, None)
    try:
        assert closed_loop._WORKER["policy"].n_action_steps == 3
    finally:
        closed_loop._WORKER.clear()


def test_eval_cli_refuses_an_n_action_steps_the_checkpoint_cannot_run(queue_of_3):
    out = run_script("scripts/eval.py", "--checkpoint", queue_of_3, "--sim", "demo", "--n_action_steps", "9",
                     "--device", "cpu", timeout=300)
    assert out.returncode == 2 and "chunk_size=5" in out.stderr and "Traceback" not in out.stderr


def test_eval_cli_refuses_a_malformed_ensemble_coefficient(queue_of_3):
    out = run_script("scripts/eval.py", "--checkpoint", queue_of_3, "--sim", "demo", "--temporal_ensemble", "x",
                     timeout=300)
    assert out.returncode == 2 and "neither a coefficient" in out.stderr


def test_infer_cli_says_how_the_checkpoint_executes_the_chunk(queue_of_3, tmp_path):
    from PIL import Image

    images = []
    for name in ("agent.png", "wrist.png"):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / name)
        images.append(tmp_path / name)
    out = run_script("scripts/infer.py", "--checkpoint", queue_of_3, "--image", images[0], "--wrist", images[1],
                     "--instruction", "pick up the black bowl", "--device", "cpu", timeout=300)
    assert out.returncode == 0, out.stderr
    assert "action chunk [5, 7]" in out.stdout and "executes the first 3 rows" in out.stdout
