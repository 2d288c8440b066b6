import torch

import math

from vggt_vla.models.graph_builder import GraphBuilder, chain_edges, grid_edges, normalized_adjacency
from vggt_vla.models.simple_backbone import GraphConv


def undirected(edges: torch.Tensor) -> set:
    return {tuple(sorted(e)) for e in edges.t().tolist()}


def test_grid_14x14_edge_counts():
    # 4-connectivity: 14 rows x 13 horizontal + 13 x 14 vertical = 364 undirected edges.
    e4 = grid_edges(14, 14, 4)
    assert e4.shape == (2, 2 * 364)
    assert len(undirected(e4)) == 364
    # 8-connectivity adds 2 x 13 x 13 = 338 diagonals.
    e8 = grid_edges(14, 14, 8)
    assert e8.shape == (2, 2 * (364 + 338))
    assert len(undirected(e8)) == 702


def test_grid_neighbours_and_symmetry():
    e = grid_edges(3, 4, 4)
    pairs = set(map(tuple, e.t().tolist()))
    assert all((b, a) in pairs for a, b in pairs)  # bidirectional
    assert (0, 1) in pairs and (0, 4) in pairs and (0, 5) not in pairs
    assert (3, 4) not in pairs  # end of row 0 is not linked to the start of row 1
    degree = torch.bincount(e[0], minlength=12)
    assert degree[0] == 2 and degree[5] == 4  # corner and interior
    assert (0, 5) in set(map(tuple, grid_edges(3, 4, 8).t().tolist()))


def test_chain_edge_counts():
    assert chain_edges(7).shape == (2, 12)
    assert chain_edges(1).shape == (2, 0)


def test_propagation_matrix_of_a_three_node_path_by_hand():
    """0 - 1 - 2 with self-loops: degrees 2, 3, 2, so P[0, 1] = 1 / sqrt(2 * 3), P[1, 1] = 1 / 3."""
    a = torch.tensor([[0.0, 1, 0], [1, 0, 1], [0, 1, 0]])
    p = normalized_adjacency(a)
    assert math.isclose(p[0, 1], 1 / math.sqrt(6), rel_tol=1e-6) and math.isclose(p[1, 1], 1 / 3, rel_tol=1e-6)
    assert math.isclose(p[0, 0], 1 / 2, rel_tol=1e-6) and p[0, 2] == 0 and torch.equal(p, p.t())


def test_vision_graph_is_the_grid_with_self_loops():
    p = GraphBuilder(4).vision_graph(3, 4, "cpu")
    assert p.shape == (12, 12)
    links = {(i, j) for i, j in (p > 0).nonzero().tolist() if i != j}
    assert links == set(map(tuple, grid_edges(3, 4, 4).t().tolist()))
    assert math.isclose(p[0, 1], 1 / math.sqrt(3 * 4), rel_tol=1e-6)  # a corner (2 links) and an edge node (3)


def test_language_graph_only_links_real_tokens():
    mask = torch.tensor([[True, True, True, True, False, False],
                         [True, True, False, False, False, False]])
    p = GraphBuilder().language_graph(mask)  # [2, 6, 6]
    real = mask.float()
    assert (p * (1 - real[:, :, None] * real[:, None, :]) * (1 - torch.eye(6))).abs().max() == 0  # no padded link
    assert torch.equal(p[0, 5], torch.eye(6)[5]) and torch.allclose(p[1, 1, :2], torch.tensor([0.5, 0.5]))
    assert int((p[0] > 0).sum()) - 6 == 2 * 3  # chain of 4 real tokens: 3 links, both directions


def test_graph_conv_is_the_propagation_of_the_projected_features():
    """GraphConv: P (x W) + b, checked against the sum over neighbours written out."""
    torch.manual_seed(0)
    conv = GraphConv(4)
    conv.bias.data.normal_()
    x = torch.randn(2, 3, 4)  # two graphs of the three-node path
    p = normalized_adjacency(torch.tensor([[0.0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    xw = x @ conv.lin.weight.t()  # [2, 3, 4]
    expected = torch.stack([sum(p[i, j] * xw[:, j] for j in range(3)) for i in range(3)], dim=1) + conv.bias
    assert torch.allclose(conv(x, p), expected, atol=1e-6)
    assert sorted(conv.state_dict()) == ["bias", "lin.weight"]  # torch_geometric GCNConv's names


def test_grid_graphs_are_cached_per_shape():
    builder = GraphBuilder(4)
    a = builder.vision_graph(14, 14, "cpu")
    assert builder.vision_graph(14, 14, "cpu") is a
    assert builder.vision_graph(7, 7, "cpu") is not a
