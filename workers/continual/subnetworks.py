"""The subnetwork analysis (:mod:`dendrites.analysis`) of a trained continual-learning model: per
task, the hidden units that win on that task's test inputs, with the context the model gets at
evaluation (the inferred prototype, or the task one-hot), and the task-by-task overlap."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch import nn

from dendrites.analysis import analyse_subnetworks, subnetwork_report
from workers.continual.config import ContinualConfig
from workers.continual.tasks import PermutedTaskStream

SUBNETWORKS = "subnetworks"
"""Report entry (a JSON artifact) holding the analysis."""
SUBNETWORK_OVERLAP = "subnetwork_overlap"
"""Report metric: mean task-pair overlap over the hidden layers."""


class ContinualTrainer(Protocol):
    """What the analysis reads of a :class:`workers.continual.trainer.ContinualTrainer`."""

    config: ContinualConfig
    device: torch.device
    model: nn.Module
    stream: PermutedTaskStream
    next_task: int

    def _evaluation_context(self, x: torch.Tensor, task: int) -> Any: ...

    def _model_context(self, context: Any, batch_size: int) -> Any: ...


def _task_batches(trainer: ContinualTrainer, task: int) -> Iterator[tuple[torch.Tensor, Any]]:
    x_all, _ = trainer.stream.test_split(task)
    size = trainer.config.eval_batch_size
    for start in range(0, len(x_all), size):
        x = x_all[start : start + size].to(trainer.device)
        yield x, trainer._model_context(trainer._evaluation_context(x, task), len(x))


def subnetwork_metrics(trainer: ContinualTrainer) -> dict[str, Any]:
    """The analysis over the tasks trained so far, as report entries."""
    tasks = range(trainer.next_task)
    layers = analyse_subnetworks(trainer.model, [_task_batches(trainer, t) for t in tasks])
    analysis = subnetwork_report(layers, [f"task {t}" for t in tasks])
    return {SUBNETWORKS: analysis, SUBNETWORK_OVERLAP: analysis["mean_overlap"]}
