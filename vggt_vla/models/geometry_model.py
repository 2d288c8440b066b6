"""A VGGT trained here: the ported aggregator with two light heads, learning scene geometry from the
depth and camera parameters recorded with the demonstrations (scripts/train_geometry_model.py).

    images [B, S, 3, R, R]  (the cameras of one moment; frame 0 is the world)
      -> Aggregator (a preset of the weight-exact port, e.g. vggt_small)  last layer [B, S, P, 2C]
      -> patch tokens -> LayerNorm + Linear(2C, p*p*4), unpatchified      [B, S, R, R, 4]
             + a learned map per pixel (one for frame 0, one for the others)
             x, y, z in frame 0's camera frame, and depth (softplus)
      -> camera token -> MLP(2C -> 7)                                      [B, S, 7]
             camera_s-from-camera_0 translation and quaternion (w, x, y, z)

The checkpoint it saves holds `aggregator.*` (as VGGT-1B's does) and `heads.*` (which the policy's
loaders ignore), so model.geometry_alignment.checkpoint and model.vggt.checkpoint load its trunk
exactly as they load VGGT-1B. The heads are simpler than VGGT's DPT and camera heads: they exist
to give the trunk a geometric training signal, and to report its accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from vggt_vla.models.vggt import vggt_1b


CONFIG_FILE = "config.json"  # beside the weights: the aggregator_kwargs, the data, the accuracy
WEIGHTS_FILE = "model.safetensors"


def checkpoint_kwargs(checkpoint: str) -> Optional[dict]:
    """The aggregator_kwargs a local geometry-model checkpoint was trained with, or None when
    `checkpoint` is not one (a hub id, another weights file)."""
    path = Path(checkpoint).expanduser()
    info = path / CONFIG_FILE if path.is_dir() else path.with_name(CONFIG_FILE)
    if not info.is_file():
        return None
    try:
        return json.loads(info.read_text()).get("aggregator_kwargs")
    except (OSError, ValueError):
        return None


class GeometryModel(nn.Module):
    def __init__(self, aggregator_kwargs: dict):
        super().__init__()
        self.aggregator = vggt_1b(**aggregator_kwargs)
        width = 2 * aggregator_kwargs.get("embed_dim", 1024)
        p = self.aggregator.patch_size
        self.heads = nn.ModuleDict({
            "pixels": nn.Sequential(nn.LayerNorm(width), nn.Linear(width, p * p * 4)),
            "pose": nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Linear(width, 7)),
        })
        # A learned point/depth map per pixel, for frame 0 and for the other frames (VGGT's own split
        # of its camera tokens), that the tokens correct. With a bare conv patchifier the tokens
        # carry position only through RoPE, and without this map a linear head, which must rebuild
        # a fixed camera's whole depth layout from them, scored below the training frames' mean
        # map (docs/experiments/2026-12-03-geometry.md); the DINOv2 patchifier was measured with it.
        size = aggregator_kwargs.get("img_size", 518)
        self.heads["pixel_prior"] = nn.ParameterDict({"maps": nn.Parameter(torch.zeros(2, size, size, 4))})

    @torch.no_grad()
    def init_pixel_prior(self, depth: torch.Tensor, points: torch.Tensor) -> None:
        """Start the per-pixel maps at mean maps of training frames: depth [S, R, R] (metres) and
        points [S, R, R, 3]; frame 0's for frame 0, the others' average for the others."""
        maps = self.heads["pixel_prior"]["maps"]  # [2, R, R, 4]
        for i, frames in enumerate((slice(0, 1), slice(1, None))):
            d = depth[frames].mean(0).clamp(min=1e-3)  # [R, R]
            maps[i, ..., :3] = points[frames].mean(0)
            maps[i, ..., 3] = d + torch.log(-torch.expm1(-d))  # softplus^-1(d)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        B, S, _, H, W = images.shape
        p = self.aggregator.patch_size
        (tokens,), start = self.aggregator(images, [-1])  # [B, S, P, 2C]
        h, w = H // p, W // p
        pix = self.heads["pixels"](tokens[:, :, start:])  # [B, S, h*w, p*p*4]
        pix = pix.reshape(B, S, h, w, p, p, 4).permute(0, 1, 2, 4, 3, 5, 6).reshape(B, S, H, W, 4)
        prior = self.heads["pixel_prior"]["maps"]  # [2, R, R, 4]
        pix = pix + torch.cat([prior[:1], prior[1:].expand(S - 1, -1, -1, -1)])  # [B, S, R, R, 4]
        pose = self.heads["pose"](tokens[:, :, 0])  # [B, S, 7]
        quat = F.normalize(pose[..., 3:], dim=-1)
        return {"points": pix[..., :3], "depth": F.softplus(pix[..., 3]), "pose": torch.cat([pose[..., :3], quat], -1)}


def geometry_losses(pred: dict, batch: dict) -> dict[str, torch.Tensor]:
    """L1 losses (metres; the quaternion's components) over the pixels with depth, and the pose of
    every frame but the first (always the identity)."""
    valid = batch["valid"]  # [B, S, R, R]
    n = valid.sum().clamp(min=1)
    depth = ((pred["depth"] - batch["depth"]).abs() * valid).sum() / n
    points = ((pred["points"] - batch["points"]).abs().sum(-1) * valid).sum() / (3 * n)
    target_q = batch["pose"][:, 1:, 3:]
    q = pred["pose"][:, 1:, 3:]
    q = torch.where((q * target_q).sum(-1, keepdim=True) < 0, -q, q)  # q and -q are one rotation
    pose = (pred["pose"][:, 1:, :3] - batch["pose"][:, 1:, :3]).abs().mean() + (q - target_q).abs().mean()
    return {"depth": depth, "points": points, "pose": pose}


@torch.no_grad()
def geometry_metrics(pred: dict, batch: dict) -> dict[str, float]:
    """Sums for held-out accuracy: depth AbsRel, point error (cm), pose translation (cm) and rotation
    (degrees) errors, with their counts (sum / count gives the mean)."""
    valid = batch["valid"]
    d = batch["depth"]
    absrel = ((pred["depth"] - d).abs() / d.clamp(min=1e-6))[valid]
    point_cm = (pred["points"] - batch["points"]).norm(dim=-1)[valid] * 100
    t_cm = (pred["pose"][:, 1:, :3] - batch["pose"][:, 1:, :3]).norm(dim=-1) * 100
    dot = (pred["pose"][:, 1:, 3:] * batch["pose"][:, 1:, 3:]).sum(-1).abs().clamp(max=1)
    rot_deg = torch.rad2deg(2 * torch.acos(dot))
    return {"absrel": absrel.sum().item(), "point_cm": point_cm.sum().item(), "pixels": int(valid.sum()),
            "pose_t_cm": t_cm.sum().item(), "pose_rot_deg": rot_deg.sum().item(), "poses": t_cm.numel()}
