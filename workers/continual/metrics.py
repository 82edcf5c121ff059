"""Continual-learning metrics over the accuracy matrix ``R[i][j]`` (accuracy on task ``j`` after
training task ``i``; row ``i`` holds tasks ``0..i``). With an evaluation schedule
(``ContinualConfig.eval_tasks``) a row after a task off the schedule holds only its diagonal
``R[i][i]`` (the task just trained); the other entries are ``None``. The last row is always full."""

from __future__ import annotations

from pydantic import BaseModel, Field

AccuracyMatrix = list[list[float | None]]


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
    accuracy on ``j`` (over the rows that evaluated it, its diagonal always among them) minus
    the final one. 0 for a single task."""
    last = len(matrix) - 1
    if last == 0:
        return 0.0
    drops = [max(matrix[i][j] for i in range(j, last) if matrix[i][j] is not None)
             - matrix[last][j] for j in range(last)]
    return sum(drops) / last


class TaskReport(BaseModel):
    """What is known after training one task: reported to the progress callback."""

    task: int = Field(description="index of the task just trained (0-based)")
    tasks_seen: int
    mean_accuracy: float | None = Field(
        description="mean test accuracy over the tasks seen so far (None after a task the "
                    "evaluation schedule skips)")
    accuracies: list[float | None] = Field(
        description="test accuracy on each task seen so far (None: not evaluated this time)")
    task_inference_accuracy: float | None = Field(
        None, description="fraction of the evaluated test samples whose inferred context "
                          "(nearest prototype, or its cluster's founding task) is their own task")
    task_inference_accuracies: list[float | None] | None = Field(
        None, description="task_inference_accuracy per task seen (None: not evaluated)")
    num_clusters: int | None = Field(
        None, description="online prototypes: clusters found so far (no task boundaries)")
    train_loss: float = Field(description="mean training loss over the task's last epoch")
    backward_transfer: float | None
    forgetting: float | None
    task_time_s: float = Field(description="wall time of this task's training and evaluation")
    wall_time_s: float = Field(description="wall time since the run started")

    def metrics(self) -> dict[str, float]:
        """The flat numbers of this report (per-task accuracies as ``accuracy_task_<j>``, per-task
        task inference as ``task_inference_accuracy_task_<j>``; entries not evaluated left out)."""
        flat = self.model_dump(exclude={"accuracies", "task_inference_accuracies"}, exclude_none=True)
        per_task = {"accuracy_task": self.accuracies,
                    "task_inference_accuracy_task": self.task_inference_accuracies or []}
        flat.update({f"{name}_{j}": value for name, values in per_task.items()
                     for j, value in enumerate(values) if value is not None})
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
