"""Optimisers for dendritic networks: fused Adam, with lazy row-sparse Adam for segment weights."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dendrites.layers import DendriteSegments
from dendrites.sparse import attach_rezero_hook


def _fused_supported(params: list[nn.Parameter]) -> bool:
    return all(p.dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64)
               and p.device.type in ("cpu", "cuda") for p in params)


class RowSparseAdam(torch.optim.Optimizer):
    """Lazy Adam for parameters whose gradients are sparse COO tensors of whole rows (what
    ``F.embedding(..., sparse=True)`` produces): the same update as ``torch.optim.SparseAdam``
    (moments and weights of rows without gradient are left untouched; bias correction uses the
    parameter's step count), computed by gathering and scattering the touched rows, which is
    several times faster than generic sparse-tensor arithmetic.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if not param.grad.is_sparse:
                    raise RuntimeError("RowSparseAdam needs sparse row gradients; use Adam for dense ones")
                grad = param.grad.coalesce()
                rows, values = grad.indices()[0], grad.values()
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                exp_avg = state["exp_avg"][rows].lerp_(values, 1 - beta1)
                exp_avg_sq = state["exp_avg_sq"][rows].mul_(beta2).addcmul_(values, values,
                                                                            value=1 - beta2)
                state["exp_avg"].index_copy_(0, rows, exp_avg)
                state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
                step = state["step"]
                step_size = group["lr"] * math.sqrt(1 - beta2**step) / (1 - beta1**step)
                update = exp_avg.div_(exp_avg_sq.sqrt_().add_(group["eps"])).mul_(-step_size)
                param.index_add_(0, rows, update)
        return loss


class DendriticAdam:
    """Adam over a model's dense parameters (fused kernel where supported) and, for segment
    weights built with ``sparse_updates``, :class:`RowSparseAdam` (lazy Adam: only rows with
    gradient are updated). Exposes the optimiser methods the trainers use.
    """

    def __init__(self, model: nn.Module, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        sparse = [m.weight for m in model.modules()
                  if isinstance(m, DendriteSegments) and m.sparse_updates]
        sparse_ids = {id(p) for p in sparse}
        dense = [p for p in model.parameters() if id(p) not in sparse_ids and p.requires_grad]
        self.optimizers: list[torch.optim.Optimizer] = [
            torch.optim.Adam(dense, lr=lr, betas=betas, eps=eps, fused=_fused_supported(dense))
        ]
        if sparse:
            self.optimizers.append(RowSparseAdam(sparse, lr=lr, betas=betas, eps=eps))
        self._post_hooks: list[Callable[..., None]] = []

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [group for opt in self.optimizers for group in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()
        for hook in self._post_hooks:
            hook(self, (), {})

    def register_step_post_hook(self, hook: Callable[..., None]) -> None:
        """Run ``hook(optimizer, args, kwargs)`` after every step (as torch optimisers do)."""
        self._post_hooks.append(hook)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state["optimizers"]
        if len(saved) != len(self.optimizers):
            raise ValueError("optimizer state was saved with a different sparse-update setting")
        for opt, opt_state in zip(self.optimizers, saved, strict=True):
            opt.load_state_dict(opt_state)


def dendritic_adam(model: nn.Module, lr: float, **kwargs: Any) -> DendriticAdam:
    """Adam for ``model`` that also handles sparse segment gradients and re-zeroes sparse weights."""
    optimizer = DendriticAdam(model, lr, **kwargs)
    attach_rezero_hook(optimizer, model)
    return optimizer
