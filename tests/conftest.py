"""Shared fixtures: tiny versions of the real pretrained parts, saved with save_pretrained.

The hub is unreachable on CI, so each test builds the real architecture classes (Qwen3, BERT,
DINOv2, CLIP, SigLIP) at toy sizes, saves them (with a tokenizer built here) to a temp dir, and
the model loads them through the same from_pretrained path it uses for hub ids.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from vggt_vla.config import Config, config_from_dict  # noqa: E402
from vggt_vla.models.summary import dummy_batch  # noqa: E402
from vggt_vla.sim.libero import INSTALL_HINT  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

WORDS = ("pick up the black bowl and place it on plate red blue green move to cube ball "
         "push left right between next ramekin cookie box drawer of a in").split()


def _libero_missing():
    """Why the LIBERO simulator cannot be imported here, or None if it can."""
    try:
        from vggt_vla.sim.libero import import_libero

        import_libero()
    except ImportError as err:
        return str(err)
    return None


# `pytestmark = needs_libero` in a test module skips it, saying why, where the simulator is missing.
_LIBERO_MISSING = _libero_missing()
needs_libero = pytest.mark.skipif(_LIBERO_MISSING is not None,
                                  reason=f"LIBERO is not installed: {_LIBERO_MISSING} ({INSTALL_HINT})")


def run_script(*args, timeout=600, **env):
    """Run `python ARGS` from the repo root as a user would (offline), with extra environment variables."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def assert_two_process_step_in_sync(configs: list, tmp_path: Path) -> None:
    """Each config trained to its train.max_steps in 2 processes (accelerate, gloo on CPU): both
    ranks reach it with identical trainable parameters."""
    import socket

    import yaml

    paths = []
    for i, cfg in enumerate(configs):
        paths.append(tmp_path / f"two_process_{i}.yaml")
        paths[-1].write_text(yaml.safe_dump(cfg.to_dict()))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # accelerate's --cpu launcher starts one process; --multi_gpu starts N (torch.distributed.run)
    # and, with train.device=cpu, the processes talk over gloo.
    out = run_script("-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                     "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
                     "tests/accelerate_step.py", str(tmp_path / "params"), *map(str, paths))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for i in range(len(configs)):
        r0 = torch.load(tmp_path / f"params.{i}.rank0.pt")
        r1 = torch.load(tmp_path / f"params.{i}.rank1.pt")
        steps = configs[i].train.max_steps
        assert r0["world"] == r1["world"] == 2 and r0["step"] == r1["step"] == steps, f"config {i}"
        assert r0["params"].keys() == r1["params"].keys(), f"config {i}"
        assert all(torch.equal(r0["params"][k], r1["params"][k]) for k in r0["params"]), f"config {i}"


def build_word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")


def _save(model, path: Path, tokenizer=None) -> str:
    model.save_pretrained(path)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_qwen3(tmp_path_factory) -> str:
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8)
    return _save(Qwen3Model(config), tmp_path_factory.mktemp("qwen3"), build_word_tokenizer())


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=64, hidden_size=24, intermediate_size=48, num_hidden_layers=2,
                        num_attention_heads=2, max_position_embeddings=128)
    return _save(BertModel(config), tmp_path_factory.mktemp("bert"), build_word_tokenizer())


@pytest.fixture(scope="session")
def tiny_dinov2(tmp_path_factory) -> str:
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    config = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                          patch_size=8, image_size=32)
    return _save(Dinov2Model(config), tmp_path_factory.mktemp("dinov2"))


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    """A full CLIPModel (text + vision), as CLIP checkpoints on the hub are."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           patch_size=8, image_size=32),
        projection_dim=16)
    return _save(CLIPModel(config), tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="session")
def tiny_siglip(tmp_path_factory) -> str:
    """A SigLIP vision-only model."""
    from transformers import SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(0)
    config = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                num_attention_heads=4, patch_size=8, image_size=32)
    return _save(SiglipVisionModel(config), tmp_path_factory.mktemp("siglip"))


def tiny_config(language_model: str, **model_overrides) -> Config:
    """A tiny config of the real architecture: D=32, 32x32 images, 8x8 patches (4x4 grid)."""
    model = {
        "dim": 32,
        "num_action_queries": 4,
        "state_dim": 8,
        "vision": {"image_size": 32, "patch_size": 8, "num_cameras": 2},
        "language": {"language_model": language_model, "fallback_language_model": None, "max_length": 16},
        "simple_backbone": {"depth": 2, "num_heads": 4},
        "action_head": {"chunk_size": 5, "action_dim": 7, "hidden_dim": 64,
                        "denoiser_depth": 2, "denoiser_heads": 4, "num_inference_steps": 4},
    }
    for key, value in model_overrides.items():
        if isinstance(value, dict):
            model.setdefault(key, {}).update(value)
        else:
            model[key] = value
    return config_from_dict({"model": model})


def make_batch(cfg: Config, batch_size: int = 2, num_cameras: int = 2, seed: int = 0) -> dict:
    """A random batch in the project's batch format; sample 0 ends two steps before its chunk."""
    batch = dummy_batch(cfg, batch_size, seed=seed, num_cameras=num_cameras)
    batch["action_pad_mask"][0, -2:] = True
    return batch


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory) -> str:
    """A tiny embedded-demo dataset (LeRobot v3.0, 8 episodes, 32 px cameras)."""
    from vggt_vla.recording.demo_dataset import make_demo_dataset

    return str(make_demo_dataset(tmp_path_factory.mktemp("demo") / "ds", num_episodes=8, image_size=32,
                                 progress=False))


# configs/train_demo.yaml's data.live as runs saved it before the options became one section.
FLAT_LIVE_KEYS = {"live_expert": True, "live_frame_stride": 4, "live_action_noise": 0.3,
                  "live_noise_correlation": 0.8, "live_shared_colour": 0.8}


def saved_before_the_live_section(cfg: Config, flat: dict = FLAT_LIVE_KEYS) -> dict:
    """cfg's tree as a run saved it before data.live: the flat data.live_* keys `flat` instead."""
    tree = cfg.to_dict()
    del tree["data"]["live"]
    tree["data"].update(flat)
    return tree
