"""How dendritic segment activations modulate a unit's feed-forward output."""

from __future__ import annotations

from enum import StrEnum

import torch


class GatingMode(StrEnum):
    """Gating variants of the paper and Numenta's implementation.

    - ``absolute_max``: the segment activation with the largest magnitude, sign kept, through a
      sigmoid, multiplies the output (the paper's default).
    - ``max``: the largest segment activation, through a sigmoid, multiplies the output.
    - ``bias``: the largest segment activation is added to the output.
    """

    ABSOLUTE_MAX = "absolute_max"
    MAX = "max"
    BIAS = "bias"


def select_segment(activations: torch.Tensor, mode: GatingMode) -> torch.Tensor:
    """Reduce ``(..., units, segments)`` segment activations to one value ``d`` per unit."""
    if mode is GatingMode.ABSOLUTE_MAX:
        winner = activations.abs().argmax(dim=-1, keepdim=True)
        return activations.gather(-1, winner).squeeze(-1)
    return activations.max(dim=-1).values


def apply_dendrites(y: torch.Tensor, d: torch.Tensor, mode: GatingMode) -> torch.Tensor:
    """Modulate feed-forward output ``y`` by the selected dendritic activation ``d``."""
    if mode is GatingMode.BIAS:
        return y + d
    return y * torch.sigmoid(d)
