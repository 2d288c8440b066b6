"""Action-chunk errors accumulated over batches: L1 and MSE per action dimension and per
horizon step, counting only real (unpadded) steps."""

from __future__ import annotations

import torch

from vggt_vla.models.action_head import masked_error_sums


class ChunkErrors:
    """Running sums of |pred - target| and (pred - target)^2 over real steps."""

    def __init__(self):
        self.abs_sum = self.sq_sum = None  # [T, A]
        self.count = None  # [T, 1]

    def update(self, pred: torch.Tensor, target: torch.Tensor, pad_mask: torch.Tensor) -> None:
        """pred, target [B, T, A]; pad_mask [B, T] True = padded."""
        abs_sum, sq_sum, count = masked_error_sums(pred, target, pad_mask)  # [T, A], [T, A], [T, 1]
        if self.abs_sum is None:
            self.abs_sum, self.sq_sum, self.count = abs_sum, sq_sum, count
        else:
            self.abs_sum += abs_sum
            self.sq_sum += sq_sum
            self.count += count

    def summary(self) -> dict[str, list[float] | float]:
        if self.abs_sum is None:
            raise ValueError("no batches were evaluated")
        steps = self.count.clamp_min(1)  # [T, 1]
        total = self.count.sum().clamp_min(1)
        return {
            "l1": (self.abs_sum.sum() / (total * self.abs_sum.shape[1])).item(),
            "mse": (self.sq_sum.sum() / (total * self.sq_sum.shape[1])).item(),
            "l1_per_dim": (self.abs_sum.sum(0) / total).tolist(),  # [A]
            "mse_per_dim": (self.sq_sum.sum(0) / total).tolist(),  # [A]
            "l1_per_step": (self.abs_sum.mean(1, keepdim=True) / steps).squeeze(1).tolist(),  # [T]
            "mse_per_step": (self.sq_sum.mean(1, keepdim=True) / steps).squeeze(1).tolist(),  # [T]
            "num_steps": int(self.count.sum().item()),
        }
