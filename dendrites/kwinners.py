"""k-winners-take-all (kWTA) for 1-d activations, without boosting."""

from __future__ import annotations

import torch
from torch import nn


def num_winners(units: int, percent_on: float) -> int:
    """Number of winners kept out of ``units`` for a ``percent_on`` density (at least one)."""
    if not 0.0 < percent_on <= 1.0:
        raise ValueError(f"percent_on must be in (0, 1], got {percent_on}")
    return max(1, round(units * percent_on))


def kwinners(x: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest entries of each row of ``x`` (shape ``(batch, units)``), zero the rest.

    Exactly ``k`` entries survive per row (ties are broken by ``torch.topk``); the gradient
    flows only through the winners.
    """
    if k >= x.shape[-1]:
        return x
    winners = x.topk(k, dim=-1, sorted=False).indices
    mask = torch.zeros_like(x).scatter_(-1, winners, 1.0)
    return x * mask


class KWinners(nn.Module):
    """kWTA layer: keeps the top ``percent_on`` fraction of units per sample.

    The same number of winners is kept in training and evaluation (no boosting, no duty
    cycles), so a context selects the same sparse sub-network at train and test time.
    """

    def __init__(self, units: int, percent_on: float) -> None:
        super().__init__()
        self.units = units
        self.percent_on = percent_on
        self.k = num_winners(units, percent_on)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return kwinners(x, self.k)

    def extra_repr(self) -> str:
        return f"units={self.units}, percent_on={self.percent_on}, k={self.k}"
