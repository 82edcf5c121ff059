"""Ray Tune function trainables wrapping the workers: report after every task, checkpoint so a
failed trial resumes where it stopped instead of restarting."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from ray import tune

from workers.continual import ContinualTrainer, train
from workers.continual_metrics import TaskReport

STATE_FILE = "trainer_state.pt"


def continual_metrics(report: TaskReport, trainer: ContinualTrainer) -> dict[str, Any]:
    """The metrics a continual trial reports after each task (numbers, plus the matrix so far)."""
    metrics: dict[str, Any] = {
        "task": report.task,
        "tasks_seen": report.tasks_seen,
        "mean_accuracy": report.mean_accuracy,
        "backward_transfer": report.backward_transfer,
        "forgetting": report.forgetting,
        "train_loss": report.train_loss,
        "task_time_s": report.task_time_s,
        "wall_time_s": report.wall_time_s,
        "accuracy_matrix": [list(row) for row in trainer.accuracy_matrix],
    }
    if report.task_inference_accuracy is not None:
        metrics["task_inference_accuracy"] = report.task_inference_accuracy
    metrics.update({f"accuracy_task_{j}": acc for j, acc in enumerate(report.accuracies)})
    return metrics


def _trial_threads() -> None:
    cpus = int(float(os.environ.get("OMP_NUM_THREADS", "0") or 0))
    if cpus > 0:
        torch.set_num_threads(cpus)


def continual_trainable(config: dict[str, Any]) -> None:
    """Tune trainable for :func:`workers.continual.train`; resumes from the trial's checkpoint."""
    _trial_threads()
    resume_state = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            resume_state = torch.load(Path(directory) / STATE_FILE, weights_only=False)

    def report(task_report: TaskReport, trainer: ContinualTrainer) -> None:
        with tempfile.TemporaryDirectory() as directory:
            torch.save(trainer.state_dict(), Path(directory) / STATE_FILE)
            tune.report(continual_metrics(task_report, trainer),
                        checkpoint=tune.Checkpoint.from_directory(directory))

    train(config, report, resume_state=resume_state)
