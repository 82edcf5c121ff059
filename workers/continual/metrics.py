"""Continual-learning metrics over the accuracy matrix ``R[i][j]`` (accuracy on task ``j`` after
training task ``i``; row ``i`` holds tasks ``0..i``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

AccuracyMatrix = list[list[float]]


def mean_accuracy(row: list[float]) -> float:
    """Mean accuracy over the tasks seen so far."""
    return sum(row) / len(row)


def backward_transfer(matrix: AccuracyMatrix) -> float:
    """BWT (Lopez-Paz & Ranzato 2017): mean of ``R[T-1][j] - R[j][j]`` over ``j < T-1``;
    negative means forgetting. 0 for a single task."""
    last = len(matrix) - 1
    if last == 0:
        return 0.0
    return sum(matrix[last][j] - matrix[j][j] for j in range(last)) / last


def forgetting(matrix: AccuracyMatrix) -> float:
    """Average forgetting (Chaudhry et al. 2018): mean over ``j < T-1`` of the best earlier
    accuracy on ``j`` minus the final one. 0 for a single task."""
    last = len(matrix) - 1
    if last == 0:
        return 0.0
    drops = [max(matrix[i][j] for i in range(j, last)) - matrix[last][j] for j in range(last)]
    return sum(drops) / last


class TaskReport(BaseModel):
    """What is known after training one task: reported to the progress callback."""

    task: int = Field(description="index of the task just trained (0-based)")
    tasks_seen: int
    mean_accuracy: float = Field(description="mean test accuracy over the tasks seen so far")
    accuracies: list[float] = Field(description="test accuracy on each task seen so far")
    task_inference_accuracy: float | None = Field(
        None, description="fraction of test samples whose nearest prototype is their own task"
    )
    train_loss: float = Field(description="mean training loss over the task's last epoch")
    backward_transfer: float
    forgetting: float
    task_time_s: float = Field(description="wall time of this task's training and evaluation")
    wall_time_s: float = Field(description="wall time since the run started")

    def metrics(self) -> dict[str, float]:
        """The flat numbers of this report (per-task accuracies as ``accuracy_task_<j>``)."""
        flat = self.model_dump(exclude={"accuracies"}, exclude_none=True)
        flat.update({f"accuracy_task_{j}": acc for j, acc in enumerate(self.accuracies)})
        return flat


class ContinualResults(BaseModel):
    """Final summary of a continual-learning run (serialised as the run's results JSON)."""

    config: dict
    reports: list[TaskReport]
    accuracy_matrix: AccuracyMatrix
    final_mean_accuracy: float
    backward_transfer: float
    forgetting: float
    task_inference_accuracy: float | None
    wall_time_s: float
    device: str
