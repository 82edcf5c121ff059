"""Subnetwork analysis: which hidden units each task uses, and how much two tasks' units overlap.

The paper's claim is that with dendrites each task is served by an overlapping but distinct sparse
subnetwork. This module measures it on a trained network, per hidden layer:

- **winner frequency** ``f_t(u)``: the fraction of task ``t``'s inputs (each with the context
  the network sees for it) on which hidden unit ``u`` is a winner: among the ``k`` largest
  pre-activations of a kWTA layer, or positive before a ReLU layer.
- **task subnetwork** ``S_t``: the units with ``f_t(u) >= threshold`` (default 0.5: the units
  that win on most of the task's inputs).
- **overlap** ``O[a, b] = sum_u min(f_a(u), f_b(u)) / sum_u max(f_a(u), f_b(u))``: the weighted
  Jaccard (Ruzicka) similarity of two tasks' winner frequencies. It is 1 when the two tasks use
  the same units equally often, 0 when no unit ever wins on both, and equals the Jaccard index
  ``|S_a & S_b| / |S_a | S_b|`` when every input of a task has the same winners.
- **mean overlap**: the mean of ``O`` over task pairs ``a != b`` (1.0 with a single task).

Pure PyTorch; works on :class:`~dendrites.models.DendriticMLP` and :class:`~dendrites.models.MLP`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from dendrites.context import IndexedContext, dedup_context
from dendrites.kwinners import KWinners
from dendrites.layers import DendriticLayer
from dendrites.models import MLP, DendriticMLP

Context = torch.Tensor | IndexedContext | None
SUBNETWORK_THRESHOLD = 0.5


def _winners(pre_activation: torch.Tensor, activation: nn.Module) -> torch.Tensor:
    """Boolean ``(batch, units)``: the units this activation lets through."""
    if isinstance(activation, KWinners) and activation.k < pre_activation.shape[-1]:
        index = pre_activation.topk(activation.k, dim=-1).indices
        return torch.zeros_like(pre_activation, dtype=torch.bool).scatter_(-1, index, True)
    if isinstance(activation, KWinners):
        return torch.ones_like(pre_activation, dtype=torch.bool)
    return pre_activation > 0


def _dendritic_winners(model: DendriticMLP, x: torch.Tensor, context: Context) -> list[torch.Tensor]:
    if model.context_dedup and isinstance(context, torch.Tensor):
        context = dedup_context(context)
    winners = []
    for layer, activation in zip(model.layers, model.activations, strict=True):
        pre = layer(x, context) if isinstance(layer, DendriticLayer) else layer(x)
        winners.append(_winners(pre, activation))
        x = activation(pre)
    return winners


def _mlp_winners(model: nn.Module, x: torch.Tensor, context: Context) -> list[torch.Tensor]:
    winners: list[torch.Tensor] = []
    hooks = [module.register_forward_pre_hook(
        lambda module, inputs: winners.append(_winners(inputs[0], module)))
        for module in model.modules() if isinstance(module, KWinners | nn.ReLU)]
    try:
        model(x, context) if isinstance(model, MLP) or context is not None else model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return winners


@torch.no_grad()
def layer_winners(model: nn.Module, x: torch.Tensor, context: Context = None) -> list[torch.Tensor]:
    """Per hidden layer, a boolean ``(batch, units)`` tensor of the units that win on each input."""
    was_training = model.training
    model.eval()
    try:
        if isinstance(model, DendriticMLP):
            return _dendritic_winners(model, x, context)
        return _mlp_winners(model, x, context)
    finally:
        model.train(was_training)


@torch.no_grad()
def winner_frequency(model: nn.Module, batches: Iterable[tuple[torch.Tensor, Context]]) -> list[torch.Tensor]:
    """Per hidden layer, ``(units,)``: the fraction of the inputs in ``batches`` (pairs of input
    and context) on which each unit wins."""
    counts: list[torch.Tensor] | None = None
    total = 0
    for x, context in batches:
        winners = layer_winners(model, x, context)
        sums = [w.sum(0, dtype=torch.float64).cpu() for w in winners]
        counts = sums if counts is None else [c + s for c, s in zip(counts, sums, strict=True)]
        total += x.shape[0]
    if counts is None or total == 0:
        raise ValueError("no inputs to analyse")
    return [c / total for c in counts]


def overlap_matrix(frequencies: torch.Tensor) -> torch.Tensor:
    """Weighted Jaccard similarity of each pair of rows of ``frequencies`` ``(tasks, units)``."""
    f = frequencies.to(torch.float64)
    low = torch.minimum(f.unsqueeze(1), f.unsqueeze(0)).sum(-1)
    high = torch.maximum(f.unsqueeze(1), f.unsqueeze(0)).sum(-1)
    return torch.where(high > 0, low / high.clamp_min(1e-300), torch.ones_like(high))


def mean_off_diagonal(matrix: torch.Tensor) -> float:
    """Mean of the entries off the diagonal (1.0 for a 1 x 1 matrix)."""
    n = matrix.shape[0]
    if n < 2:
        return 1.0
    return float((matrix.sum() - matrix.diagonal().sum()) / (n * (n - 1)))


@dataclass(frozen=True)
class LayerSubnetworks:
    """One hidden layer's analysis over the tasks."""

    units: int
    winners_per_input: float  # mean number of winners per input (k for a kWTA layer)
    frequency: torch.Tensor  # (tasks, units)
    overlap: torch.Tensor  # (tasks, tasks)
    threshold: float = SUBNETWORK_THRESHOLD

    @property
    def mean_overlap(self) -> float:
        return mean_off_diagonal(self.overlap)

    def subnetworks(self) -> list[list[int]]:
        """Per task, the units winning on at least ``threshold`` of its inputs."""
        return [torch.nonzero(row >= self.threshold).flatten().tolist() for row in self.frequency]

    def to_dict(self) -> dict:
        """JSON-able numbers (overlap matrix, subnetworks, their sizes)."""
        subnetworks = self.subnetworks()
        return {"units": self.units, "winners_per_input": self.winners_per_input,
                "overlap": [[round(float(v), 6) for v in row] for row in self.overlap],
                "mean_overlap": self.mean_overlap, "subnetwork_threshold": self.threshold,
                "subnetwork_sizes": [len(s) for s in subnetworks], "subnetworks": subnetworks}


def analyse_subnetworks(model: nn.Module, tasks: Sequence[Iterable[tuple[torch.Tensor, Context]]],
                        threshold: float = SUBNETWORK_THRESHOLD) -> list[LayerSubnetworks]:
    """The per-layer analysis of ``model`` over ``tasks``: for each task, batches of its inputs
    with the context the network gets for them (``None`` for a network without context)."""
    per_task = [winner_frequency(model, batches) for batches in tasks]
    layers = []
    for layer in range(len(per_task[0])):
        frequency = torch.stack([task[layer] for task in per_task])
        layers.append(LayerSubnetworks(units=frequency.shape[1],
                                       winners_per_input=float(frequency.sum(1).mean()),
                                       frequency=frequency, overlap=overlap_matrix(frequency),
                                       threshold=threshold))
    return layers


def subnetwork_report(layers: Sequence[LayerSubnetworks], task_names: Sequence[str]) -> dict:
    """The analysis as one JSON-able artifact: per layer, and the mean overlap over layers."""
    return {"measure": "weighted Jaccard of per-task kWTA winner frequencies (dendrites.analysis)",
            "tasks": list(task_names), "layers": [layer.to_dict() for layer in layers],
            "mean_overlap": sum(layer.mean_overlap for layer in layers) / max(len(layers), 1)}
