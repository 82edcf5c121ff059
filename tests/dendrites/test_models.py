import pytest
import torch

from dendrites import MLP, DendriticMLP, IndexedContext, KWinners


def test_dendritic_mlp_shapes_and_structure():
    model = DendriticMLP(784, 10, (64, 32), num_segments=10, context_dim=784)
    out = model(torch.randn(7, 784), torch.randn(7, 784))
    assert out.shape == (7, 10)
    assert [a.k for a in model.activations] == [3, 2]
    assert all(isinstance(a, KWinners) for a in model.activations)


def test_dendritic_mlp_sparse_activity():
    model = DendriticMLP(20, 3, (100,), num_segments=2, context_dim=4, kw_percent_on=0.1)
    hidden = model.activations[0](model.layers[0](torch.randn(9, 20), torch.randn(9, 4)))
    assert torch.all((hidden != 0).sum(dim=1) == 10)


def test_mlp_without_context_ignores_it():
    model = MLP(20, 3, (16, 16))
    x = torch.randn(4, 20)
    torch.testing.assert_close(model(x), model(x, torch.randn(4, 5)))


def test_mlp_with_context_concatenates_it():
    model = MLP(20, 3, (16,), context_dim=5)
    assert model.net[0].in_features == 25
    ctx = IndexedContext(torch.eye(5), torch.tensor([0, 4]))
    assert model(torch.randn(2, 20), ctx).shape == (2, 3)
    with pytest.raises(ValueError, match="needs a context"):
        model(torch.randn(2, 20))


def test_dendritic_mlp_needs_hidden_layers():
    with pytest.raises(ValueError, match="hidden_sizes"):
        DendriticMLP(4, 2, (), num_segments=1, context_dim=2)


@pytest.mark.parametrize("kind", ["dendritic", "sparse_mlp"])
def test_forward_keeps_exactly_k_winners_before_the_head(kind):
    """Through the whole forward pass (fused gating + kWTA included), the head sees k = 5% of
    the last hidden layer's units per sample, in training and in evaluation."""
    torch.manual_seed(0)
    if kind == "dendritic":
        model = DendriticMLP(30, 4, (200, 200), num_segments=3, context_dim=6, kw_percent_on=0.05)
        head = model.head
        run = lambda x: model(x, IndexedContext.shared(torch.randn(6)))  # noqa: E731
    else:
        model = MLP(30, 4, (200, 200), kw_percent_on=0.05, weight_sparsity=0.5)
        head = model.net[-1]
        run = model
    seen = []
    head.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0]))
    for train in (True, False):
        model.train(train)
        with torch.set_grad_enabled(train):
            run(torch.randn(16, 30))
        assert torch.all((seen[-1] != 0).sum(dim=1) == 10)
