"""Context-dependent gating (XdG, Masse, Grant & Freedman, PNAS 2018).

Each task owns a fixed random binary mask per hidden layer that keeps a fraction ``keep`` of the
units (0.2 in their permuted-MNIST setting: 80% gated) and zeroes the rest; the task id is given
at training and test time. Numenta's code has no XdG (the paper's XdG curve is transcribed), so
this follows the XdG paper's description and is not checked against any reference code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dendrites.context import IndexedContext


def task_masks(num_tasks: int, units: int, keep: float, generator: torch.Generator) -> torch.Tensor:
    """``(num_tasks, units)`` 0/1 masks, each keeping ``round(keep * units)`` random units."""
    kept = max(1, round(keep * units))
    order = torch.rand(num_tasks, units, generator=generator).argsort(dim=1)
    masks = torch.zeros(num_tasks, units)
    masks.scatter_(1, order[:, :kept], 1.0)
    return masks


class XdGMLP(nn.Module):
    """``input -> [Linear -> ReLU -> task mask] x N -> linear head``. The context is the task's
    one-hot vector (an :class:`IndexedContext` over the identity, or dense one-hot rows)."""

    def __init__(self, input_dim: int, output_dim: int, hidden_sizes: Sequence[int],
                 num_tasks: int, keep: float = 0.2, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.layers = nn.ModuleList()
        fan_in = input_dim
        for index, units in enumerate(hidden_sizes):
            self.layers.append(nn.Linear(fan_in, units))
            self.register_buffer(f"masks_{index}", task_masks(num_tasks, units, keep, generator))
            fan_in = units
        self.head = nn.Linear(fan_in, output_dim)

    def masks(self, index: int) -> torch.Tensor:
        """Layer ``index``'s ``(num_tasks, units)`` gating masks."""
        return getattr(self, f"masks_{index}")

    @staticmethod
    def task_ids(context: torch.Tensor | IndexedContext, batch_size: int) -> torch.Tensor:
        """Each sample's task id from its one-hot context."""
        if isinstance(context, IndexedContext):
            ids = context.vectors.argmax(dim=1)
            return ids.expand(batch_size) if context.index is None else ids[context.index]
        return context.argmax(dim=1)

    def forward(self, x: torch.Tensor, context: torch.Tensor | IndexedContext) -> torch.Tensor:
        tasks = self.task_ids(context, x.shape[0])
        for index, layer in enumerate(self.layers):
            x = torch.relu(layer(x)) * self.masks(index)[tasks]
        return self.head(x)
