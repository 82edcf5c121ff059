"""Consolidation regularisers: quadratic penalties that anchor parameters important to past tasks.

Both add ``strength * sum_i importance_i * (theta_i - anchor_i)^2`` to the loss; they differ in
how the importance is measured:

- :class:`SynapticIntelligence` (Zenke et al. 2017): the path integral of ``-grad * dtheta``
  over a task's training, normalised by the squared total change plus a damping term.
- :class:`EWC` (Kirkpatrick et al. 2017): the diagonal empirical Fisher information at the end of
  each task (the mean over samples of each sample's squared log-likelihood gradient), summed
  over tasks (online EWC with decay 1).

``exclude`` names substrings of parameter names left out of the penalty (``("segments",)``
leaves the dendritic segments free, as Numenta's SI mixin does by default:
nupic.research ``continual_learning/mixins/si.py``, ``apply_to_dendrites=False``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn


class Consolidation:
    """Base quadratic consolidation penalty. Call :meth:`before_step` / :meth:`after_step` around
    each optimiser step and :meth:`end_task` after each task."""

    def __init__(self, model: nn.Module, strength: float, exclude: tuple[str, ...] = ()) -> None:
        if strength < 0:
            raise ValueError(f"consolidation strength must be >= 0, got {strength}")
        self.strength = strength
        self.params = {n: p for n, p in model.named_parameters()
                       if p.requires_grad and not any(part in n for part in exclude)}
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

    The path integral ``omega += -grad * (theta_after - theta_before)`` uses the gradient of the
    full (regularised) loss and the step as taken after re-zeroing; call :meth:`after_step`
    after each optimiser step while ``.grad`` still holds that step's gradient. At the end of a
    task the accumulated ``omega`` is clamped with ReLU (once, not per step) before it is folded
    into the importance, as Numenta's SI mixin does (nupic.research
    ``continual_learning/mixins/si.py``).
    """

    def __init__(self, model: nn.Module, strength: float = 0.1, damping: float = 0.1,
                 exclude: tuple[str, ...] = ()) -> None:
        super().__init__(model, strength, exclude)
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
            self.importance[n].add_(self.path_integral[n].clamp(min=0) / (delta.pow(2) + self.damping))
            self.path_integral[n].zero_()

    def state_dict(self) -> dict:
        return {**super().state_dict(), "path_integral": self.path_integral}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.path_integral = {n: t.clone() for n, t in state["path_integral"].items()}


class EWC(Consolidation):
    """Elastic Weight Consolidation with the per-sample empirical diagonal Fisher: the mean over
    samples of the squared gradient of each sample's own negative log-likelihood (as Numenta's
    EWC mixin, nupic.research ``continual_learning/mixins/ewc.py``), not the square of a
    mini-batch mean gradient (which is about batch-size times smaller).

    :meth:`end_task` takes closures that each return a vector of per-sample losses (cross
    entropy with ``reduction="none"``); ``max_samples`` caps how many samples are used.
    """

    def __init__(self, model: nn.Module, strength: float = 100.0, exclude: tuple[str, ...] = (),
                 max_samples: int = 256) -> None:
        super().__init__(model, strength, exclude)
        self.max_samples = max_samples

    def _update_importance(self, loss_batches: Iterable[Callable[[], torch.Tensor]]) -> None:
        fisher = {n: torch.zeros_like(p) for n, p in self.params.items()}
        params = list(self.params.values())
        count = 0
        for loss_fn in loss_batches:
            losses = loss_fn().reshape(-1)
            for i in range(min(len(losses), self.max_samples - count)):
                grads = torch.autograd.grad(losses[i], params, retain_graph=True,
                                            allow_unused=True)
                for (n, _), g in zip(self.params.items(), grads, strict=True):
                    if g is not None:
                        fisher[n].add_(g.detach().to_dense().pow(2))
                count += 1
            if count >= self.max_samples:
                break
        if count == 0:
            raise ValueError("EWC.end_task needs at least one sample loss to estimate the Fisher")
        for n in fisher:
            self.importance[n].add_(fisher[n] / count)
