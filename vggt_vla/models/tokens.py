"""What every fusion backbone receives: the tagged tokens of each modality, kept apart.

Backbones differ in what they do with the modalities (the simple backbone runs a graph per
modality, VGGT sees the raw camera frames), so they get them separately instead of one
concatenated sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

# Token-type ids, added as learned embeddings before fusion.
VISION, LANGUAGE, STATE, ACTION_QUERY = 0, 1, 2, 3
NUM_TOKEN_TYPES = 4


@dataclass
class FusionInputs:
    images: torch.Tensor  # [B, V, 3, H, W] in [0, 1], for backbones that read pixels (VGGT)
    vision: Optional[torch.Tensor]  # [B, V*h*w, D] camera by camera, row-major patches (None: no
    #                                 vision encoder, vggt.fusion: inject)
    grid: Optional[tuple[int, int]]  # (h, w): patch grid of every camera
    language: torch.Tensor  # [B, L, D]
    language_mask: torch.Tensor  # [B, L] bool, True = real token, False = padding
    state: Optional[torch.Tensor]  # [B, 1, D] or None when the model takes no state
    queries: torch.Tensor  # [B, Q, D] action queries

    @property
    def num_cameras(self) -> int:
        return self.images.shape[1]
