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
    """``kwinners(apply_dendrites(y, d[index], mode), k)`` as one autograd node, ``d`` holding one
    row per distinct context (``index`` picks each sample's; ``None``: one row for all, or one
    per sample). The sigmoid runs on the distinct rows only, and the backward works on the ``k``
    winners per row: the gradient of ``y`` is scattered from them, and that of ``d`` summed from
    them, instead of full-size products with the mostly-zero kWTA gradient."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, d: torch.Tensor, index: torch.Tensor | None, mode: GatingMode,
                k: int) -> torch.Tensor:
        gate_rows = d if mode is GatingMode.BIAS else torch.sigmoid(d)
        gate = gate_rows if index is None else gate_rows[index]
        out = y + gate if mode is GatingMode.BIAS else y * gate
        winners = out.topk(k, dim=-1, sorted=False).indices
        gate_at_winners = gate.expand_as(y).gather(-1, winners)
        if index is None:  # the d row of each sample
            index = torch.arange(y.shape[0], device=y.device) if d.shape[0] == y.shape[0] else (
                torch.zeros(y.shape[0], dtype=torch.long, device=y.device))
        ctx.save_for_backward(winners, y.gather(-1, winners), gate_at_winners, gate_rows, index)
        ctx.mode = mode
        return torch.zeros_like(out).scatter_(-1, winners, out.gather(-1, winners))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        winners, y_at_winners, gate_at_winners, gate_rows, index = ctx.saved_tensors
        grad_at_winners = grad.gather(-1, winners)
        if ctx.mode is GatingMode.BIAS:  # out = y + d
            grad_y_at_winners, grad_gate = grad_at_winners, grad_at_winners
        else:  # out = y * sigmoid(d)
            grad_y_at_winners = grad_at_winners * gate_at_winners
            grad_gate = grad_at_winners * y_at_winners
        # (.to: under autocast y, d and the incoming gradient may differ in precision)
        grad_y = torch.zeros_like(grad).scatter_(-1, winners, grad_y_at_winners.to(grad.dtype))
        units = gate_rows.shape[-1]
        flat = (index.unsqueeze(1) * units + winners).flatten()  # (d row, unit) of each winner
        grad_d = gate_rows.new_zeros(gate_rows.numel()).index_add_(
            0, flat, grad_gate.flatten().to(gate_rows.dtype)).view_as(gate_rows)
        if ctx.mode is not GatingMode.BIAS:
            grad_d = grad_d * gate_rows * (1 - gate_rows)
        return grad_y, grad_d, None, None, None


def gated_kwinners(y: torch.Tensor, d: torch.Tensor, mode: GatingMode, k: int,
                   index: torch.Tensor | None = None) -> torch.Tensor:
    """``kwinners(apply_dendrites(y, d[index], mode), k)`` (same values) for ``y``
    ``(batch, units)`` and ``d`` ``(contexts, units)`` (``index``: each sample's row; without it
    ``d`` has one row for the batch or one per sample), with a backward that touches only the
    winners."""
    if k >= y.shape[-1] or y.dim() != 2 or d.dim() != 2:
        return kwinners(apply_dendrites(y, d if index is None else d[index], mode), k)
    return _GatedKWinnersFunction.apply(y, d, index, mode, k)


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
