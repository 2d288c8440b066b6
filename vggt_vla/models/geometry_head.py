"""Recorded geometry as a training-only target (model.geometry_target), after G3VLA.

    vision tokens after backbone layer L   [B, V*h*w, D]
        -> MLP (D -> hidden -> C)           [B, V, h*w, C]    C: x, y, z and/or depth
    target: each patch's mean base-frame point / depth from the recorded depth maps and camera
            parameters (data/geometry.py), batch["geometry"] [B, V, h*w, 4], batch["geometry_valid"]
    loss  = mean |prediction - target| in metres, over the chosen channels and the patches with depth

Only VLAModel.forward calls it: predict_action_chunk never does, so inference costs nothing extra.
The head is small and saved with the checkpoint (exact resume); GeometryHead.forward_count counts its
forwards in this process, which the tests use to show inference runs none.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from vggt_vla.config import GeometryTargetConfig


class GeometryHead(nn.Module):
    forward_count = 0  # forwards in this process, over every instance

    def __init__(self, cfg: GeometryTargetConfig, dim: int):
        super().__init__()
        self.cfg = cfg
        self.channels = cfg.channels
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, cfg.hidden_dim), nn.GELU(),
                                 nn.Linear(cfg.hidden_dim, len(self.channels)))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, N, D] -> [B, N, C]."""
        GeometryHead.forward_count += 1
        return self.mlp(tokens)

    def loss(self, tokens: torch.Tensor, grid: tuple[int, int], batch: dict) -> torch.Tensor:
        """tokens [B, V*h*w, D] on grid (h, w) -> unweighted scalar L1 loss (metres)."""
        target, valid = batch.get("geometry"), batch.get("geometry_valid")
        if target is None or valid is None:
            raise KeyError("model.geometry_target needs batch['geometry'] and batch['geometry_valid'] (per-patch "
                           "targets that FrameDataset makes from a dataset with recorded geometry); train on "
                           "such a dataset or set model.geometry_target.weight: 0")
        B, N, _ = tokens.shape
        h, w = grid
        if target.ndim != 4 or target.shape[0] != B or target.shape[2] != h * w or target.shape[1] * h * w != N:
            raise ValueError(f"batch['geometry'] is {tuple(target.shape)} but the vision tokens are {N} per sample on "
                             f"a {h}x{w} grid: the targets must be [B, V, {h * w}, 4]; the data's grid comes from "
                             f"model.vision.image_size / patch_size")
        V = target.shape[1]
        pred = self(tokens).float().reshape(B, V, h * w, -1)  # [B, V, h*w, C]
        want = target[..., self.channels].float()  # [B, V, h*w, C]
        mask = valid.bool()[..., None].expand_as(want)  # [B, V, h*w, C]
        err = (pred - want).abs()
        return err[mask].sum() / mask.sum().clamp(min=1)
