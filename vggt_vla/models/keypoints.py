"""SpatialKeypoints: where on each camera's patch grid do learned features peak? -> tokens for the head.

    score    = Linear(norm(vision tokens))                      [B, V, h*w, K]
    weights  = softmax over the h*w patches of score / temperature
    keypoint = sum over patches of weights * patch centre (x, y in [-1, 1])    [B, V, K, 2]
    token    = Linear(keypoints of one camera)                  [B, V, D]

The spatial soft-argmax of Levine et al. (2016), the readout of most visuomotor policies trained
from few demonstrations (robomimic, Diffusion Policy). An action such as "move towards the red
cube" depends on where something is, and attention has to discover that the hard way: at first
a query averages over every patch, so the position of one small object barely reaches the head,
and the head in turn gives attention no gradient to sharpen on it. A soft-argmax turns "this
feature peaks here" into coordinates in one differentiable step, so the head gets the position
of whatever a channel responds to from the first step of training. Computed on the vision tokens
after the instruction's FiLM (model.language_film), a channel can respond to "the named object".
The tokens are appended to the action-query outputs that the action head reads (VLAModel calls
`keypoints`, then `to_token`, so that the goal head can read the coordinates themselves).
"""

from __future__ import annotations

import torch
import torch.nn as nn


def patch_centres(h: int, w: int, device=None) -> torch.Tensor:
    """Centres of an h x w patch grid in [-1, 1] (x right, y down), row-major -> [h*w, 2]."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h * 2 - 1  # [h]
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w * 2 - 1  # [w]
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")  # [h, w] each
    return torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1)  # [h*w, 2]


class SpatialKeypoints(nn.Module):
    def __init__(self, dim: int, num_keypoints: int):
        super().__init__()
        self.num_keypoints = num_keypoints
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Linear(dim, num_keypoints)
        self.log_temperature = nn.Parameter(torch.zeros(()))  # learned sharpness of the softmax
        self.to_token = nn.Linear(2 * num_keypoints, dim)

    def keypoints(self, vision: torch.Tensor, grid: tuple[int, int], num_cameras: int) -> torch.Tensor:
        """vision tokens [B, V*h*w, D] -> keypoints [B, V, K, 2] (x, y in [-1, 1])."""
        B, _, D = vision.shape
        h, w = grid
        score = self.score(self.norm(vision)).view(B, num_cameras, h * w, -1)  # [B, V, h*w, K]
        weights = torch.softmax(score.float() / self.log_temperature.exp(), dim=2)  # [B, V, h*w, K]
        centres = patch_centres(h, w, vision.device)  # [h*w, 2]
        return torch.einsum("bvnk,nc->bvkc", weights, centres).to(vision.dtype)  # [B, V, K, 2]
