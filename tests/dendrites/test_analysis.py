"""The subnetwork analysis on tiny networks where the answer is known."""

from __future__ import annotations

import pytest
import torch

from dendrites.analysis import (
    analyse_subnetworks,
    layer_winners,
    mean_off_diagonal,
    overlap_matrix,
    subnetwork_report,
)
from dendrites.models import MLP, DendriticMLP


def _gated_network() -> DendriticMLP:
    """4 hidden units, kWTA k=2, 2 segments over a 2-d context. Every unit's feed-forward output
    is 1; context 0 turns units 0 and 1 on (gate ~1) and 2, 3 off (gate ~0); context 1 the reverse."""
    net = DendriticMLP(3, 2, hidden_sizes=[4], num_segments=2, context_dim=2, kw_percent_on=0.5,
                       weight_sparsity=0.0)
    layer = net.layers[0]
    with torch.no_grad():
        layer.linear.weight.zero_()
        layer.linear.bias.fill_(1.0)
        weights = torch.zeros(4, 2, 2)
        weights[:2, 0] = torch.tensor([5.0, -5.0])
        weights[2:, 0] = torch.tensor([-5.0, 5.0])
        layer.segments.weight.copy_(weights.reshape(8, 2))
    return net


def _context(task: int, batch: int) -> torch.Tensor:
    return torch.eye(2)[task].expand(batch, 2)


def test_disjoint_winners_give_overlap_zero_and_identical_contexts_give_one() -> None:
    net, x = _gated_network(), torch.randn(16, 3)
    disjoint = analyse_subnetworks(net, [[(x, _context(0, 16))], [(x, _context(1, 16))]])
    assert disjoint[0].subnetworks() == [[0, 1], [2, 3]]
    assert torch.allclose(disjoint[0].overlap, torch.eye(2, dtype=torch.float64))
    assert disjoint[0].mean_overlap == 0.0
    same = analyse_subnetworks(net, [[(x, _context(0, 16))], [(torch.randn(16, 3), _context(0, 16))]])
    assert same[0].mean_overlap == 1.0
    assert same[0].winners_per_input == 2.0


def test_winners_are_the_units_the_network_keeps() -> None:
    """The analysis replays the network's own forward: its winners are the nonzero kWTA outputs."""
    torch.manual_seed(0)
    net = DendriticMLP(6, 3, hidden_sizes=[20, 12], num_segments=3, context_dim=4, kw_percent_on=0.25)
    x, context = torch.randn(32, 6), torch.randn(32, 4)
    winners = layer_winners(net, x, context)
    hidden = net.layers[0].forward_kwinners(x, context, net.activations[0].k)
    assert torch.equal(winners[0], hidden != 0)
    assert [w.sum(1).unique().tolist() for w in winners] == [[5], [3]]
    second = net.layers[1].forward_kwinners(hidden, context, net.activations[1].k)
    assert torch.equal(winners[1], second != 0)


def test_sparse_mlp_without_context_shares_its_winners_across_identical_inputs() -> None:
    torch.manual_seed(0)
    net = MLP(5, 2, hidden_sizes=[10], kw_percent_on=0.3)
    x = torch.randn(8, 5)
    layers = analyse_subnetworks(net, [[(x, None)], [(x.clone(), None)], [(-x, None)]])
    assert len(layers) == 1 and layers[0].winners_per_input == 3.0
    assert layers[0].overlap[0, 1] == 1.0 and layers[0].overlap[0, 2] < 1.0


def test_overlap_is_weighted_jaccard() -> None:
    frequency = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    overlap = overlap_matrix(frequency)
    assert overlap[0, 1] == pytest.approx(1 / 3)  # |{1}| / |{0, 1, 2}|
    assert overlap[0, 2] == pytest.approx(0.5)  # sum min / sum max = 1 / 2
    assert torch.equal(overlap, overlap.T) and torch.all(overlap.diagonal() == 1)
    assert mean_off_diagonal(overlap) == pytest.approx((1 / 3 + 0.5 + 0.2) / 3)
    report = subnetwork_report(analyse_subnetworks(_gated_network(), [[(torch.ones(2, 3), _context(0, 2))]]),
                               ["t0"])
    assert report["tasks"] == ["t0"] and report["layers"][0]["overlap"] == [[1.0]]
