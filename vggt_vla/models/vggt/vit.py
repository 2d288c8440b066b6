"""DINOv2-style ViT with register tokens: the aggregator's patch embedder (as in
facebookresearch/vggt).

Only the final-LayerNorm'ed patch tokens leave this module; the cls token and the ViT's own registers
take part in attention and are then dropped. Parameter names follow the checkpoint
(`cls_token`, `pos_embed`, `register_tokens`, `mask_token`, `patch_embed.proj`, `blocks.{i}`, `norm`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Block

# ViT dims implied by the reference's `patch_embed` names: (embed_dim, depth, num_heads, mlp_ratio).
# Only "dinov2_vitl14_reg" is what VGGT-1B uses; the others are accepted by the reference too.
VIT_PRESETS: dict[str, tuple[int, int, int, float]] = {
    "dinov2_vits14_reg": (384, 12, 6, 4.0),
    "dinov2_vitb14_reg": (768, 12, 12, 4.0),
    "dinov2_vitl14_reg": (1024, 24, 16, 4.0),
    "dinov2_vitg2_reg": (1536, 40, 24, 4.0),
}

VIT_NORM_EPS = 1e-6  # DINOv2 LayerNorm eps (the aggregator blocks use 1e-5)


class PatchEmbed(nn.Module):
    """Non-overlapping conv patchifier: [B, 3, H, W] -> [B, h*w, C] in raster order (n = r*w + c)."""

    def __init__(self, patch_size: int = 14, in_chans: int = 3, embed_dim: int = 1024):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, H, W = x.shape
        if H % self.patch_size or W % self.patch_size:
            raise ValueError(
                f"image size {H}x{W} is not a multiple of the patch size {self.patch_size}; "
                "resize/crop inputs to multiples of 14 (e.g. width 518)"
            )
        x = self.proj(x)  # [B, C, h, w]
        return x.flatten(2).transpose(1, 2)  # [B, h*w, C]


def resample_pos_embed(grid: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Resample a square `[1, M*M, C]` position table to an h x w grid, returning `[1, h*w, C]`.

    Antialiased bicubic with explicit output size (interpolate_offset = 0), in float32 whatever the
    table dtype: this is PyTorch's PIL-style filter (Keys kernel a = -0.5, weights renormalised at the
    borders), which is what the reference uses. The plain (non-antialiased) bicubic differs.
    """
    n, dim = grid.shape[1], grid.shape[2]
    m = int(math.sqrt(n))
    if m * m != n:
        raise ValueError(f"position table has {n} grid rows, not a square number")
    grid = grid.float().reshape(1, m, m, dim).permute(0, 3, 1, 2)  # [1, C, M, M]
    grid = F.interpolate(grid, size=(h, w), mode="bicubic", antialias=True, align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(1, h * w, dim)  # [1, h*w, C]


class DinoViT(nn.Module):
    """ViT with cls token, learned absolute position table and register tokens; returns patch tokens."""

    def __init__(
        self,
        img_size: int = 518,
        patch_size: int = 14,
        embed_dim: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        num_register_tokens: int = 4,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        ffn_bias: bool = True,
        init_values: float = 1.0,
    ):
        super().__init__()
        self.patch_size = patch_size
        self.num_register_tokens = num_register_tokens
        grid = img_size // patch_size  # M: the table covers an M x M grid (37 for 518)
        # Registration order fixes the state_dict order: own parameters first, then submodules.
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, embed_dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim))
        # Kept only so checkpoints load strictly: masked-token training is not used at inference.
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim))
        self.patch_embed = PatchEmbed(patch_size, 3, embed_dim)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, proj_bias, ffn_bias,
                  qk_norm=False, norm_eps=VIT_NORM_EPS, init_values=init_values)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=VIT_NORM_EPS)

    def pos_embed_for(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """Position table matching tokens `x` = [B, 1 + h*w, C] of an H x W image (cls row first)."""
        h, w = H // self.patch_size, W // self.patch_size
        n_table = self.pos_embed.shape[1] - 1
        # The reference tests "same token count AND square pixels", not "same grid"; mirror it.
        if h * w == n_table and H == W:
            return self.pos_embed  # [1, 1 + M*M, C]
        # The reference upcasts the whole table first, so even the cls row takes a float32 round trip.
        cls_pos = self.pos_embed[:, :1].float()  # [1, 1, C]
        grid_pos = resample_pos_embed(self.pos_embed[:, 1:], h, w)  # [1, h*w, C] float32
        return torch.cat([cls_pos, grid_pos], dim=1).to(x.dtype)  # [1, 1 + h*w, C]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images [B, 3, H, W] -> final-normed patch tokens [B, h*w, C]."""
        B, _, H, W = images.shape
        x = self.patch_embed(images)  # [B, h*w, C]
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)  # [B, 1 + h*w, C]
        x = x + self.pos_embed_for(x, H, W)  # [B, 1 + h*w, C]
        # Registers go right after cls and get no position embedding.
        regs = self.register_tokens.expand(B, -1, -1)  # [B, R, C]
        x = torch.cat([x[:, :1], regs, x[:, 1:]], dim=1)  # [B, 1 + R + h*w, C]
        for block in self.blocks:
            x = block(x)  # [B, 1 + R + h*w, C]
        x = self.norm(x)  # [B, 1 + R + h*w, C]
        return x[:, 1 + self.num_register_tokens :]  # [B, h*w, C]: patches only
