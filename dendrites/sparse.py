"""Static weight sparsity: a fixed random mask per weight, set at init and kept by re-zeroing.

Masked weights are zeroed at construction and again after every optimiser step
(:func:`attach_rezero_hook`), the scheme of Numenta's ``SparseWeights``: the forward pass stays a
plain dense matmul, and optimisers with momentum (Adam) cannot regrow pruned synapses.
"""

from __future__ import annotations

import torch
from torch import nn


def random_mask(
    shape: torch.Size | tuple[int, ...], sparsity: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A boolean keep-mask with, in every row (last dim = fan-in), ``round(sparsity*fan_in)`` zeros.

    Sparsity is fixed per output unit rather than drawn per synapse, so every unit keeps the
    same fan-in.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    fan_in = shape[-1]
    rows = int(torch.tensor(shape[:-1]).prod().item()) if len(shape) > 1 else 1
    num_zeros = round(sparsity * fan_in)
    scores = torch.rand(rows, fan_in, generator=generator)
    zero_idx = scores.argsort(dim=1)[:, :num_zeros]
    mask = torch.ones(rows, fan_in, dtype=torch.bool)
    mask.scatter_(1, zero_idx, False)
    return mask.reshape(shape)


class SparseWeights(nn.Module):
    """Holds a fixed keep-mask for one parameter of a module and re-applies it on demand."""

    def __init__(
        self,
        weight: nn.Parameter,
        sparsity: float,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.sparsity = sparsity
        self.register_buffer("mask", random_mask(weight.shape, sparsity, generator))
        self._weight = [weight]  # a list so the parameter is not registered twice
        self._keep: tuple[torch.Tensor, int, torch.Tensor] | None = None  # mask, version, as dtype
        self.rezero()

    @torch.no_grad()
    def rezero(self) -> None:
        """Zero the masked-out entries of the weight (one multiply by the mask, converted to the
        weight's dtype once and cached until the mask or the weight's dtype or device changes)."""
        weight, mask = self._weight[0], self.mask
        cached = self._keep
        if cached is None or cached[0] is not mask or cached[1] != mask._version or not (
                cached[2].dtype == weight.dtype and cached[2].device == weight.device):
            cached = self._keep = (mask, mask._version, mask.to(weight.dtype))
        weight.mul_(cached[2])

    def extra_repr(self) -> str:
        return f"sparsity={self.sparsity}, shape={tuple(self.mask.shape)}"


def rezero_weights(model: nn.Module) -> None:
    """Re-apply every static sparsity mask inside ``model``."""
    for module in model.modules():
        if isinstance(module, SparseWeights):
            module.rezero()


def attach_rezero_hook(optimizer, model: nn.Module):
    """Re-zero ``model``'s masked weights after every ``optimizer.step()``.

    ``optimizer`` is any object with torch's ``register_step_post_hook``; returns what it returns.
    """
    masks = [m for m in model.modules() if isinstance(m, SparseWeights)]

    def _hook(_optimizer, _args, _kwargs) -> None:
        for mask in masks:
            mask.rezero()

    return optimizer.register_step_post_hook(_hook)
