"""Graphs over tokens, as torch_geometric ``edge_index`` tensors ([2, E], row 0 = source).

* vision: a 2-D grid over each camera's patches, 4- or 8-connected;
* language: a bidirectional chain linking consecutive real (unpadded) tokens.

A batch is one big disconnected graph: node ``i`` of sample/camera ``g`` has index
``g * nodes_per_graph + i``. Edge sets depend only on shapes, so they are built once per shape
and cached; the language padding enters as per-edge weights (0 on an edge that touches a padded
token), computed with tensor ops, so nothing loops over samples in Python and nothing waits on
the device.

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


def batch_edges(edges: torch.Tensor, num_graphs: int, nodes_per_graph: int) -> torch.Tensor:
    """Repeat one graph's edges for `num_graphs` disjoint copies -> [2, num_graphs * E]."""
    offsets = torch.arange(num_graphs, device=edges.device) * nodes_per_graph  # [G]
    return (edges[:, None, :] + offsets[None, :, None]).reshape(2, -1)  # [2, G*E]


class GraphBuilder:
    """Caches batched edge_index tensors per (shape, device)."""

    def __init__(self, grid_connectivity: int = 4):
        self.grid_connectivity = grid_connectivity
        self._cache: dict[tuple, torch.Tensor] = {}

    def _cached(self, key: tuple, make) -> torch.Tensor:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def vision_graph(self, num_images: int, h: int, w: int, device) -> torch.Tensor:
        """Grid graph for `num_images` (= B*V) cameras of h x w patches -> edge_index [2, E]."""
        key = ("grid", num_images, h, w, str(device))
        return self._cached(key, lambda: batch_edges(
            grid_edges(h, w, self.grid_connectivity).to(device), num_images, h * w))

    def language_graph(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Chain graph over the real tokens of each sentence.

        mask [B, L] bool (True = real token) -> (edge_index [2, E], edge_weight [E] float).
        Edges touching a padded token get weight 0, so padding never reaches a real token.
        """
        B, L = mask.shape
        key = ("chain", B, L, str(mask.device))
        edge_index = self._cached(key, lambda: batch_edges(chain_edges(L).to(mask.device), B, L))
        flat = mask.reshape(-1)  # [B*L]
        edge_weight = (flat[edge_index[0]] & flat[edge_index[1]]).float()  # [E]
        return edge_index, edge_weight


if __name__ == "__main__":
    for conn in (4, 8):
        print(f"14x14 grid, {conn}-connectivity: {grid_edges(14, 14, conn).shape[1]} directed edges")
    mask = torch.tensor([[True] * 5 + [False] * 3])
    _, weight = GraphBuilder().language_graph(mask)
    print(f"chain over 5 real tokens of 8: {int(weight.sum())} directed edges")
