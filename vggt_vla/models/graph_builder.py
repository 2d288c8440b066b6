"""Graphs over tokens, and the dense propagation matrices the graph convolution multiplies by.

* vision: a 2-D grid over each camera's patches, 4- or 8-connected;
* language: a bidirectional chain linking consecutive real (unpadded) tokens.

Edge lists ([2, E], both directions of every edge) say which tokens are linked; the convolution
(models/simple_backbone.py) uses them as GCN's normalised matrix D^-1/2 (A + I) D^-1/2, one small
dense matrix per graph. The graphs are small (64 patches, ~30 tokens), so a batched matmul is
cheaper than message passing over an edge list, and exports to ONNX as a plain MatMul.

Run ``python -m vggt_vla.models.graph_builder`` to print edge counts for a 14x14 grid.
"""

from __future__ import annotations

import functools

import torch

GRID_OFFSETS = {
    4: [(0, 1), (1, 0)],  # right, down (each also added reversed)
    8: [(0, 1), (1, 0), (1, 1), (1, -1)],  # + the two diagonals
}


@functools.lru_cache(maxsize=64)
def grid_edges(h: int, w: int, connectivity: int = 4) -> torch.Tensor:
    """Directed edges (both directions) of an h x w patch grid -> [2, E] long, on CPU."""
    if connectivity not in GRID_OFFSETS:
        raise ValueError(f"grid connectivity must be 4 or 8, got {connectivity}")
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")  # [h, w]
    src, dst = [], []
    for dr, dc in GRID_OFFSETS[connectivity]:
        r2, c2 = rows + dr, cols + dc
        ok = (r2 >= 0) & (r2 < h) & (c2 >= 0) & (c2 < w)  # neighbour inside the grid
        a = (rows * w + cols)[ok]
        b = (r2 * w + c2)[ok]
        src += [a, b]
        dst += [b, a]
    return torch.stack([torch.cat(src), torch.cat(dst)])  # [2, E]


def chain_edges(length: int) -> torch.Tensor:
    """Directed edges (both directions) of a chain 0-1-...-(length-1) -> [2, 2*(length-1)]."""
    a = torch.arange(max(length - 1, 0))
    return torch.stack([torch.cat([a, a + 1]), torch.cat([a + 1, a])])  # [2, E]


def normalized_adjacency(adjacency: torch.Tensor) -> torch.Tensor:
    """GCN's propagation matrix D^-1/2 (A + I) D^-1/2 (Kipf & Welling) of symmetric adjacency
    matrices [..., n, n] (edge weights; 0 = no edge) -> [..., n, n]. D is the degree with the
    self-loop, so a node whose every edge has weight 0 (a padded token) keeps only itself."""
    n = adjacency.shape[-1]
    a = adjacency + torch.eye(n, dtype=adjacency.dtype, device=adjacency.device)  # [..., n, n]
    inv_sqrt = a.sum(-1).rsqrt()  # [..., n]
    return inv_sqrt[..., :, None] * a * inv_sqrt[..., None, :]  # [..., n, n]


def dense_adjacency(edges: torch.Tensor, n: int) -> torch.Tensor:
    """[2, E] edge list of one graph -> its 0/1 adjacency matrix [n, n] (float)."""
    a = torch.zeros(n, n)
    a[edges[0], edges[1]] = 1.0
    return a


class GraphBuilder:
    """The propagation matrices of the backbone's graphs: one [n, n] matrix per grid shape (cached:
    it depends on the shape only) and one [L, L] per sentence (from its padding mask, each batch)."""

    def __init__(self, grid_connectivity: int = 4):
        self.grid_connectivity = grid_connectivity
        self._cache: dict[tuple, torch.Tensor] = {}

    def _cached(self, key: tuple, make) -> torch.Tensor:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def vision_graph(self, h: int, w: int, device) -> torch.Tensor:
        """The h x w patch grid of one camera -> its propagation matrix [h*w, h*w]."""
        return self._cached(("grid", h, w, str(device)), lambda: normalized_adjacency(
            dense_adjacency(grid_edges(h, w, self.grid_connectivity), h * w)).to(device))

    def language_graph(self, mask: torch.Tensor) -> torch.Tensor:
        """Chain graph over the real tokens of each sentence: mask [B, L] bool (True = real token)
        -> propagation matrices [B, L, L]. Links touching a padded token have weight 0, so padding
        never reaches a real token (computed with tensor ops: no loop over samples, no host sync)."""
        L = mask.shape[1]
        chain = self._cached(("chain", L, str(mask.device)),
                             lambda: dense_adjacency(chain_edges(L), L).to(mask.device))  # [L, L]
        real = mask.float()  # [B, L]
        return normalized_adjacency(chain * real[:, :, None] * real[:, None, :])  # [B, L, L]


if __name__ == "__main__":
    for conn in (4, 8):
        print(f"14x14 grid, {conn}-connectivity: {grid_edges(14, 14, conn).shape[1]} directed edges")
    mask = torch.tensor([[True] * 5 + [False] * 3])
    links = int((GraphBuilder().language_graph(mask)[0] > 0).sum()) - 8  # minus the 8 self-loops
    print(f"chain over 5 real tokens of 8: {links} directed edges")
