"""VGGTAdapter: the pretrained VGGT aggregator as the fusion backbone (model.backbone: vggt).

Cameras become VGGT frames: images [B, V, 3, H, W] -> [B, S=V, 3, H, W], camera 0 (the agent
view) is frame 0, VGGT's reference frame. Images go in as [0, 1]; VGGT normalises inside.

Three fusion modes (VGGTConfig.fusion):

* late            - patch tokens (optionally also camera tokens) of the chosen aggregator layers
                    are projected 2C -> D and, with the vision-encoder tokens, language tokens,
                    state token and action queries, go through `fusion_depth` trainable
                    attention layers:
                        [vggt | vision | language | state | queries] -> blocks -> queries [B, Q, D]
* cross_attention - the vision-encoder tokens (queries) attend to the projected VGGT tokens
                    through one trainable cross-attention block (Evo-0's fusion); only the
                    result goes on, so the fusion layers see no more tokens than without VGGT:
                        vision <- CrossAttn(vision, vggt)
                        [vision | language | state | queries] -> blocks -> queries [B, Q, D]
* inject          - language tokens, state and action queries are projected D -> C and appended
                    to the global-attention sequence of the last `inject_last_k` global blocks of
                    VGGT (RoPE position (0, 0), like VGGT's own camera/register tokens), so the
                    frozen geometry transformer attends over them; their outputs, projected back
                    C -> D, are the query outputs. VLAModel builds no vision encoder for this mode.

A frozen aggregator (freeze_vggt) gets no gradients and stays in eval mode; in late and
cross_attention mode it runs under no_grad, in inject mode autograd only records the blocks after the injection point (the
earlier ones see nothing that requires grad). On CUDA the aggregator runs under bf16 autocast
with its residual stream in fp32.
"""

from __future__ import annotations

import json
import logging
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from vggt_vla.config import VGGTConfig
from vggt_vla.models.geometry_model import checkpoint_kwargs
from vggt_vla.models.layers import CrossAttentionBlock, TransformerBlock, freeze, layer_index
from vggt_vla.models.pretrained import (PretrainedUnavailable, hub_reachable, is_local_path,
                                       train_keeping_frozen)
from vggt_vla.models.tokens import FusionInputs
from vggt_vla.models.vggt import VGGT_1B_KWARGS, CheckpointError, load_aggregator_weights, vggt_1b

log = logging.getLogger(__name__)


def build_aggregator(checkpoint: Optional[str], aggregator_kwargs: dict, random_weights: bool = False) -> nn.Module:
    """The VGGT-1B aggregator (with aggregator_kwargs overrides), loaded from `checkpoint` (a hub id
    or a local file/directory) unless it is None or random_weights is asked for."""
    if checkpoint is None or random_weights:
        return vggt_1b(**aggregator_kwargs)
    trained = checkpoint_kwargs(checkpoint)  # a geometry model trained here records its sizes
    if trained is not None and _full_kwargs(trained) != _full_kwargs(aggregator_kwargs):
        raise CheckpointError(
            f"{checkpoint} is an aggregator built with aggregator_kwargs {trained}, but the config gives "
            f"{aggregator_kwargs or '{} (VGGT-1B)'}; set the config's aggregator_kwargs (model.vggt or "
            f"model.geometry_alignment) to the checkpoint's")
    with torch.device("meta"):  # no 3.6 GB of random init before the checkpoint replaces it
        aggregator = vggt_1b(**aggregator_kwargs)
    offline = not is_local_path(checkpoint) and not hub_reachable()
    try:
        report = load_aggregator_weights(aggregator, checkpoint, local_files_only=offline)
    except CheckpointError as err:
        if is_local_path(checkpoint) or not offline:
            raise  # a real problem with the file (corrupt, wrong keys): say it as it is
        raise PretrainedUnavailable(
            f"could not load the VGGT checkpoint '{checkpoint}' (hub unreachable, not in the local "
            f"cache): {err}") from err
    log.info("VGGT aggregator: %s", report.summary())
    return aggregator


