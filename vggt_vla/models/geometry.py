"""VGGT as a training-time geometry teacher (model.geometry_alignment), after Spatial Forcing.

    student: the backbone's vision tokens after layer L          [B, V*h*w, D]
             -> projector MLP (D -> hidden -> C_t)                [B, V, h, w, C_t]
             -> bilinear resampling to the teacher's patch grid   [B, V, h_t*w_t, C_t]
    teacher: the frozen VGGT aggregator on the same camera frames; the chosen layers'
             [frame | global] patch tokens, concatenated           [B, V, h_t*w_t, C_t]
    loss   = weight * mean over cameras and patches of (1 - cos(student, teacher))

Only training builds the teacher (VLAModel(..., geometry_teacher=True), which the trainer asks
for). Policy.from_pretrained therefore constructs no VGGT module, a checkpoint holds no teacher
weights (the teacher is a pretrained part, reloaded from its source on resume), and
predict_action_chunk cannot reach it. GeometryTeacher.forward_count counts the teacher forwards
of this process: the tests use it to show inference runs none and a warm cache runs none.
The projector is small and trainable, so it is saved (exact resume) and built at inference too,
where nothing calls it.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from vggt_vla.config import VGGT_1B_WIDTH, GeometryAlignmentConfig
from vggt_vla.models.layers import freeze, layer_index
from vggt_vla.models.pretrained import train_keeping_frozen
from vggt_vla.models.vggt_adapter import build_aggregator, resize_frames


def teacher_width(cfg: GeometryAlignmentConfig) -> int:
    """C_t: the width of the target, 2C per chosen layer (without building the teacher)."""
    return 2 * cfg.aggregator_kwargs.get("embed_dim", VGGT_1B_WIDTH) * len(cfg.feature_layers)


class GeometryTeacher(nn.Module):
    """Camera images [B, V, 3, H, W] in [0, 1] -> frozen VGGT features [B, V, h_t*w_t, C_t]."""

    forward_count = 0  # aggregator forwards in this process, over every teacher instance

    def __init__(self, cfg: GeometryAlignmentConfig, random_weights: bool = False):
        super().__init__()
        self.cfg = cfg
        self.aggregator = build_aggregator(cfg.checkpoint, cfg.aggregator_kwargs, random_weights)
        freeze(self.aggregator)
        self.layers = [layer_index(i, self.aggregator.depth) for i in cfg.feature_layers]
        self.grid = (cfg.image_size // self.aggregator.patch_size,) * 2  # (h_t, w_t)
        # Optional store of teacher features by dataset frame, attached by the trainer
        # (training/feature_cache.py): fetch(frame_ids, compute, device) -> features.
        self.feature_cache = None

    def train(self, mode: bool = True):
        return train_keeping_frozen(self, mode, self.aggregator)

    def _run(self, images: torch.Tensor) -> torch.Tensor:
        GeometryTeacher.forward_count += 1
        frames = resize_frames(images, self.cfg.image_size)  # [m, V, 3, S, S]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=images.device.type == "cuda"):
            layers, start = self.aggregator(frames, self.layers)  # k x [m, V, P, 2C]
        return torch.cat(layers, dim=-1)[:, :, start:]  # [m, V, h_t*w_t, C_t]

    @torch.no_grad()
    def forward(self, images: torch.Tensor, frame_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        """frame_ids [B] (dataset rows), optional: lets the feature cache serve known frames."""
        if self.feature_cache is None or frame_ids is None:
            return self._run(images).float()  # [B, V, h_t*w_t, C_t]
        feats = self.feature_cache.fetch(frame_ids, lambda miss: self._run(images[miss]), images.device)
        return feats.float()  # [B, V, h_t*w_t, C_t]


def resample_to_grid(tokens: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """[B, V*h*w, C] on grid (h, w), camera by camera -> [B, V, h_t*w_t, C] on grid `size`."""
    B, N, C = tokens.shape
    h, w = grid
    V = N // (h * w)
    x = tokens.reshape(B * V, h, w, C).permute(0, 3, 1, 2)  # [B*V, C, h, w]
    if (h, w) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)  # [B*V, C, h_t, w_t]
    return x.flatten(2).transpose(1, 2).reshape(B, V, -1, C)  # [B, V, h_t*w_t, C]


def cosine_alignment_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity, averaged over cameras and patches; both [B, V, P, C]."""
    return (1 - F.cosine_similarity(student.float(), teacher.float(), dim=-1)).mean()


class GeometryAlignment(nn.Module):
    """The trainable projector, plus the frozen teacher when built for training."""

    def __init__(self, cfg: GeometryAlignmentConfig, dim: int, teacher: bool, random_weights: bool = False):
        super().__init__()
        self.cfg = cfg
        width = teacher_width(cfg)
        self.projector = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, cfg.projector_dim), nn.GELU(),
                                       nn.Linear(cfg.projector_dim, width))
        self.teacher = GeometryTeacher(cfg, random_weights) if teacher else None

    def loss(self, student: torch.Tensor, grid: tuple[int, int], images: torch.Tensor,
             frame_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        """student [B, V*h*w, D] on grid (h, w); images [B, V, 3, H, W] -> unweighted scalar loss."""
        if self.teacher is None:
            raise RuntimeError("this model was built without its geometry teacher (inference build); "
                               "build VLAModel(cfg, geometry_teacher=True) to train with alignment")
        target = self.teacher(images, frame_ids)  # [B, V, h_t*w_t, C_t]
        projected = self.projector(student)  # [B, V*h*w, C_t]
        predicted = resample_to_grid(projected, grid, self.teacher.grid)  # [B, V, h_t*w_t, C_t]
        return cosine_alignment_loss(predicted, target)
