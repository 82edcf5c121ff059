"""The init bounds (Numenta's "modified" init, /work/notes/ref_continual.md Q2) and the sparse head."""

import math

import pytest
import torch

from dendrites import MLP, DendriticMLP, dendritic_adam
from dendrites.init import dendrite_bound, feedforward_bound


def test_bounds_match_the_reference_table():
    # the paper's network: 784 -> 2048 -> 2048 -> 10, ws 0.5, kWTA 0.05, context 784 at 10% on
    assert feedforward_bound(784, 0.5, 1.0) == pytest.approx(0.05051, abs=1e-5)
    assert feedforward_bound(2048, 0.5, 0.05) == pytest.approx(0.13975, abs=1e-5)
    assert feedforward_bound(2000, 0.5, 0.05) == pytest.approx(0.14142, abs=1e-5)
    assert feedforward_bound(2048, 0.5, 1.0) == pytest.approx(0.03125, abs=1e-5)
    assert dendrite_bound(784, 0.1) == pytest.approx(0.11294, abs=1e-5)
    assert dendrite_bound(256, 0.1) == pytest.approx(0.19764, abs=1e-5)


def _assert_uniform_in(tensor: torch.Tensor, bound: float, name: str) -> None:
    values = tensor[tensor != 0].abs()
    assert values.max() <= bound * (1 + 1e-6), name
    assert values.max() >= 0.97 * bound, name  # many draws reach close to the bound


def test_modified_init_of_the_dendritic_network():
    torch.manual_seed(0)
    model = DendriticMLP(100, 10, (400, 400), num_segments=3, context_dim=50, kw_percent_on=0.05,
                         weight_sparsity=0.5, init="modified", context_percent_on=0.1,
                         sparse_head=True)
    _assert_uniform_in(model.layers[0].linear.weight, 1 / math.sqrt(0.5 * 100), "layer 1")
    _assert_uniform_in(model.layers[1].linear.weight, 1 / math.sqrt(0.05 * 0.5 * 400), "layer 2")
    _assert_uniform_in(model.head.weight, 1 / math.sqrt(0.05 * 0.5 * 400), "head")
    for layer in model.layers:
        _assert_uniform_in(layer.segments.weight, 1 / math.sqrt(0.1 * 50), "segments")
    # biases keep PyTorch's default bound over the full fan-in
    _assert_uniform_in(model.layers[0].linear.bias, 1 / math.sqrt(100), "bias 1")
    _assert_uniform_in(model.layers[1].linear.bias, 1 / math.sqrt(400), "bias 2")


def test_relu_dendrites_and_modified_dense_mlp_input_densities():
    torch.manual_seed(0)
    relu = DendriticMLP(100, 10, (400, 400), num_segments=2, context_dim=20, kw_percent_on=None,
                        weight_sparsity=0.5, init="modified", sparse_head=True)
    _assert_uniform_in(relu.layers[1].linear.weight, 1 / math.sqrt(0.5 * 400), "relu layer 2")
    mlp = MLP(100, 10, (400, 400), init="modified", layer_input_densities=[1.0, 0.5, 0.5])
    _assert_uniform_in(mlp.net[0].weight, 1 / math.sqrt(100), "mlp layer 1")
    _assert_uniform_in(mlp.net[2].weight, 1 / math.sqrt(0.5 * 400), "mlp layer 2")


@pytest.mark.parametrize("model_class", ["dendritic", "sparse_mlp"])
def test_sparse_head_has_fixed_fan_in_and_stays_sparse_under_adam(model_class):
    torch.manual_seed(0)
    if model_class == "dendritic":
        model = DendriticMLP(30, 5, (40,), num_segments=2, context_dim=6, kw_percent_on=0.25,
                             weight_sparsity=0.5, sparse_head=True)
        run = lambda x: model(x, torch.randn(1, 6).expand(len(x), -1))  # noqa: E731
        head = model.head
    else:
        model = MLP(30, 5, (40,), kw_percent_on=0.25, weight_sparsity=0.5, sparse_head=True)
        run = model
        head = model.net[-1]
    assert torch.all((head.weight == 0).sum(dim=1) == 20)
    optimizer = dendritic_adam(model, lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(run(torch.randn(16, 30)), torch.randint(0, 5, (16,))).backward()
        optimizer.step()
    assert torch.all((head.weight == 0).sum(dim=1) == 20)
