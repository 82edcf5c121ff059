"""Ray Tune function trainables wrapping the workers: report after every task, checkpoint so a
failed trial resumes where it stopped instead of restarting."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from workers.continual import ContinualTrainer, train
from workers.continual_metrics import TaskReport
from workers.metaworld_mt import EvalReport, MTSACTrainer
from workers.metaworld_mt import train as train_mt

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


def _resume_state() -> dict[str, Any] | None:
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        return torch.load(Path(directory) / STATE_FILE, weights_only=False)


def placement() -> dict[str, str]:
    """Where this trial runs: Ray node, the GPUs Ray gave it, and the torch device it uses."""
    context = ray.get_runtime_context()
    gpus = ray.get_gpu_ids()
    return {"node_id": context.get_node_id(), "gpu_ids": ",".join(str(g) for g in gpus) or "none",
            "device": "cuda" if torch.cuda.is_available() else "cpu"}


def _report_with_checkpoint(metrics: dict[str, Any], state: dict[str, Any]) -> None:
    metrics = {**metrics, **placement()}
    with tempfile.TemporaryDirectory() as directory:
        torch.save(state, Path(directory) / STATE_FILE)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


def continual_trainable(config: dict[str, Any]) -> None:
    """Tune trainable for :func:`workers.continual.train`; resumes from the trial's checkpoint."""
    _trial_threads()

    def report(task_report: TaskReport, trainer: ContinualTrainer) -> None:
        _report_with_checkpoint(continual_metrics(task_report, trainer), trainer.state_dict())

    train(config, report, resume_state=_resume_state())


def mt_sac_trainable(config: dict[str, Any]) -> None:
    """Tune trainable for :func:`workers.metaworld_mt.train`: reports (and checkpoints) after
    every evaluation; a retried trial continues from its last checkpoint."""
    _trial_threads()

    def report(eval_report: EvalReport, trainer: MTSACTrainer) -> None:
        _report_with_checkpoint(eval_report.metrics(), trainer.state_dict())

    train_mt(config, report, resume_state=_resume_state())
