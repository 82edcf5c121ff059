"""Networks: the dendritic MLP of the paper and an equal-width MLP baseline."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dendrites.context import IndexedContext, dedup_context, dense_context
from dendrites.gating import GatingMode
from dendrites.init import InitScheme, feedforward_bound, init_linear_, uniform_
from dendrites.kwinners import KWinners
from dendrites.layers import DendriticLayer
from dendrites.sparse import SparseWeights


def _hidden_activation(units: int, kw_percent_on: float | None) -> nn.Module:
    return KWinners(units, kw_percent_on) if kw_percent_on is not None else nn.ReLU()


def _sparse_linear(fan_in: int, units: int, weight_sparsity: float, init: InitScheme = "project",
                   input_density: float = 1.0) -> nn.Linear:
    """A linear layer with ``weight_sparsity`` of its weights fixed at zero. ``project`` init:
    PyTorch's default, with the weight bound counted over the kept synapses when sparse;
    ``modified``: :func:`dendrites.init.init_linear_` (Numenta's modified init)."""
    linear = nn.Linear(fan_in, units)
    if init == "modified":
        init_linear_(linear, init, 1.0 - weight_sparsity, input_density)
    elif weight_sparsity > 0:
        uniform_(linear.weight, feedforward_bound(fan_in, 1.0 - weight_sparsity))
    if weight_sparsity > 0:
        linear.add_module("sparsity", SparseWeights(linear.weight, weight_sparsity))
    return linear


def input_densities(num_hidden: int, kw_percent_on: float | None,
                    given: Sequence[float] | None = None) -> list[float]:
    """Expected fraction of nonzero inputs to each hidden layer and the head (``num_hidden + 1``
    values): 1 for the first layer, then the kWTA density (1 after ReLU), unless ``given``."""
    if given is not None:
        if len(given) != num_hidden + 1:
            raise ValueError(f"input_densities needs {num_hidden + 1} values, got {len(given)}")
        return list(given)
    after = 1.0 if kw_percent_on is None else kw_percent_on
    return [1.0] + [after] * num_hidden


class DendriticMLP(nn.Module):
    """``input -> [DendriticLayer -> kWTA] x N -> linear head``.

    Paper configuration for permuted MNIST: ``hidden_sizes=(2048, 2048)``, ``num_segments`` =
    number of tasks, ``kw_percent_on=0.05``, ``weight_sparsity=0.5``, 784-d prototype context.
    With ``context_dedup`` a dense context is collapsed to its distinct rows before the
    dendritic layers (identical outputs, far fewer segment evaluations). With
    ``sparse_segment_updates`` segment weights get sparse gradients (winning rows only); train
    them with :func:`dendrites.optim.dendritic_adam`. ``dendritic_layers`` (hidden-layer
    indices; default all) picks which layers have dendrites; the others are sparse linear
    layers followed by the same activation (Numenta's MT10 networks gate only layer 1).
    ``init``, ``context_percent_on`` and ``layer_input_densities`` choose the init bounds
    (:mod:`dendrites.init`; ``init="modified"`` with ``context_percent_on=0.1`` is Numenta's);
    ``sparse_head`` gives the output layer the hidden layers' weight sparsity (Numenta's head is
    sparse).
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        hidden_sizes: Sequence[int] = (2048, 2048),
        num_segments: int = 10,
        context_dim: int = 784,
        kw_percent_on: float | None = 0.05,
        weight_sparsity: float = 0.5,
        dendrite_sparsity: float = 0.0,
        gating: GatingMode | str = GatingMode.ABSOLUTE_MAX,
        context_dedup: bool = True,
        sparse_segment_updates: bool = False,
        dendritic_layers: Sequence[int] | None = None,
        init: InitScheme = "project",
        context_percent_on: float = 1.0,
        sparse_head: bool = False,
        layer_input_densities: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if not hidden_sizes:
            raise ValueError("hidden_sizes must name at least one hidden layer")
        gated = set(range(len(hidden_sizes)) if dendritic_layers is None else dendritic_layers)
        if not gated <= set(range(len(hidden_sizes))):
            raise ValueError(f"dendritic_layers {sorted(gated)} must index the "
                             f"{len(hidden_sizes)} hidden layers")
        self.context_dim = context_dim
        self.context_dedup = context_dedup
        self.layers = nn.ModuleList()
        self.activations = nn.ModuleList()
        densities = input_densities(len(hidden_sizes), kw_percent_on, layer_input_densities)
        fan_in = input_dim
        for index, units in enumerate(hidden_sizes):
            self.layers.append(
                DendriticLayer(
                    fan_in, units, num_segments, context_dim, gating,
                    weight_sparsity=weight_sparsity, dendrite_sparsity=dendrite_sparsity,
                    sparse_segment_updates=sparse_segment_updates, init=init,
                    input_density=densities[index], context_percent_on=context_percent_on,
                ) if index in gated else _sparse_linear(fan_in, units, weight_sparsity, init,
                                                        densities[index])
            )
            self.activations.append(_hidden_activation(units, kw_percent_on))
            fan_in = units
        self.head = _sparse_linear(fan_in, output_dim, weight_sparsity if sparse_head else 0.0,
                                   init, densities[-1])

    def forward(self, x: torch.Tensor, context: torch.Tensor | IndexedContext) -> torch.Tensor:
        if self.context_dedup and not isinstance(context, IndexedContext):
            context = dedup_context(context)
        for layer, activation in zip(self.layers, self.activations, strict=True):
            if not isinstance(layer, DendriticLayer):
                x = activation(layer(x))
            elif isinstance(activation, KWinners):
                x = layer.forward_kwinners(x, context, activation.k)
            else:
                x = activation(layer(x, context))
        return self.head(x)


class MLP(nn.Module):
    """Equal-width baseline: ``input [++ context] -> [Linear -> ReLU | kWTA] x N -> linear head``.

    With ``context_dim > 0`` the context is concatenated to the input (the paper's MT10
    baseline); with 0 the network ignores context (the permuted-MNIST baseline).
    ``kw_percent_on`` and ``weight_sparsity`` give the sparse, dendrite-free ablation.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        hidden_sizes: Sequence[int] = (2048, 2048),
        context_dim: int = 0,
        kw_percent_on: float | None = None,
        weight_sparsity: float = 0.0,
        init: InitScheme = "project",
        sparse_head: bool = False,
        layer_input_densities: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.context_dim = context_dim
        densities = input_densities(len(hidden_sizes), kw_percent_on, layer_input_densities)
        layers: list[nn.Module] = []
        fan_in = input_dim + context_dim
        for index, units in enumerate(hidden_sizes):
            layers += [_sparse_linear(fan_in, units, weight_sparsity, init, densities[index]),
                       _hidden_activation(units, kw_percent_on)]
            fan_in = units
        layers.append(_sparse_linear(fan_in, output_dim, weight_sparsity if sparse_head else 0.0,
                                     init, densities[-1]))
        self.net = nn.Sequential(*layers)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | IndexedContext | None = None
    ) -> torch.Tensor:
        if self.context_dim:
            if context is None:
                raise ValueError("this MLP was built with context_dim > 0 and needs a context")
            x = torch.cat([x, dense_context(context, x.shape[0]).to(x.dtype)], dim=1)
        return self.net(x)
