"""Named aggregator configurations."""

from __future__ import annotations

from pathlib import Path

import torch

from .aggregator import Aggregator
from .checkpoint import load_aggregator_weights

VGGT_1B_HUB_ID = "facebook/VGGT-1B"
VGGT_1B_NUM_PARAMS = 909_112_320  # aggregator only (the heads add 347,425,196)


# VGGT-1B's aggregator constructor arguments (ViT-L/14 reg4 + 24 x 2 blocks, C = 1024).
VGGT_1B_KWARGS = dict(
    img_size=518,
    patch_size=14,
    embed_dim=1024,
    depth=24,
    num_heads=16,
    mlp_ratio=4.0,
    num_register_tokens=4,
    qkv_bias=True,
    proj_bias=True,
    ffn_bias=True,
    patch_embed="dinov2_vitl14_reg",
    aa_order=("frame", "global"),
    aa_block_size=1,
    qk_norm=True,
    rope_freq=100,
    init_values=0.01,
)


def vggt_1b(**overrides) -> Aggregator:
    """The VGGT-1B aggregator exactly as `VGGT()` builds it (VGGT_1B_KWARGS, with overrides).

    Build it under `with torch.device("meta"):` to skip allocating 3.6 GB of random weights before
    loading a checkpoint (`load_aggregator_weights` then assigns the loaded tensors).
    """
    return Aggregator(**{**VGGT_1B_KWARGS, **overrides})


# A small aggregator trained here from recorded demonstration geometry (scripts/train_geometry_model.py):
# C = 128, 4 frame + 4 global blocks, 112 px frames (an 8 x 8 patch grid, the libero_cpu policy's),
# behind VGGT-1B's DINOv2 patchifier cut to 2 blocks of width 128. That patchifier's learned position
# embedding is why it is kept: against a bare conv one it lowered held-out depth AbsRel by ~0.02 and
# the point error by 2.5-3.6 cm on two seeds (docs/experiments/2026-12-03-geometry.md, 2026-12-07).
# Configs that load its checkpoint set aggregator_kwargs to these values (the checkpoint's
# config.json records them, and loading refuses a mismatch).
SMALL_KWARGS = dict(img_size=112, patch_size=14, embed_dim=128, depth=4, num_heads=4,
                    patch_embed="dinov2_vits14_reg", vit_embed_dim=128, vit_depth=2, vit_num_heads=4)


def vggt_small(**overrides) -> Aggregator:
    """The small aggregator (SMALL_KWARGS, with overrides): VGGT-1B's architecture at ~2 M parameters."""
    return vggt_1b(**{**SMALL_KWARGS, **overrides})


def pretrained_vggt_1b(
    source: str | Path = VGGT_1B_HUB_ID,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    **load_kwargs,
) -> Aggregator:
    """VGGT-1B aggregator with released weights, in eval mode on `device` / `dtype`.

    Built on the meta device and filled by assignment, so peak host memory is one copy of the weights.
    `source` / `load_kwargs` go to `load_aggregator_weights` (hub id, file or directory; revision,
    cache_dir, local_files_only). Keep dtype float32 and use autocast for bf16 inference, as the
    reference implementation does.
    """
    with torch.device("meta"):
        model = vggt_1b()
    load_aggregator_weights(model, source, **load_kwargs)
    return model.to(device=device, dtype=dtype).eval()
