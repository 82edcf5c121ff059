"""Dendritic segments and the dendritic layer (a linear unit gated by its segments)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dendrites.context import IndexedContext
from dendrites.gating import GatingMode, apply_dendrites, select_segment, winning_segment
from dendrites.sparse import SparseWeights


def sparse_uniform_(weight: torch.Tensor, fan_in: int, density: float) -> None:
    """Uniform init in ``±1/sqrt(density * fan_in)``: the usual ``1/sqrt(fan_in)`` bound with the
    fan-in counted over the synapses a sparse unit actually keeps (Numenta's sparse init), so a
    sparse unit's pre-activation has the same variance as a dense one's.
    """
    bound = 1.0 / math.sqrt(max(density * fan_in, 1.0))
    with torch.no_grad():
        weight.uniform_(-bound, bound)


class DendriteSegments(nn.Module):
    """``num_segments`` weight vectors over the context for each of ``num_units`` units.

    Segment weights are drawn uniformly in ``±1/sqrt(density * context_dim)`` (see
    :func:`sparse_uniform_`), so with unit-scale context a segment's initial activation is of
    order one and the sigmoid gate starts near 0.5 rather than saturated.

    With ``sparse_updates`` the gradient reaches the weights as a sparse tensor holding only the
    winning segments' rows (the others get zero gradient anyway), to be stepped by the lazy
    :class:`dendrites.optim.RowSparseAdam` (see :func:`dendrites.optim.dendritic_adam`): no dense gradient
    over all segments is materialised, and segments that do not win are not moved by stale
    Adam momentum. Only the winners are gathered, one ``(units, context_dim)`` block per
    distinct context, so this suits few distinct contexts per batch.
    """

    def __init__(
        self,
        num_units: int,
        num_segments: int,
        context_dim: int,
        sparsity: float = 0.0,
        sparse_updates: bool = False,
    ) -> None:
        super().__init__()
        if num_segments < 1:
            raise ValueError(f"num_segments must be >= 1, got {num_segments}")
        if context_dim < 1:
            raise ValueError(f"context_dim must be >= 1, got {context_dim}")
        self.num_units, self.num_segments, self.context_dim = num_units, num_segments, context_dim
        # Stored flat, one row per (unit, segment), so sparse row gradients need no reshape.
        self.weight = nn.Parameter(torch.empty(num_units * num_segments, context_dim))
        sparse_uniform_(self.weight, context_dim, 1.0 - sparsity)
        self.sparsity = SparseWeights(self.weight, sparsity) if sparsity > 0 else None
        self.sparse_updates = sparse_updates

    @property
    def weights(self) -> torch.Tensor:
        """The segment weights as a ``(num_units, num_segments, context_dim)`` view."""
        return self.weight.view(self.num_units, self.num_segments, self.context_dim)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """Segment activations ``u_j . c``: ``(N, C)`` -> ``(N, num_units, num_segments)``."""
        return (context @ self.weight.T).reshape(-1, self.num_units, self.num_segments)

    def select(self, context: torch.Tensor, gating: GatingMode) -> torch.Tensor:
        """The gating segment's activation per unit, ``(N, C)`` -> ``(N, num_units)``."""
        if not (self.sparse_updates and torch.is_grad_enabled() and self.weight.requires_grad):
            return select_segment(self(context), gating)
        with torch.no_grad():
            winner = winning_segment(self(context), gating)
        rows = winner + torch.arange(self.num_units, device=winner.device) * self.num_segments
        winning_weights = F.embedding(rows, self.weight, sparse=True)  # (N, units, C)
        return (winning_weights @ context.unsqueeze(-1)).squeeze(-1)


class DendriticLayer(nn.Module):
    """A linear layer whose units are gated by their dendritic segments:
    ``y = (W x + b) * sigmoid(d)`` with ``d`` the selected segment activation (see :class:`GatingMode`).

    ``context`` may be a dense ``(B, C)`` tensor (segments evaluated per sample) or an
    :class:`IndexedContext` (segments evaluated once per distinct context; same result).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_segments: int,
        context_dim: int,
        gating: GatingMode | str = GatingMode.ABSOLUTE_MAX,
        weight_sparsity: float = 0.0,
        dendrite_sparsity: float = 0.0,
        sparse_segment_updates: bool = False,
    ) -> None:
        super().__init__()
        self.gating = GatingMode(gating)
        self.linear = nn.Linear(in_features, out_features)
        sparse_uniform_(self.linear.weight, in_features, 1.0 - weight_sparsity)
        sparse_uniform_(self.linear.bias, in_features, 1.0 - weight_sparsity)
        self.weight_sparsity = (
            SparseWeights(self.linear.weight, weight_sparsity) if weight_sparsity > 0 else None
        )
        self.segments = DendriteSegments(
            out_features, num_segments, context_dim, dendrite_sparsity, sparse_segment_updates
        )

    def dendritic_activation(self, context: torch.Tensor | IndexedContext) -> torch.Tensor:
        """The selected segment activation ``d`` per unit: ``(B, units)``, or ``(1, units)`` when
        the whole batch shares one context (it then broadcasts)."""
        if isinstance(context, IndexedContext):
            d = self.segments.select(context.vectors, self.gating)
            return d if context.index is None else d[context.index]
        return self.segments.select(context, self.gating)

    def forward(self, x: torch.Tensor, context: torch.Tensor | IndexedContext) -> torch.Tensor:
        return apply_dendrites(self.linear(x), self.dendritic_activation(context), self.gating)
