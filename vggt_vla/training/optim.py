"""AdamW over the trainable parameters, with warm-up + cosine learning-rate schedule.

Weight decay applies to weight matrices only: norms, biases, embeddings, learned tokens
(queries, camera/type embeddings) are excluded, since shrinking them towards zero only hurts.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

NO_DECAY_MODULES = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.Embedding)


def _is_learned_token(leaf_name: str) -> bool:
    """Free-standing learned vectors: action_queries, camera_embed, step_embed, camera_token, ..."""
    return leaf_name.endswith(("_embed", "_token", "queries", "pos_embed"))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split trainable parameters into decayed and non-decayed groups (frozen ones are left out)."""
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        is_norm = isinstance(module, NO_DECAY_MODULES) or "RMSNorm" in type(module).__name__
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:  # frozen, or tied and already grouped
                continue
            seen.add(id(p))
            exempt = is_norm or name.endswith("bias") or p.ndim < 2 or _is_learned_token(name)
            (no_decay if exempt else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.95)) -> torch.optim.AdamW:
    groups = param_groups(model, weight_decay)
    if not any(g["params"] for g in groups):
        raise ValueError("the model has no trainable parameters: check the freeze_* settings")
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def warmup_cosine(optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.1):
    """Linear warm-up from 0 to the base lr, then cosine decay to min_lr_ratio * base lr."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
