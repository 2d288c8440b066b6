"""Language encoder: decoder and encoder models, padding, fallback, frozen-feature cache."""

import warnings

import pytest
import torch

from vggt_vla.config import LanguageConfig
from vggt_vla.models.language_encoder import LanguageEncoder
from vggt_vla.models.pretrained import PretrainedUnavailable

TEXTS = ["pick up the black bowl and place it on the plate", "move to the red cube"]


@pytest.mark.parametrize("fixture", ["tiny_qwen3", "tiny_bert"])
def test_decoder_and_encoder_models(fixture, request):
    path = request.getfixturevalue(fixture)
    enc = LanguageEncoder(LanguageConfig(language_model=path, fallback_language_model=None), dim=32)
    tokens, mask = enc(TEXTS)
    assert tokens.shape[0] == 2 and tokens.shape[2] == 32
    assert mask.dtype == torch.bool
    assert mask[0].sum() > mask[1].sum()  # the short instruction is padded
    assert not any(p.requires_grad for p in enc.model.parameters())


def test_max_length_truncates(tiny_qwen3):
    enc = LanguageEncoder(LanguageConfig(language_model=tiny_qwen3, max_length=4), dim=32)
    tokens, mask = enc(TEXTS)
    assert tokens.shape[1] == 4 and mask.all()


def test_frozen_features_are_cached_per_instruction(tiny_qwen3):
    enc = LanguageEncoder(LanguageConfig(language_model=tiny_qwen3), dim=32)
    first, _ = enc(TEXTS)
    assert enc.num_lm_forwards == 2  # one forward per new instruction
    again, _ = enc(list(reversed(TEXTS)) + TEXTS)
    assert enc.num_lm_forwards == 2  # nothing new: no language-model forward
    assert torch.equal(again[2:], first)
    # cached features are bit-identical to freshly computed ones, whatever the batch around them
    enc.clear_cache()
    fresh, _ = enc([TEXTS[1], "push the blue ball left", TEXTS[0]])
    assert enc.num_lm_forwards == 5
    assert torch.equal(fresh[2, :first.shape[1]], first[0]) and torch.equal(fresh[0, :4], first[1, :4])


def test_cache_is_bounded(tiny_qwen3):
    enc = LanguageEncoder(LanguageConfig(language_model=tiny_qwen3, feature_cache_size=1), dim=32)
    enc(["move to the red cube"])
    enc(["move to the blue ball"])
    assert list(enc._cache) == ["move to the blue ball"]


def test_trainable_language_model_gets_gradients(tiny_bert):
    enc = LanguageEncoder(LanguageConfig(language_model=tiny_bert, freeze_language=False), dim=32)
    tokens, mask = enc(TEXTS)
    (tokens * mask[..., None]).sum().backward()
    assert any(p.grad is not None for p in enc.model.parameters())


def test_fallback_warns_and_loads_the_fallback(tiny_qwen3, tiny_bert):
    cfg = LanguageConfig(language_model="missing-org/missing-model", fallback_language_model=tiny_qwen3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enc = LanguageEncoder(cfg, dim=32)
    assert enc.model_name == tiny_qwen3
    message = " ".join(str(w.message) for w in caught)
    assert "missing-org/missing-model" in message and tiny_qwen3 in message


def test_both_failing_names_both_errors():
    cfg = LanguageConfig(language_model="missing-org/first", fallback_language_model="missing-org/second")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(PretrainedUnavailable) as err:
            LanguageEncoder(cfg, dim=32)
    assert "missing-org/first" in str(err.value) and "missing-org/second" in str(err.value)


def test_no_fallback_is_a_clear_error():
    cfg = LanguageConfig(language_model="missing-org/only", fallback_language_model=None)
    with pytest.raises(PretrainedUnavailable, match="missing-org/only"):
        LanguageEncoder(cfg, dim=32)


def test_an_empty_instruction_gets_one_token(tiny_qwen3):
    from vggt_vla.config import LanguageConfig
    from vggt_vla.models.language_encoder import LanguageEncoder

    enc = LanguageEncoder(LanguageConfig(language_model=tiny_qwen3, fallback_language_model=None), dim=16)
    tokens, mask = enc([""])
    assert tokens.shape == (1, 1, 16) and mask.tolist() == [[True]]
    tokens, mask = enc(["", "move to the red cube"])
    assert tokens.shape[0] == 2 and mask[0].sum() == 1
