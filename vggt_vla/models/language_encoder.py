"""Instructions -> language tokens [B, L, D] and their padding mask [B, L].

A transformers tokenizer + model (default Qwen/Qwen3-0.6B-Base, falling back to Qwen/Qwen2-0.5B
with a loud warning) produce last hidden states, which a trainable Linear projects to the fusion
width. Decoder models (Qwen) and encoder models (BERT-style) work alike; for encoder-decoder
models (T5) the encoder is used.

When the language model is frozen, its features depend only on the instruction text, and a
robot dataset repeats a handful of instructions (LIBERO: ten per suite). Features are therefore
cached per instruction (LRU) and the language model runs only for instructions not seen yet;
``num_lm_forwards`` counts its calls so this can be checked.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

import torch
import torch.nn as nn

from vggt_vla.config import LanguageConfig
from vggt_vla.models.layers import freeze
from vggt_vla.models.pretrained import (PretrainedUnavailable, known_config, load_or_raise,
                                        stand_in_tokenizer, train_keeping_frozen)


def _load_one(name: str, random_weights: bool):
    from transformers import AutoModel, AutoTokenizer

    if random_weights:
        config = known_config(name)
        return stand_in_tokenizer(config.vocab_size), AutoModel.from_config(config)
    tokenizer = load_or_raise(AutoTokenizer.from_pretrained, name, "tokenizer")
    model = load_or_raise(
        lambda n, **kw: AutoModel.from_pretrained(n, dtype=torch.float32, **kw), name, "language model")
    return tokenizer, model


def load_language_model(cfg: LanguageConfig, random_weights: bool = False):
    """(tokenizer, model, name actually loaded). Falls back to cfg.fallback_language_model."""
    try:
        return (*_load_one(cfg.language_model, random_weights), cfg.language_model)
    except PretrainedUnavailable as first:
        fallback = cfg.fallback_language_model
        if not fallback or fallback == cfg.language_model:
            raise
        message = (f"LANGUAGE MODEL FALLBACK: could not load '{cfg.language_model}' ({first}); "
                   f"trying '{fallback}' instead")
        # A warning only: a logging call next to it would print the message twice (logging's
        # last-resort handler writes warnings to stderr when a script sets up no logging), and a
        # warning can be caught by a caller that reports the outcome itself (models/summary.py).
        warnings.warn(message, stacklevel=2)
        try:
            return (*_load_one(fallback, random_weights), fallback)
        except PretrainedUnavailable as second:
            raise PretrainedUnavailable(
                f"could not load the language model '{cfg.language_model}' nor its fallback "
                f"'{fallback}'.\n  first error: {first}\n  fallback error: {second}") from second


class LanguageEncoder(nn.Module):
    def __init__(self, cfg: LanguageConfig, dim: int, random_weights: bool = False):
        super().__init__()
        self.cfg = cfg
        tokenizer, model, self.model_name = load_language_model(cfg, random_weights)
        if tokenizer.pad_token is None:  # Qwen base checkpoints may ship without one
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        if tokenizer.pad_token is None:
            raise ValueError(f"tokenizer of '{self.model_name}' has no pad, eos or unk token to pad with")
        # Right padding keeps every real token at the same position whatever the batch, so a
        # causal model gives each instruction the same features alone or in a batch.
        tokenizer.padding_side = "right"
        self.tokenizer = tokenizer
        self.model = model.get_encoder() if getattr(model.config, "is_encoder_decoder", False) else model
        self.frozen = cfg.freeze_language
        if self.frozen:
            freeze(self.model)
        hidden = self.model.config.hidden_size
        self.proj = nn.Linear(hidden, dim)
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()  # text -> [L_i, H]
        self.num_lm_forwards = 0

    def _run_model(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize and run the language model -> (hidden [B, L, H] float32, mask [B, L] bool)."""
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.cfg.max_length,
                             return_tensors="pt")
        device = self.proj.weight.device
        ids = enc["input_ids"].to(device)  # [B, L]
        mask = enc["attention_mask"].to(device).bool()  # [B, L]
        if ids.shape[1] == 0:  # empty instructions and a tokenizer that adds no special tokens
            ids = torch.full((len(texts), 1), self.tokenizer.pad_token_id, dtype=torch.long, device=device)
            mask = torch.ones_like(ids, dtype=torch.bool)  # [B, 1]: the pad token stands for ""
        self.num_lm_forwards += 1
        hidden = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # [B, L, H]
        return hidden.float(), mask

    @torch.no_grad()
    def _cached_features(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen path: features from the cache, the model run only on unseen instructions."""
        for text in dict.fromkeys(t for t in texts if t not in self._cache):
            # One instruction at a time: features then do not depend on which other instructions
            # happened to share the batch (padding changes matmul shapes, hence rounding), which
            # keeps training bit-reproducible across resumes. Misses are rare, so this is cheap.
            hidden, _ = self._run_model([text])  # [1, L_i, H], no padding
            self._cache[text] = hidden[0]
        for text in texts:
            self._cache.move_to_end(text)
        feats = [self._cache[t] for t in texts]
        while len(self._cache) > max(self.cfg.feature_cache_size, len(set(texts))):
            self._cache.popitem(last=False)
        lengths = torch.tensor([f.shape[0] for f in feats])
        hidden = nn.utils.rnn.pad_sequence(feats, batch_first=True)  # [B, L, H]
        mask = torch.arange(hidden.shape[1])[None, :] < lengths[:, None]  # [B, L]
        return hidden, mask.to(hidden.device)

    def clear_cache(self) -> None:
        self._cache.clear()

    def features(self, instructions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """list of B strings -> what the language model makes of them, before the trainable
        projection: (hidden [B, L, H] float32, mask [B, L] bool, True = real token). Cached per
        instruction when frozen. The ONNX graph (vggt_vla/export.py) takes these as inputs."""
        if isinstance(instructions, str):
            raise TypeError("instructions must be a list of strings (one per sample), got a single str")
        if self.frozen and self.cfg.feature_cache_size > 0:
            return self._cached_features(list(instructions))
        if self.frozen:
            with torch.no_grad():
                return self._run_model(list(instructions))
        return self._run_model(list(instructions))

    def forward(self, instructions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """list of B strings -> (tokens [B, L, D], mask [B, L] bool, True = real token)."""
        hidden, mask = self.features(instructions)  # [B, L, H], [B, L]
        return self.proj(hidden), mask  # [B, L, D], [B, L]

    def train(self, mode: bool = True):
        return train_keeping_frozen(self, mode, self.model if self.frozen else None)

    def _apply(self, fn, *args, **kwargs):
        # Cached features live on the old device/dtype; drop them when the module moves.
        self._cache.clear()
        return super()._apply(fn, *args, **kwargs)