def _full_kwargs(overrides: dict) -> dict:
    """VGGT-1B's constructor arguments with `overrides`, in JSON's types (tuples -> lists)."""
    return json.loads(json.dumps({**VGGT_1B_KWARGS, **overrides}))


def resize_frames(images: torch.Tensor, size: int) -> torch.Tensor:
    """[B, V, 3, H, W] in [0, 1] -> [B, V, 3, size, size] (antialiased bilinear; as is if it fits)."""
    B, V, C, H, W = images.shape
    if (H, W) == (size, size):
        return images
    flat = F.interpolate(images.reshape(B * V, C, H, W), size=(size, size), mode="bilinear",
                         antialias=True, align_corners=False)  # [B*V, 3, size, size]
    return flat.reshape(B, V, C, size, size).clamp(0, 1)


class VGGTAdapter(nn.Module):
    """FusionInputs -> action-query outputs [B, Q, D], through the VGGT aggregator."""

    def __init__(self, dim: int, cfg: VGGTConfig, num_cameras: int, random_weights: bool = False):
        super().__init__()
        self.cfg = cfg
        self.aggregator = build_aggregator(cfg.checkpoint if cfg.use_pretrained_vggt else None,
                                           cfg.aggregator_kwargs, random_weights)
        self.frozen = cfg.freeze_vggt
        if self.frozen:
            freeze(self.aggregator)
        C = self.aggregator.camera_token.shape[-1]
        depth = self.aggregator.depth
        self.feature_layers = [i + depth if i < 0 else i for i in cfg.feature_layers]
        if not all(0 <= i < depth for i in self.feature_layers):
            raise ValueError(f"vggt.feature_layers={cfg.feature_layers} out of range for an aggregator of "
                             f"depth {depth}")
        if cfg.fusion == "inject" and cfg.inject_last_k > depth:
            raise ValueError(f"vggt.inject_last_k={cfg.inject_last_k} exceeds the aggregator depth {depth}")
        self._warned_resize = False
        if cfg.fusion != "inject":
            feat_dim = 2 * C * len(self.feature_layers)  # frame + global halves of every tapped layer
            self.feature_proj = nn.Linear(feat_dim, dim)
            self.vggt_embed = nn.Parameter(torch.zeros(dim))  # tells VGGT tokens from tower tokens
            self.frame_embed = nn.Parameter(torch.randn(num_cameras, dim) * 0.02)  # [V_max, D]
            if cfg.fusion == "cross_attention":
                self.cross = CrossAttentionBlock(dim, cfg.fusion_heads)
            self.blocks = nn.ModuleList(TransformerBlock(dim, cfg.fusion_heads) for _ in range(cfg.fusion_depth))
        else:
            self.to_vggt = nn.Linear(dim, C)
            self.from_vggt = nn.Linear(C, dim)
        self.norm = nn.LayerNorm(dim)
        self.gradient_checkpointing = False  # recompute fusion-block activations in backward

    def train(self, mode: bool = True):
        return train_keeping_frozen(self, mode, self.aggregator if self.frozen else None)

    def _frames(self, images: torch.Tensor) -> torch.Tensor:
        """[B, V, 3, H, W] -> [B, S=V, 3, size, size] at the configured VGGT resolution."""
        H, W = images.shape[-2:]
        size = self.cfg.image_size
        if (H, W) != (size, size) and not self._warned_resize:
            log.warning("VGGT: resizing camera images from %dx%d to %dx%d (vggt.image_size)", H, W, size, size)
            self._warned_resize = True
        return resize_frames(images, size)

    def _autocast(self, device: torch.device):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def forward(self, inputs: FusionInputs) -> torch.Tensor:
        return self.run(inputs)[0]  # [B, Q, D]

    def run(self, inputs: FusionInputs, vision_layer: Optional[int] = None):
        """-> (query outputs [B, Q, D], the vision-encoder tokens after fusion block `vision_layer`
        [B, Nv, D] or None): the second is the geometry-alignment student (models/geometry.py)."""
        frames = self._frames(inputs.images)  # [B, S, 3, h*14, w*14]
        if self.cfg.fusion == "inject":
            return self._inject(inputs, frames), None
        vggt = self._vggt_tokens(frames)  # [B, S*h*w (+S), D]
        if self.cfg.fusion == "late":
            return self._fuse([vggt], inputs.vision, inputs, vision_layer)
        vision = self.cross(inputs.vision, vggt)  # [B, Nv, D]
        return self._fuse([], vision, inputs, vision_layer)

    def _vggt_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames -> the chosen aggregator layers' tokens at width D, tagged by frame and as VGGT's:
        [B, S*h*w, D] patch tokens, then [B, S, D] camera tokens if vggt.use_camera_tokens."""
        with torch.set_grad_enabled(not self.frozen and torch.is_grad_enabled()), self._autocast(frames.device):
            layers, start = self.aggregator(frames, self.feature_layers)  # k x [B, S, P, 2C]
        feats = torch.cat(layers, dim=-1).float()  # [B, S, P, 2Ck]
        B, S = feats.shape[:2]
        frame = self.frame_embed[:S, None, :] + self.vggt_embed  # [S, 1, D]
        tokens = self.feature_proj(feats[:, :, start:]) + frame  # [B, S, h*w, D]
        groups = [tokens.reshape(B, -1, tokens.shape[-1])]  # [B, S*h*w, D]
        if self.cfg.use_camera_tokens:
            groups.append(self.feature_proj(feats[:, :, 0]) + frame[:, 0])  # [B, S, D]
        return torch.cat(groups, dim=1)  # [B, S*h*w (+S), D]

    def _fuse(self, prefix: list, vision: torch.Tensor, inputs: FusionInputs, vision_layer: Optional[int]):
        """[prefix | vision | language | state | queries] through the fusion blocks."""
        extras = [inputs.state] if inputs.state is not None else []
        x = torch.cat(prefix + [vision, inputs.language] + extras + [inputs.queries], dim=1)  # [B, N, D]
        B = x.shape[0]
        ones = lambda t: torch.ones(B, t.shape[1], dtype=torch.bool, device=x.device)  # noqa: E731
        key_mask = torch.cat([ones(g) for g in prefix] + [ones(vision), inputs.language_mask]
                             + [ones(e) for e in extras] + [ones(inputs.queries)], dim=1)  # [B, N]
        start = sum(g.shape[1] for g in prefix)
        tap = None if vision_layer is None else layer_index(vision_layer, len(self.blocks))
        tapped = None
        for i, block in enumerate(self.blocks):
            if self.gradient_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, key_mask, use_reentrant=False)
            else:
                x = block(x, key_mask)
            if i == tap:
                tapped = x[:, start:start + vision.shape[1]]  # [B, Nv, D]
        return self.norm(x[:, -inputs.queries.shape[1]:]), tapped  # [B, Q, D], [B, Nv, D] or None

    def _inject(self, inputs: FusionInputs, frames: torch.Tensor) -> torch.Tensor:
        extras = [inputs.state] if inputs.state is not None else []
        joined = torch.cat([inputs.language] + extras + [inputs.queries], dim=1)  # [B, E, D]
        B = joined.shape[0]
        rest = joined.shape[1] - inputs.language.shape[1]
        mask = torch.cat([inputs.language_mask,
                          torch.ones(B, rest, dtype=torch.bool, device=joined.device)], dim=1)  # [B, E]
        first = self.aggregator.depth - self.cfg.inject_last_k
        with self._autocast(frames.device):
            _, _, out = self.aggregator.forward_with_injection(
                frames, self.to_vggt(joined), mask, first)  # out [B, E, C]
        queries = out[:, -inputs.queries.shape[1]:].float()  # [B, Q, C]
        return self.norm(self.from_vggt(queries))  # [B, Q, D]
