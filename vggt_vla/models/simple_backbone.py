"""SimpleBackbone: graph convolution inside each modality, then attention across all tokens.

One layer:

    vision   += GCN_v(norm(vision))      over the 2-D patch grid of each camera
    language += GCN_l(norm(language))    over the chain of real (unpadded) tokens
    x = [vision | language | state | queries]
    x = TransformerBlock(x, key_mask)    full self-attention across modalities, padding masked

The graph convolution gives each token a cheap local prior (neighbouring patches, neighbouring
words) that plain attention has to learn; the attention then mixes modalities. The action
queries only take part in the attention, and their outputs are what the backbone returns.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from vggt_vla.config import SimpleBackboneConfig
from vggt_vla.models.graph_builder import GraphBuilder
from vggt_vla.models.layers import TransformerBlock, layer_index
from vggt_vla.models.tokens import FusionInputs


class GraphConv(nn.Module):
    """GCN (Kipf & Welling): P (x W) + b, P the graph's normalised propagation matrix
    (graph_builder.normalized_adjacency). Parameter names and initialisation (Glorot weight, zero
    bias) are torch_geometric's GCNConv's, so checkpoints written with it load unchanged."""

    def __init__(self, dim: int):
        super().__init__()
        self.lin = nn.utils.skip_init(nn.Linear, dim, dim, bias=False)
        # Drawn twice because GCNConv draws it twice (its Linear's init, then the conv's reset):
        # a seed gives the weights it gave with torch_geometric, and the recipes' results carry over.
        for _ in range(2):
            nn.init.xavier_uniform_(self.lin.weight)
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor, propagation: torch.Tensor) -> torch.Tensor:
        """x [G, n, D]; propagation [n, n] (one graph for all G) or [G, n, n] -> [G, n, D]."""
        return propagation @ self.lin(x) + self.bias  # [G, n, D]


class GraphConvResidual(nn.Module):
    """x + GCN(norm(x)), each of the G graphs in x [G, n, D] with its own n nodes."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.conv = GraphConv(dim)

    def forward(self, x: torch.Tensor, propagation: torch.Tensor) -> torch.Tensor:
        return x + self.conv(self.norm(x), propagation)  # [G, n, D]


class SimpleBackboneLayer(nn.Module):
    def __init__(self, dim: int, cfg: SimpleBackboneConfig):
        super().__init__()
        self.vision_conv = GraphConvResidual(dim)
        self.language_conv = GraphConvResidual(dim)
        self.block = TransformerBlock(dim, cfg.num_heads, cfg.mlp_ratio, cfg.dropout)

    def forward(self, vision, language, rest, graphs, key_mask):
        B, Nv, D = vision.shape
        per_camera = vision.reshape(-1, graphs["vision"].shape[0], D)  # [B*V, h*w, D]: one grid each
        vision = self.vision_conv(per_camera, graphs["vision"]).view(B, Nv, D)  # [B, Nv, D]
        language = self.language_conv(language, graphs["language"])  # [B, L, D]
        x = torch.cat([vision, language, rest], dim=1)  # [B, N, D]
        x = self.block(x, key_mask)  # [B, N, D]
        nv, nl = vision.shape[1], language.shape[1]
        return x[:, :nv], x[:, nv:nv + nl], x[:, nv + nl:]


class SimpleBackbone(nn.Module):
    """FusionInputs -> action-query outputs [B, Q, D]."""

    def __init__(self, dim: int, cfg: SimpleBackboneConfig):
        super().__init__()
        self.graphs = GraphBuilder(cfg.grid_connectivity)
        self.layers = nn.ModuleList(SimpleBackboneLayer(dim, cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(dim)
        self.gradient_checkpointing = False  # recompute layer activations in backward

    def forward(self, inputs: FusionInputs) -> torch.Tensor:
        return self.run(inputs)[0]  # [B, Q, D]

    def run(self, inputs: FusionInputs, vision_layer: Optional[int] = None):
        """-> (query outputs [B, Q, D], the vision tokens after layer `vision_layer` [B, Nv, D]
        or None): the second is the geometry-alignment student (models/geometry.py)."""
        vision, language = inputs.vision, inputs.language  # [B, Nv, D], [B, L, D]
        extras = [inputs.state] if inputs.state is not None else []
        rest = torch.cat(extras + [inputs.queries], dim=1)  # [B, S+Q, D]
        B = vision.shape[0]
        h, w = inputs.grid
        graphs = {
            "vision": self.graphs.vision_graph(h, w, vision.device),  # [h*w, h*w]
            "language": self.graphs.language_graph(inputs.language_mask),  # [B, L, L]
        }
        always = torch.ones(B, vision.shape[1], dtype=torch.bool, device=vision.device)  # [B, Nv]
        rest_mask = torch.ones(B, rest.shape[1], dtype=torch.bool, device=vision.device)  # [B, S+Q]
        key_mask = torch.cat([always, inputs.language_mask, rest_mask], dim=1)  # [B, N]
        tapped = None
        tap = None if vision_layer is None else layer_index(vision_layer, len(self.layers))
        for i, layer in enumerate(self.layers):
            if self.gradient_checkpointing and torch.is_grad_enabled():
                vision, language, rest = checkpoint(layer, vision, language, rest, graphs, key_mask,
                                                    use_reentrant=False)
            else:
                vision, language, rest = layer(vision, language, rest, graphs, key_mask)
            if i == tap:
                tapped = vision  # [B, Nv, D]
        num_queries = inputs.queries.shape[1]
        return self.norm(rest[:, -num_queries:]), tapped  # [B, Q, D], [B, Nv, D] or None
