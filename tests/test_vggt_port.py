"""Tests of the VGGT aggregator port (vggt_vla.models.vggt).

The reference fixture lives outside the repository (`<workspace>/shared/vggt`); tests that need it
skip with the reason when it is absent. Everything else builds tiny models and runs in seconds.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vggt_vla.models.vggt import (
    VGGT_1B_NUM_PARAMS,
    Aggregator,
    CheckpointError,
    load_aggregator_weights,
    vggt_1b,
)
from vggt_vla.models.vggt import parity
from vggt_vla.models.vggt.rope import RotaryAngles, apply_rope_2d, patch_positions
from vggt_vla.models.vggt.vit import resample_pos_embed

SHARED = Path(__file__).resolve().parents[2] / "shared" / "vggt"
FIXTURE = SHARED / "fixture"
SHAPES_JSON = SHARED / "vggt1b_state_dict_shapes.json"

# A tiny config whose ViT table (4x4, img_size 56) must be resampled for the 42x70 inputs below.
TINY = dict(img_size=56, patch_size=14, embed_dim=32, depth=2, num_heads=2, num_register_tokens=4)
TINY_VIT = dict(vit_embed_dim=32, vit_depth=1, vit_num_heads=2, vit_mlp_ratio=4.0)


class _Parent(nn.Module):
    """Holds the aggregator the way VGGT does, so state_dict keys get the `aggregator.` prefix."""

    def __init__(self, aggregator: nn.Module):
        super().__init__()
        self.aggregator = aggregator


def _randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Overwrite every parameter so that no block is near an identity (default init hides bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            n = torch.randn(p.shape, generator=g)
            if name.endswith("gamma"):
                p.copy_(0.5 + 0.2 * n)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * n)
            elif name.endswith("bias"):
                p.copy_(0.1 * n)
            elif p.ndim >= 2 and name.endswith("weight"):
                p.copy_(n / math.sqrt(p[0].numel()))  # N(0, 1/fan_in)
            else:  # tokens and position table
                p.copy_(0.5 * n)
    return model


def _tiny(seed: int = 0, **overrides) -> Aggregator:
    return _randomize(Aggregator(**{**TINY, **TINY_VIT, **overrides}), seed).eval()


def _images(B=1, S=3, H=42, W=70, seed=1) -> torch.Tensor:
    return torch.rand(B, S, 3, H, W, generator=torch.Generator().manual_seed(seed))  # [B, S, 3, H, W]


# --------------------------------------------------------------------------------------------------
# Reference fixture parity (through the CLI entry point)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shared_fixture_parity(dtype, capsys):
    if not (FIXTURE / "config.json").is_file():
        pytest.skip(f"reference fixture not found at {FIXTURE}")
    rc = parity.main([str(FIXTURE), "--dtype", dtype])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "PASS" in out


# --------------------------------------------------------------------------------------------------
# VGGT-1B layout


def test_vggt_1b_keys_shapes_and_count_on_meta():
    with torch.device("meta"):
        model = vggt_1b()
    assert sum(p.numel() for p in model.parameters()) == VGGT_1B_NUM_PARAMS == 909_112_320
    assert model.patch_start_idx == 5
    if not SHAPES_JSON.is_file():
        pytest.skip(f"{SHAPES_JSON} not found; parameter count checked, key list not")
    reference = {k: v for k, v in json.loads(SHAPES_JSON.read_text()).items() if k.startswith("aggregator.")}
    ours = {k: list(v.shape) for k, v in _Parent(model).state_dict().items()}
    assert len(reference) == 1210
    assert sorted(set(reference) - set(ours)) == []  # missing
    assert sorted(set(ours) - set(reference)) == []  # extra
    assert list(ours) == list(reference)  # same order too
    assert ours == reference


# --------------------------------------------------------------------------------------------------
# Parity CLI on a fixture folder written here (non-square, S=3, resampled pos-embed, other dims)


def _write_fixture(folder: Path, model: Aggregator, images: torch.Tensor) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "aggregator_kwargs": {k: v for k, v in TINY.items()},
        "patch_embed_vit": {
            "embed_dim": TINY_VIT["vit_embed_dim"], "depth": TINY_VIT["vit_depth"],
            "num_heads": TINY_VIT["vit_num_heads"], "mlp_ratio": TINY_VIT["vit_mlp_ratio"],
            "img_size": TINY["img_size"], "patch_size": 14, "num_register_tokens": 4,
            "interpolate_antialias": True, "interpolate_offset": 0.0, "ffn_layer": "mlp",
        },
    }
    (folder / "config.json").write_text(json.dumps(config))
    save_file({k: v.contiguous() for k, v in _Parent(model).state_dict().items()}, str(folder / "weights.safetensors"))
    save_file({"images": images}, str(folder / "input.safetensors"))
    for dtype, name in [(torch.float32, "expected.safetensors"), (torch.float64, "expected_fp64.safetensors")]:
        with torch.no_grad():
            layers, psi = model.to(dtype)(images.to(dtype))
        tensors = {f"layer_{i:02d}": t.contiguous() for i, t in enumerate(layers)}
        tensors["patch_start_idx"] = torch.tensor([psi])
        save_file(tensors, str(folder / name))
    model.float()


def test_parity_cli_on_generated_fixture(tmp_path, capsys):
    model, images = _tiny(seed=3), _images(B=2, S=3, H=42, W=70)  # 3x5 patches vs a 4x4 table
    _write_fixture(tmp_path, model, images)
    assert parity.main([str(tmp_path)]) == 0
    assert parity.main([str(tmp_path), "--dtype", "float64"]) == 0
    out = capsys.readouterr().out
    assert "layer_01" in out and "PASS" in out

    # A perturbation just above tolerance must fail.
    expected = load_file(str(tmp_path / "expected.safetensors"))
    expected["layer_01"][0, 2, -1, 7] += 1e-3
    save_file(expected, str(tmp_path / "expected.safetensors"))
    assert parity.main([str(tmp_path)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_parity_cli_reports_unusable_folder(tmp_path, capsys):
    assert parity.main([str(tmp_path)]) == 2
    assert "missing" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# Checkpoint loading


def _save_checkpoint(folder: Path, model: Aggregator, drop: str | None = None, fmt="safetensors") -> dict:
    state = {k: v.clone() for k, v in _Parent(model).state_dict().items() if k != drop}
    state["camera_head.foo"] = torch.zeros(3)
    state["depth_head.bar.weight"] = torch.ones(2, 2)
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        save_file(state, str(folder / "model.safetensors"))
    else:
        torch.save(state, folder / "model.pt")
    return state


@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
def test_checkpoint_roundtrip_from_directory(tmp_path, fmt):
    source, images = _tiny(seed=5), _images()
    _save_checkpoint(tmp_path, source, fmt=fmt)
    target = _tiny(seed=6)  # different weights until loaded
    report = load_aggregator_weights(target, tmp_path)  # same function as for the hub id
    assert sorted(report.ignored_keys) == ["camera_head.foo", "depth_head.bar.weight"]
    assert report.num_loaded == len(source.state_dict())
    assert report.path.name == f"model.{fmt}"
    with torch.no_grad():
        expected, _ = source(images)
        got, psi = target(images)
    assert psi == 5
    for a, b in zip(expected, got):
        assert torch.equal(a, b)


def test_checkpoint_load_into_meta_model(tmp_path):
    source, images = _tiny(seed=5), _images(S=2)
    _save_checkpoint(tmp_path, source)
    with torch.device("meta"):
        target = Aggregator(**TINY, **TINY_VIT)
    load_aggregator_weights(target, tmp_path / "model.safetensors")
    assert not any(t.is_meta for t in target.state_dict().values())
    with torch.no_grad():
        assert torch.equal(source(images)[0][-1], target.eval()(images)[0][-1])


def test_checkpoint_missing_key_is_a_clear_error(tmp_path):
    _save_checkpoint(tmp_path, _tiny(), drop="aggregator.frame_blocks.1.attn.q_norm.bias")
    with pytest.raises(CheckpointError, match=r"missing keys \(1\)[\s\S]*frame_blocks\.1\.attn\.q_norm\.bias"):
        load_aggregator_weights(_tiny(), tmp_path)


def test_checkpoint_shape_mismatch_and_foreign_file(tmp_path):
    _save_checkpoint(tmp_path, _tiny())
    with pytest.raises(CheckpointError, match="unexpected keys"):  # checkpoint has 2 layers, model 1
        load_aggregator_weights(_tiny(depth=1), tmp_path)
    save_file({"backbone.w": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="no keys starting with 'aggregator.'"):
        load_aggregator_weights(_tiny(), tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="neither an existing file"):
        load_aggregator_weights(_tiny(), tmp_path / "nope.safetensors")


def test_hub_failure_names_repo_and_remedy(tmp_path):
    # local_files_only + an empty cache never touches the network.
    with pytest.raises(CheckpointError, match=r"(?s)'facebook/VGGT-1B'.*model\.safetensors.*model\.pt.*local path"):
        load_aggregator_weights(_tiny(), "facebook/VGGT-1B", cache_dir=tmp_path, local_files_only=True)


# --------------------------------------------------------------------------------------------------
# Pieces checked against the reference formulas (../shared/vggt/SPEC.md, next to a clone with the fixtures)


def _pil_bicubic_matrix(n: int, m: int) -> torch.Tensor:
    """[m, n] float64 resampling matrix of the antialiased (PIL-style) bicubic that VGGT's
    preprocessing resizes with (SPEC.md section 4.3)."""

    def keys(t: float, a: float = -0.5) -> float:
        t = abs(t)
        if t < 1:
            return (a + 2) * t**3 - (a + 3) * t**2 + 1
        if t < 2:
            return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
        return 0.0

    s = n / m
    support, fscale = 2 * max(s, 1.0), max(s, 1.0)
    mat = torch.zeros(m, n, dtype=torch.float64)
    for i in range(m):
        center = (i + 0.5) * s
        lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n)
        w = torch.tensor([keys((j - center + 0.5) / fscale) for j in range(lo, hi)], dtype=torch.float64)
        mat[i, lo:hi] = w / w.sum()
    return mat


@pytest.mark.parametrize("M,h,w", [(4, 3, 5), (37, 16, 16), (37, 28, 37), (6, 9, 2)])
def test_pos_embed_resampling_is_pil_bicubic(M, h, w):
    table = torch.randn(1, M * M, 3, generator=torch.Generator().manual_seed(0))  # [1, M*M, C]
    got = resample_pos_embed(table, h, w).reshape(h, w, 3).double()
    grid = table.reshape(M, M, 3).double()
    want = torch.einsum("hy,yxc,wx->hwc", _pil_bicubic_matrix(M, h), grid, _pil_bicubic_matrix(M, w))
    assert (got - want).abs().max() < 1e-5


def test_rope_matches_spec_formula():
    D, base = 16, 100.0
    pos = patch_positions(2, 3, num_special=5)  # [11, 2]
    assert pos[:5].eq(0).all() and pos[5].tolist() == [1, 1] and pos[-1].tolist() == [2, 3]
    t = torch.randn(1, 2, pos.shape[0], D, dtype=torch.float64)  # [batch, heads, N, D]
    got = apply_rope_2d(t, RotaryAngles(pos[None], D, base))
    d = D // 2
    want = t.clone()
    for n, (y, x) in enumerate(pos.tolist()):
        for half, p in ((0, y), (1, x)):  # y rotates the first half, x the second
            for j in range(d // 2):
                theta = p * base ** (-2 * j / d)
                a, b = half * d + j, half * d + j + d // 2
                want[..., n, a] = t[..., n, a] * math.cos(theta) - t[..., n, b] * math.sin(theta)
                want[..., n, b] = t[..., n, b] * math.cos(theta) + t[..., n, a] * math.sin(theta)
    assert (got - want).abs().max() < 1e-6  # angles are float32, as in the reference
    assert torch.equal(got[..., :5, :], t[..., :5, :])  # special tokens untouched


# --------------------------------------------------------------------------------------------------
# Behaviour


def test_layer_subset_and_slot_rule():
    model, images = _tiny(seed=7), _images(B=2, S=3)
    with torch.no_grad():
        full, _ = model(images)
        subset, _ = model(images, layer_indices=[-1, 0])
        # Swapping frames 1 and 2 (both slot 1) only permutes outputs; frame 0 (slot 0) is special.
        swapped, _ = model(images[:, [0, 2, 1]])
    assert len(full) == 2 and full[0].shape == (2, 3, 5 + 3 * 5, 64)
    assert torch.equal(subset[0], full[1]) and torch.equal(subset[1], full[0])
    torch.testing.assert_close(swapped[-1], full[-1][:, [0, 2, 1]], rtol=1e-5, atol=1e-5)


def test_bad_input_shapes_raise():
    model = _tiny()
    with pytest.raises(ValueError, match="multiple of the patch size"):
        model(torch.rand(1, 2, 3, 40, 56))
    with pytest.raises(ValueError, match=r"\[B, S, 3, H, W\]"):
        model(torch.rand(2, 3, 42, 42))


def test_bf16_autocast_keeps_residual_stream_fp32():
    model, images = _tiny(seed=8), _images(S=2)
    with torch.no_grad():
        ref, _ = model(images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low, _ = model(images)
    for a, b in zip(ref, low):
        assert b.dtype == torch.float32 and torch.isfinite(b).all()
        assert (a - b).abs().max() < 0.05 * a.abs().max()


# --------------------------------------------------------------------------------------------------
# Optional live comparison with the upstream package


def test_live_against_upstream_vggt(monkeypatch):
    try:
        from vggt.models import aggregator as upstream  # noqa: F401
    except Exception as exc:  # not installed (the normal case): nothing to compare against
        pytest.skip(f"upstream `vggt` package not importable ({type(exc).__name__}: {exc})")

    images = _images(B=2, S=3)
    cases = [("conv", {})]  # bare conv patchifier: tiny without touching upstream internals
    # The ViT path, shrunk by swapping upstream's ViT-L constructor for a small DinoVisionTransformer
    # (the way the shared fixture was made). Best effort: upstream internals may move.
    try:
        from functools import partial

        from vggt.layers import vision_transformer as vt

        block_fn = partial(vt.Block, attn_class=vt.MemEffAttention)

        def small_vit_large(**kw):
            kw.update(embed_dim=32, depth=1, num_heads=2, mlp_ratio=4)
            return vt.DinoVisionTransformer(block_fn=block_fn, **kw)

        monkeypatch.setattr(upstream, "vit_large", small_vit_large)
        cases.append(("dinov2_vitl14_reg", TINY_VIT))
    except Exception as exc:
        warnings.warn(f"upstream ViT path not compared: {type(exc).__name__}: {exc}")

    for name, vit_dims in cases:
        ours = _tiny(seed=9, patch_embed=name, **vit_dims)
        try:
            theirs = upstream.Aggregator(**TINY, patch_embed=name).eval()
        except Exception as exc:
            if name == "conv":
                raise
            warnings.warn(f"upstream ViT path not compared: {type(exc).__name__}: {exc}")
            continue
        shapes = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
        if name != "conv" and shapes != {k: tuple(v.shape) for k, v in ours.state_dict().items()}:
            warnings.warn("upstream ViT path not compared: could not shrink upstream's ViT-L")
            continue
        theirs.load_state_dict(ours.state_dict(), strict=True)
        with torch.no_grad():
            want, want_idx = theirs(images)
            got, got_idx = ours(images)
        assert got_idx == want_idx and len(got) == len(want)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
