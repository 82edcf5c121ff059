"""k-winners-take-all (kWTA) for 1-d activations, without boosting."""

from __future__ import annotations

import torch
from torch import nn

from dendrites.gating import GatingMode, apply_dendrites


def num_winners(units: int, percent_on: float) -> int:
    """Number of winners kept out of ``units`` for a ``percent_on`` density (at least one)."""
    if not 0.0 < percent_on <= 1.0:
        raise ValueError(f"percent_on must be in (0, 1], got {percent_on}")
    return max(1, round(units * percent_on))


class _KWinnersFunction(torch.autograd.Function):
    """kWTA as one autograd node: the forward scatters the winners' values into zeros and saves
    only their indices; the backward scatters the winners' gradients the same way (no float
    mask is built, stored or multiplied)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, k: int) -> torch.Tensor:
        winners = x.topk(k, dim=-1, sorted=False).indices
        ctx.save_for_backward(winners)
        return torch.zeros_like(x).scatter_(-1, winners, x.gather(-1, winners))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (winners,) = ctx.saved_tensors
        return torch.zeros_like(grad).scatter_(-1, winners, grad.gather(-1, winners)), None


def kwinners(x: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest entries of each row of ``x`` (shape ``(batch, units)``), zero the rest.

    Exactly ``k`` entries survive per row (ties are broken by ``torch.topk``); the gradient
    flows only through the winners.
    """
    if k >= x.shape[-1]:
        return x
    return _KWinnersFunction.apply(x, k)


class _GatedKWinnersFunction(torch.autograd.Function):
    """``kwinners(apply_dendrites(y, d, mode), k)`` as one autograd node. The backward works on
    the ``k`` winners per row only: the gradient of ``y`` is scattered from them, and that of
    ``d`` summed from them, instead of full-size products with the mostly-zero kWTA gradient."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, d: torch.Tensor, mode: GatingMode, k: int) -> torch.Tensor:
        gate = None if mode is GatingMode.BIAS else torch.sigmoid(d)
        out = y + d if gate is None else y * gate
        winners = out.topk(k, dim=-1, sorted=False).indices
        gate_at_winners = None if gate is None else gate.expand_as(y).gather(-1, winners)
        ctx.save_for_backward(winners, y.gather(-1, winners), gate_at_winners, gate)
        ctx.d_shape = d.shape
        return torch.zeros_like(out).scatter_(-1, winners, out.gather(-1, winners))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        winners, y_at_winners, gate_at_winners, gate = ctx.saved_tensors
        grad_at_winners = grad.gather(-1, winners)
        if gate is None:  # bias: out = y + d
            grad_y_at_winners, grad_gate_input = grad_at_winners, grad_at_winners
        else:  # out = y * sigmoid(d)
            grad_y_at_winners = grad_at_winners * gate_at_winners
            grad_gate_input = grad_at_winners * y_at_winners
        # (.to: under autocast y, d and the incoming gradient may differ in precision)
        grad_y = torch.zeros_like(grad).scatter_(-1, winners, grad_y_at_winners.to(grad.dtype))
        grad_gate_input = grad_gate_input.to(grad.dtype)
        if ctx.d_shape[0] == 1 and grad.shape[0] != 1:  # one d row broadcast over the batch
            grad_d = grad.new_zeros(ctx.d_shape[-1]).index_add_(
                0, winners.flatten(), grad_gate_input.flatten()).view(ctx.d_shape)
        else:
            grad_d = grad.new_zeros(ctx.d_shape).scatter_(-1, winners, grad_gate_input)
        if gate is not None:
            grad_d = grad_d * gate * (1 - gate)
        return grad_y, grad_d, None, None


def gated_kwinners(y: torch.Tensor, d: torch.Tensor, mode: GatingMode, k: int) -> torch.Tensor:
    """``kwinners(apply_dendrites(y, d, mode), k)`` (same values) for ``y`` ``(batch, units)`` and
    ``d`` ``(1, units)`` (one context for the batch), with a backward that touches only the
    winners; other shapes take the plain composition (no fewer operations to be had there)."""
    if k >= y.shape[-1] or y.dim() != 2 or d.dim() != 2 or d.shape[0] != 1:
        return kwinners(apply_dendrites(y, d, mode), k)
    return _GatedKWinnersFunction.apply(y, d, mode, k)


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
