"""Networks: the dendritic MLP of the paper and an equal-width MLP baseline."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dendrites.context import IndexedContext, dedup_context, dense_context
from dendrites.gating import GatingMode
from dendrites.kwinners import KWinners
from dendrites.layers import DendriticLayer, sparse_uniform_
from dendrites.sparse import SparseWeights


def _hidden_activation(units: int, kw_percent_on: float | None) -> nn.Module:
    return KWinners(units, kw_percent_on) if kw_percent_on is not None else nn.ReLU()


class DendriticMLP(nn.Module):
    """``input -> [DendriticLayer -> kWTA] x N -> linear head``.

    Paper configuration for permuted MNIST: ``hidden_sizes=(2048, 2048)``, ``num_segments`` =
    number of tasks, ``kw_percent_on=0.05``, ``weight_sparsity=0.5``, 784-d prototype context.
    With ``context_dedup`` a dense context is collapsed to its distinct rows before the
    dendritic layers (identical outputs, far fewer segment evaluations). With
    ``sparse_segment_updates`` segment weights get sparse gradients (winning rows only); train
    them with :func:`dendrites.optim.dendritic_adam`.
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
    ) -> None:
        super().__init__()
        if not hidden_sizes:
            raise ValueError("hidden_sizes must name at least one hidden layer")
        self.context_dim = context_dim
        self.context_dedup = context_dedup
        self.layers = nn.ModuleList()
        self.activations = nn.ModuleList()
        fan_in = input_dim
        for units in hidden_sizes:
            self.layers.append(
                DendriticLayer(
                    fan_in, units, num_segments, context_dim, gating,
                    weight_sparsity=weight_sparsity, dendrite_sparsity=dendrite_sparsity,
                    sparse_segment_updates=sparse_segment_updates,
                )
            )
            self.activations.append(_hidden_activation(units, kw_percent_on))
            fan_in = units
        self.head = nn.Linear(fan_in, output_dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | IndexedContext) -> torch.Tensor:
        if self.context_dedup and not isinstance(context, IndexedContext):
            context = dedup_context(context)
        for layer, activation in zip(self.layers, self.activations, strict=True):
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
    ) -> None:
        super().__init__()
        self.context_dim = context_dim
        layers: list[nn.Module] = []
        fan_in = input_dim + context_dim
        for units in hidden_sizes:
            linear = nn.Linear(fan_in, units)
            if weight_sparsity > 0:
                sparse_uniform_(linear.weight, fan_in, 1.0 - weight_sparsity)
                linear.add_module("sparsity", SparseWeights(linear.weight, weight_sparsity))
            layers += [linear, _hidden_activation(units, kw_percent_on)]
            fan_in = units
        layers.append(nn.Linear(fan_in, output_dim))
        self.net = nn.Sequential(*layers)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | IndexedContext | None = None
    ) -> torch.Tensor:
        if self.context_dim:
            if context is None:
                raise ValueError("this MLP was built with context_dim > 0 and needs a context")
            x = torch.cat([x, dense_context(context, x.shape[0]).to(x.dtype)], dim=1)
        return self.net(x)
