import torch

from vggt_vla.models.graph_builder import GraphBuilder, batch_edges, chain_edges, grid_edges


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


def test_batched_graphs_are_disjoint_copies():
    e = grid_edges(2, 2, 4)
    b = batch_edges(e, 3, 4)
    assert b.shape == (2, 3 * e.shape[1])
    assert torch.equal(b[:, e.shape[1]:2 * e.shape[1]], e + 4)
    assert torch.equal(b[0] // 4, b[1] // 4)  # no edge crosses graphs


def test_language_graph_only_links_real_tokens():
    mask = torch.tensor([[True, True, True, True, False, False],
                         [True, True, False, False, False, False]])
    edge_index, weight = GraphBuilder().language_graph(mask)
    live = edge_index[:, weight > 0]
    # chains of 4 and 2 real tokens: 3 + 1 undirected edges, both directions.
    assert live.shape[1] == 2 * (3 + 1)
    assert mask.reshape(-1)[live].all()


def test_graphs_are_cached_per_shape():
    builder = GraphBuilder(4)
    a = builder.vision_graph(4, 14, 14, "cpu")
    assert builder.vision_graph(4, 14, 14, "cpu") is a
    assert builder.vision_graph(2, 14, 14, "cpu") is not a
    m = torch.ones(2, 5, dtype=torch.bool)
    assert builder.language_graph(m)[0] is builder.language_graph(m)[0]
