"""Transformer building blocks shared by the aggregator and its DINOv2 patch embedder (as in
facebookresearch/vggt).

One pre-norm block serves both users; they differ only in LayerNorm eps (1e-5 in the aggregator,
1e-6 in the ViT), qk-norm (aggregator only) and RoPE (aggregator only, passed in at call time).
Attribute names (norm1, attn.qkv, attn.q_norm, ls1.gamma, mlp.fc1, ...) are the checkpoint's keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .rope import RotaryAngles, apply_rope_2d


class LayerScale(nn.Module):
    """Per-channel learned scale on a residual branch."""

    def __init__(self, dim: int, init_values: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Out of place on purpose: under autocast x is low precision and gamma float32, so the product
        # is float32 and the residual stream stays float32 (as the reference implementation keeps it).
        return x * self.gamma


class Mlp(nn.Module):
    """fc1 -> exact (erf) GELU -> fc2."""

    def __init__(self, dim: int, hidden_dim: int, bias: bool = True):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim, bias=bias)
        self.act = nn.GELU()  # erf form; the tanh approximation is ~1e-3 off the reference
        self.fc2 = nn.Linear(hidden_dim, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention with optional per-head qk LayerNorm and optional 2-D RoPE."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        qk_norm: bool = False,
        norm_eps: float = 1e-5,
    ):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        # One LayerNorm over the head dim, shared by all heads; Identity keeps the keys absent when off.
        self.q_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def forward(self, x: torch.Tensor, rope: RotaryAngles | None = None,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """key_mask [batch, N] bool (True = may be attended to); None attends to every token."""
        batch, n, dim = x.shape  # [batch, N, C]
        # qkv features are laid out [q | k | v], each head-major (feature hd*D + d).
        qkv = self.qkv(x).reshape(batch, n, 3, self.num_heads, self.head_dim)  # [batch, N, 3, nh, D]
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # [batch, nh, N, D] each
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:  # after qk-norm, on q and k only
            q, k = apply_rope_2d(q, rope), apply_rope_2d(k, rope)
        # Under autocast the LayerNorm may hand back float32 q/k next to a low-precision v; SDPA wants
        # one dtype. CUDA autocast casts all three to the low dtype anyway, so do the same explicitly.
        q, k = q.to(v.dtype), k.to(v.dtype)
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]  # [batch, 1, 1, N]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # [batch, nh, N, D], scale 1/sqrt(D)
        out = out.transpose(1, 2).reshape(batch, n, dim)  # [batch, N, C], heads concatenated
        return self.proj(out)


class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x)))."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        ffn_bias: bool = True,
        qk_norm: bool = False,
        norm_eps: float = 1e-5,
        init_values: float = 0.01,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, proj_bias, qk_norm, norm_eps)
        self.ls1 = LayerScale(dim, init_values)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), bias=ffn_bias)
        self.ls2 = LayerScale(dim, init_values)

    def forward(self, x: torch.Tensor, rope: RotaryAngles | None = None,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), rope, key_mask))  # [batch, N, C]
        x = x + self.ls2(self.mlp(self.norm2(x)))  # [batch, N, C]
        return x
