"""Weight initialisation bounds for sparse networks.

All weights are drawn uniformly in ``±h``. Two schemes:

- ``project``: ``h = 1/sqrt(weight_density * fan_in)`` for feed-forward weights (the fan-in
  counted over the synapses a sparse unit keeps), biases in the same range, and
  ``h = 1/sqrt(dendrite_density * context_dim)`` for segments.
- ``modified``: the "modified" init of Numenta's ``DendriticMLP``
  (nupic.research ``frameworks/dendrites/modules/dendritic_mlp.py``, see
  /work/notes/ref_continual.md Q2): ``h = 1/sqrt(input_density * weight_density * fan_in)`` with
  ``input_density`` the kWTA density of the layer feeding it (1 for the first layer and after
  ReLU), ``h = 1/sqrt(context_percent_on * dendrite_density * context_dim)`` for segments, and
  biases left at PyTorch's ``nn.Linear`` default, ``±1/sqrt(fan_in)``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

InitScheme = Literal["project", "modified"]


def feedforward_bound(fan_in: int, weight_density: float = 1.0, input_density: float = 1.0) -> float:
    """``1/sqrt(input_density * weight_density * fan_in)``: the bound that keeps a unit's
    pre-activation variance independent of how many of its inputs are nonzero."""
    return 1.0 / math.sqrt(max(input_density * weight_density * fan_in, 1.0))


def dendrite_bound(context_dim: int, context_percent_on: float = 1.0,
                   dendrite_density: float = 1.0) -> float:
    """``1/sqrt(context_percent_on * dendrite_density * context_dim)`` for segment weights."""
    return feedforward_bound(context_dim, dendrite_density, context_percent_on)


def default_bias_bound(fan_in: int) -> float:
    """PyTorch's ``nn.Linear`` bias bound, ``1/sqrt(fan_in)`` over the full fan-in."""
    return 1.0 / math.sqrt(max(fan_in, 1))


@torch.no_grad()
def uniform_(tensor: torch.Tensor, bound: float) -> torch.Tensor:
    """Fill ``tensor`` with ``U(-bound, bound)`` in place; return it."""
    return tensor.uniform_(-bound, bound)


def init_linear_(linear: torch.nn.Linear, scheme: InitScheme, weight_density: float = 1.0,
                 input_density: float = 1.0) -> None:
    """Initialise a (possibly sparse) linear layer's weight and bias under ``scheme``."""
    fan_in = linear.in_features
    if scheme == "modified":
        uniform_(linear.weight, feedforward_bound(fan_in, weight_density, input_density))
        if linear.bias is not None:
            uniform_(linear.bias, default_bias_bound(fan_in))
        return
    bound = feedforward_bound(fan_in, weight_density)
    uniform_(linear.weight, bound)
    if linear.bias is not None:
        uniform_(linear.bias, bound)
