import pytest
import torch

from dendrites import DendriteSegments, DendriticLayer, GatingMode, IndexedContext


def _layer_with_known_weights(gating: GatingMode) -> DendriticLayer:
    layer = DendriticLayer(2, 2, num_segments=3, context_dim=2, gating=gating)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 0.5]]))
        layer.linear.bias.copy_(torch.tensor([0.5, -0.5]))
        # unit 0 segments over c = (c0, c1); unit 1 likewise
        layer.segments.weights.copy_(torch.tensor([
            [[1.0, 0.0], [-3.0, 0.0], [0.0, 2.0]],
            [[0.5, 0.5], [0.0, -1.0], [2.0, 1.0]],
        ]))
    return layer


def test_shapes():
    layer = DendriticLayer(20, 30, num_segments=4, context_dim=7)
    out = layer(torch.randn(5, 20), torch.randn(5, 7))
    assert out.shape == (5, 30)
    assert DendriteSegments(30, 4, 7)(torch.randn(3, 7)).shape == (3, 30, 4)


@pytest.mark.parametrize("gating", list(GatingMode))
def test_gating_matches_hand_computation(gating):
    layer = _layer_with_known_weights(gating)
    x = torch.tensor([[1.0, 1.0]])
    c = torch.tensor([[1.0, -1.0]])
    y = [1.0 + 2.0 + 0.5, -1.0 + 0.5 - 0.5]  # W x + b = [3.5, -1.0]
    seg = [[1.0, -3.0, -2.0], [0.0, 1.0, 1.0]]  # u_j . c per unit
    # absolute max: largest magnitude, sign kept; otherwise the plain max
    d = [-3.0, 1.0] if gating is GatingMode.ABSOLUTE_MAX else [1.0, 1.0]
    if gating is GatingMode.BIAS:
        expected = [y[i] + d[i] for i in range(2)]
    else:
        expected = [y[i] * torch.sigmoid(torch.tensor(d[i])).item() for i in range(2)]
    torch.testing.assert_close(layer.segments(c)[0], torch.tensor(seg))
    torch.testing.assert_close(layer(x, c), torch.tensor([expected]))


def test_indexed_context_matches_dense_context():
    torch.manual_seed(0)
    layer = DendriticLayer(10, 16, num_segments=5, context_dim=6)
    x = torch.randn(12, 10)
    vectors = torch.randn(3, 6)
    index = torch.randint(0, 3, (12,))
    torch.testing.assert_close(layer(x, IndexedContext(vectors, index)), layer(x, vectors[index]))


def test_segment_sparsity_masks_weights():
    segments = DendriteSegments(8, 3, 100, sparsity=0.9)
    zeros_per_segment = (segments.weights == 0).sum(dim=-1)
    assert torch.all(zeros_per_segment == 90)


def test_invalid_segment_count_is_rejected():
    with pytest.raises(ValueError, match="num_segments"):
        DendriteSegments(4, 0, 3)
