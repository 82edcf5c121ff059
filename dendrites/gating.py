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


def winning_segment(activations: torch.Tensor, mode: GatingMode) -> torch.Tensor:
    """Index of the segment that gates each unit, from ``(..., units, segments)`` activations."""
    if mode is GatingMode.ABSOLUTE_MAX:
        return activations.abs().argmax(dim=-1)
    return activations.argmax(dim=-1)


def select_segment(activations: torch.Tensor, mode: GatingMode) -> torch.Tensor:
    """Reduce ``(..., units, segments)`` segment activations to one value ``d`` per unit."""
    winner = winning_segment(activations, mode).unsqueeze(-1)
    return activations.gather(-1, winner).squeeze(-1)


def apply_dendrites(y: torch.Tensor, d: torch.Tensor, mode: GatingMode) -> torch.Tensor:
    """Modulate feed-forward output ``y`` by the selected dendritic activation ``d``."""
    if mode is GatingMode.BIAS:
        return y + d
    return y * torch.sigmoid(d)
