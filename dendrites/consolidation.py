"""Consolidation regularisers: quadratic penalties that anchor parameters important to past tasks.

Both add ``strength * sum_i importance_i * (theta_i - anchor_i)^2`` to the loss; they differ in
how the importance is measured:

- :class:`SynapticIntelligence` (Zenke et al. 2017): the path integral of ``-grad * dtheta``
  over a task's training, normalised by the squared total change plus a damping term.
- :class:`EWC` (Kirkpatrick et al. 2017): the diagonal empirical Fisher information at the end of
  each task, summed over tasks (online EWC with decay 1), estimated from mini-batch gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn


class Consolidation:
    """Base quadratic consolidation penalty. Call :meth:`before_step` / :meth:`after_step` around
    each optimiser step and :meth:`end_task` after each task."""

    def __init__(self, model: nn.Module, strength: float) -> None:
        if strength < 0:
            raise ValueError(f"consolidation strength must be >= 0, got {strength}")
        self.strength = strength
        self.params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        self.importance = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.anchor = {n: p.detach().clone() for n, p in self.params.items()}
        self.tasks_consolidated = 0

    def penalty(self) -> torch.Tensor:
        """The regularisation term to add to the task loss (zero before the first task ends)."""
        device = next(iter(self.params.values())).device
        if self.tasks_consolidated == 0 or self.strength == 0:
            return torch.zeros((), device=device)
        total = sum(
            (self.importance[n] * (p - self.anchor[n]).pow(2)).sum() for n, p in self.params.items()
        )
        return self.strength * total

    def before_step(self) -> None:
        """Hook before ``optimizer.step()``."""

    def after_step(self) -> None:
        """Hook after ``optimizer.step()``."""

    def end_task(self, loss_batches: Iterable[Callable[[], torch.Tensor]] = ()) -> None:
        """Fold the finished task into the importance and move the anchor to the current weights.

        ``loss_batches`` yields closures computing a task loss (used by Fisher-based methods).
        """
        self._update_importance(loss_batches)
        self.anchor = {n: p.detach().clone() for n, p in self.params.items()}
        self.tasks_consolidated += 1

    def _update_importance(self, loss_batches: Iterable[Callable[[], torch.Tensor]]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {
            "importance": self.importance,
            "anchor": self.anchor,
            "tasks_consolidated": self.tasks_consolidated,
        }

    def load_state_dict(self, state: dict) -> None:
        self.importance = {n: t.clone() for n, t in state["importance"].items()}
        self.anchor = {n: t.clone() for n, t in state["anchor"].items()}
        self.tasks_consolidated = state["tasks_consolidated"]


class SynapticIntelligence(Consolidation):
    """Synaptic Intelligence. ``strength`` is Zenke's ``c``; ``damping`` is ``xi``.

    The path integral uses the gradient of the full (regularised) loss, as in van de Ven's
    reference implementation; call :meth:`after_step` after each optimiser step while ``.grad``
    still holds that step's gradient.
    """

    def __init__(self, model: nn.Module, strength: float = 0.1, damping: float = 0.1) -> None:
        super().__init__(model, strength)
        self.damping = damping
        self.path_integral = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self._previous: dict[str, torch.Tensor] = {}

    def before_step(self) -> None:
        self._previous = {n: p.detach().clone() for n, p in self.params.items()}

    @torch.no_grad()
    def after_step(self) -> None:
        for n, p in self.params.items():
            if p.grad is not None:
                self.path_integral[n].add_(-p.grad * (p.detach() - self._previous[n]))

    @torch.no_grad()
    def _update_importance(self, loss_batches: Iterable[Callable[[], torch.Tensor]]) -> None:
        for n, p in self.params.items():
            delta = p.detach() - self.anchor[n]
            self.importance[n].add_(self.path_integral[n] / (delta.pow(2) + self.damping))
            self.path_integral[n].zero_()

    def state_dict(self) -> dict:
        return {**super().state_dict(), "path_integral": self.path_integral}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.path_integral = {n: t.clone() for n, t in state["path_integral"].items()}


class EWC(Consolidation):
    """Elastic Weight Consolidation with a diagonal Fisher estimated from mini-batch gradients
    (``E[grad^2]`` over batches; an approximation of the per-sample empirical Fisher)."""

    def __init__(self, model: nn.Module, strength: float = 100.0) -> None:
        super().__init__(model, strength)

    def _update_importance(self, loss_batches: Iterable[Callable[[], torch.Tensor]]) -> None:
        fisher = {n: torch.zeros_like(p) for n, p in self.params.items()}
        count = 0
        for loss_fn in loss_batches:
            grads = torch.autograd.grad(
                loss_fn(), list(self.params.values()), allow_unused=True
            )
            for (n, _), g in zip(self.params.items(), grads, strict=True):
                if g is not None:
                    fisher[n].add_(g.detach().pow(2))
            count += 1
        if count == 0:
            raise ValueError("EWC.end_task needs at least one loss batch to estimate the Fisher")
        for n in fisher:
            self.importance[n].add_(fisher[n] / count)
