"""Transformer building blocks shared by the backbones and the flow-matching denoiser."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


class SelfAttention(nn.Module):
    """Multi-head self-attention through scaled_dot_product_attention, with a key mask."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        assert dim % num_heads == 0, f"dim={dim} must be divisible by num_heads={num_heads}"
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x [B, N, D]; key_mask [B, N] bool, True = may be attended to."""
        B, N, D = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, D // self.num_heads)  # [B, N, 3, H, Dh]
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, N, Dh]
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]  # [B, 1, 1, N]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0)  # [B, H, N, Dh]
        out = out.transpose(1, 2).reshape(B, N, D)  # [B, N, D]
        return self.proj(out)


class MLP(nn.Module):
    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(F.gelu(self.fc1(x))))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dropout)

    def forward(self, x: torch.Tensor, key_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), key_mask)  # [B, N, D]
        return x + self.mlp(self.norm2(x))  # [B, N, D]


class CrossAttention(nn.Module):
    """Multi-head attention of queries x [B, N, D] over a context [B, M, D]."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        assert dim % num_heads == 0, f"dim={dim} must be divisible by num_heads={num_heads}"
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        M, H = context.shape[1], self.num_heads
        q = self.q(x).view(B, N, H, D // H).transpose(1, 2)  # [B, H, N, Dh]
        k, v = self.kv(context).view(B, M, 2, H, D // H).permute(2, 0, 3, 1, 4)  # each [B, H, M, Dh]
        out = F.scaled_dot_product_attention(q, k, v)  # [B, H, N, Dh]
        return self.proj(out.transpose(1, 2).reshape(B, N, D))  # [B, N, D]


class CrossAttentionBlock(nn.Module):
    """Pre-norm: x + attn(norm(x), norm(context)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm_x = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm_x(x), self.norm_context(context))  # [B, N, D]
        return x + self.mlp(self.norm2(x))  # [B, N, D]


def layer_index(i: int, depth: int) -> int:
    """A layer index, negative counting from the end, as 0..depth-1; IndexError if out of range."""
    if not -depth <= i < depth:
        raise IndexError(f"layer {i} out of range for {depth} layers")
    return i + depth if i < 0 else i


def freeze(module: nn.Module) -> None:
    """No gradients, eval mode. Its owner keeps it in eval mode when the model is put in training
    mode (models/pretrained.py: train_keeping_frozen)."""
    module.requires_grad_(False)
    module.eval()
