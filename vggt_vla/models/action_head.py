"""Action heads: action-query outputs [B, Q, D] -> a chunk of future actions [B, T, A].

Both heads share one interface:
    head.loss(cond, actions, pad_mask) -> (loss, metrics)   pad_mask [B, T] True = padded step
    head.predict(cond, generator=None, noise=None) -> actions [B, T, A]   (noise: flow matching's start)

* L1ActionHead: an MLP regresses the whole chunk at once, trained with L1 (as OpenVLA-OFT and
  VLA-Adapter do); one forward at inference.
* FlowMatchingHead: a small transformer denoiser conditioned on the queries and the flow time,
  trained with the rectified-flow objective; N Euler steps at inference. Here t=0 is pure noise
  and t=1 the data: x_t = t * actions + (1 - t) * noise, velocity target = actions - noise.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn

from vggt_vla.config import ActionHeadConfig
from vggt_vla.models.layers import TransformerBlock


def masked_mean(values: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
    """Mean of values [B, T, A] over the steps that are not padding (pad_mask [B, T])."""
    keep = (~pad_mask).unsqueeze(-1).to(values.dtype)  # [B, T, 1]
    return (values * keep).sum() / (keep.sum() * values.shape[-1]).clamp_min(1.0)


def masked_error_sums(pred: torch.Tensor, target: torch.Tensor, pad_mask: torch.Tensor):
    """Sums over the batch of |pred - target| and (pred - target)^2 on real (unpadded) steps, and
    the number of real steps: [T, A], [T, A], [T, 1]. What every chunk error here is made of (the
    training log's per-dimension L1, validation and offline evaluation via ChunkErrors)."""
    keep = (~pad_mask).unsqueeze(-1).to(pred.dtype)  # [B, T, 1]
    err = (pred - target) * keep  # [B, T, A]
    return err.abs().sum(0), (err ** 2).sum(0), keep.sum(0)  # [T, A], [T, A], [T, 1]


def per_dim_l1(pred: torch.Tensor, actions: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
    """L1 per action dimension over non-padded steps -> [A] (detached, for logging)."""
    abs_sum, _, count = masked_error_sums(pred.detach(), actions, pad_mask)  # [T, A], _, [T, 1]
    return abs_sum.sum(0) / count.sum().clamp_min(1.0)  # [A]


class L1ActionHead(nn.Module):
    def __init__(self, cfg: ActionHeadConfig, dim: int, num_queries: int):
        super().__init__()
        self.cfg = cfg
        self.query_proj = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, cfg.query_proj_dim))
        flat = num_queries * cfg.query_proj_dim
        layers = [nn.Linear(flat, cfg.hidden_dim), nn.GELU()]
        for _ in range(cfg.num_layers - 1):
            layers += [nn.Linear(cfg.hidden_dim, cfg.hidden_dim), nn.GELU()]
        layers.append(nn.Linear(cfg.hidden_dim, cfg.chunk_size * cfg.action_dim))
        self.mlp = nn.Sequential(*layers)

    def predict(self, cond: torch.Tensor, generator: Optional[torch.Generator] = None,
                noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """cond [B, Q, D] -> chunk [B, T, A]; generator and noise: unused (a deterministic head)."""
        B = cond.shape[0]
        flat = self.query_proj(cond).reshape(B, -1)  # [B, Q*P]
        return self.mlp(flat).view(B, self.cfg.chunk_size, self.cfg.action_dim)  # [B, T, A]

    def loss(self, cond, actions, pad_mask):
        pred = self.predict(cond)  # [B, T, A]
        loss = masked_mean((pred - actions).abs(), pad_mask)
        return loss, {"l1": loss.detach(), "l1_per_dim": per_dim_l1(pred, actions, pad_mask)}


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of flow times t [B] in [0, 1] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None, :]  # [B, half]; x1000 spreads [0, 1] out
    return torch.cat([angles.sin(), angles.cos()], dim=1)  # [B, dim]


class FlowMatchingHead(nn.Module):
    def __init__(self, cfg: ActionHeadConfig, dim: int, num_queries: int):
        super().__init__()
        self.cfg = cfg
        width = cfg.hidden_dim
        self.cond_proj = nn.Linear(dim, width)
        self.action_in = nn.Linear(cfg.action_dim, width)
        self.step_embed = nn.Parameter(torch.randn(cfg.chunk_size, width) * 0.02)  # [T, W]
        self.time_mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(TransformerBlock(width, cfg.denoiser_heads) for _ in range(cfg.denoiser_depth))
        self.norm = nn.LayerNorm(width)
        self.action_out = nn.Linear(width, cfg.action_dim)

    def velocity(self, cond: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """cond [B, Q, D], noisy actions x_t [B, T, A], times t [B] -> velocity [B, T, A]."""
        time = self.time_mlp(timestep_embedding(t, self.step_embed.shape[1]))  # [B, W]
        acts = self.action_in(x_t) + self.step_embed + time[:, None, :]  # [B, T, W]
        x = torch.cat([self.cond_proj(cond), acts], dim=1)  # [B, Q+T, W]
        for block in self.blocks:
            x = block(x)
        return self.action_out(self.norm(x[:, -self.cfg.chunk_size:]))  # [B, T, A]

    def loss(self, cond, actions, pad_mask):
        B = actions.shape[0]
        noise = torch.randn_like(actions)  # [B, T, A]
        t = torch.rand(B, device=actions.device)  # [B]
        x_t = t[:, None, None] * actions + (1 - t[:, None, None]) * noise  # [B, T, A]
        pred = self.velocity(cond, x_t, t)  # [B, T, A]
        loss = masked_mean((pred - (actions - noise)) ** 2, pad_mask)
        return loss, {"flow_mse": loss.detach()}

    def initial_noise(self, batch_size: int, generator: Optional[torch.Generator] = None, device=None) -> torch.Tensor:
        """The sample's starting point at t = 0, pure noise [B, T, A], drawn from `generator`."""
        shape = (batch_size, self.cfg.chunk_size, self.cfg.action_dim)
        x = torch.randn(shape, generator=generator, device=device if generator is None else generator.device)
        return x.to(device)  # [B, T, A]

    @torch.no_grad()
    def predict(self, cond: torch.Tensor, generator: Optional[torch.Generator] = None,
                noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """cond [B, Q, D] -> chunk [B, T, A], integrated from `noise` [B, T, A] (None: initial_noise
        drawn from generator)."""
        B = cond.shape[0]
        x = self.initial_noise(B, generator, cond.device) if noise is None else noise  # [B, T, A] at t = 0
        steps = self.cfg.num_inference_steps
        for i in range(steps):
            t = torch.full((B,), i / steps, device=cond.device)  # [B]
            x = x + self.velocity(cond, x, t) / steps  # Euler step towards t = 1
        return x  # [B, T, A]


def build_action_head(cfg: ActionHeadConfig, dim: int, num_queries: int) -> nn.Module:
    if cfg.type == "l1":
        return L1ActionHead(cfg, dim, num_queries)
    if cfg.type == "flow_matching":
        return FlowMatchingHead(cfg, dim, num_queries)
    raise ValueError(f"action_head.type={cfg.type!r}: choose 'l1' or 'flow_matching'")

