"""LanguageFiLM: the instruction scales and shifts every vision token before fusion.

    vision' = vision * (1 + gamma(instruction)) + beta(instruction)      per channel

With plain fusion, finding "the blue ball" is a two-hop problem: the action queries must first
read the colour and shape from the words, then attend to the patch that matches. Attention
learns that slowly, and a policy can settle on shortcuts (state, the wrist camera) instead.
FiLM (Perez et al. 2018; RT-1 conditions its image tower the same way) makes the match a
per-token product, so a patch of the named object can stand out in its own features and the
queries find it in one hop. gamma and beta come from the mean of the instruction's real tokens;
the last layer starts at zero, so the model starts unconditioned.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def pool_instruction(language: torch.Tensor, language_mask: torch.Tensor) -> torch.Tensor:
    """The mean of the instruction's real tokens: language [B, L, D], mask [B, L] (True = real) -> [B, D]."""
    keep = language_mask.unsqueeze(-1).to(language.dtype)  # [B, L, 1]
    return (language * keep).sum(1) / keep.sum(1).clamp_min(1.0)  # [B, D]


class LanguageFiLM(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.to_scale_shift = nn.Linear(dim, 2 * dim)
        nn.init.zeros_(self.to_scale_shift.weight)
        nn.init.zeros_(self.to_scale_shift.bias)

    def forward(self, vision: torch.Tensor, language: torch.Tensor, language_mask: torch.Tensor) -> torch.Tensor:
        """vision [B, N, D], language [B, L, D], language_mask [B, L] (True = real) -> [B, N, D]."""
        pooled = pool_instruction(language, language_mask)  # [B, D]
        scale, shift = self.to_scale_shift(self.norm(pooled)).chunk(2, dim=-1)  # [B, D] each
        return vision * (1.0 + scale[:, None, :]) + shift[:, None, :]  # [B, N, D]
