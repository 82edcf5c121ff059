"""Continual learning on permuted-image task streams (the paper's permuted MNIST).

- :mod:`.config`: :class:`ContinualConfig`, one run's settings
- :mod:`.presets`: the ``paper`` / ``project`` presets and the paper table's row variants
- :mod:`.datasets`: the image datasets (bundled digits / MNIST 5k, full MNIST from files,
  full Fashion-MNIST from the Debian package)
- :mod:`.tasks`: the permuted-task stream
- :mod:`.trainer`: :class:`ContinualTrainer` and :func:`train_continual`
- :mod:`.metrics`: accuracy matrix, backward transfer, forgetting, per-task reports
"""

from __future__ import annotations

from workers.continual.config import ContinualConfig
from workers.continual.datasets import DatasetNotFoundError, load_dataset
from workers.continual.metrics import ContinualResults, TaskReport
from workers.continual.trainer import ContinualTrainer, train_continual
from workers.workload import Workload

CONTINUAL = Workload(
    name="continual",
    config_model=ContinualConfig,
    train=train_continual,
    default_metric="mean_accuracy",
    metric_names=frozenset({"mean_accuracy", "backward_transfer", "forgetting", "train_loss",
                            "task_time_s", "wall_time_s", "task_inference_accuracy",
                            "num_clusters", "subnetwork_overlap"}),
    step_metric="tasks_seen",
    time_metric="wall_time_s",
    counters=frozenset({"task"}),
    reports_per_run=lambda config: config.num_tasks,
    step_range=lambda config: (1, config.num_tasks),  # tasks seen
    artifacts=("accuracy_matrix", "subnetworks"),
    figure_axes={"num_segments": "number of dendritic segments per unit",
                 "kw_percent_on": "kWTA activation density (fraction of units on)",
                 "weight_sparsity": "feed-forward weight sparsity (fraction of zero weights)",
                 "num_tasks": "number of tasks"},
    metric_labels={"mean_accuracy": "final mean accuracy (fraction)",
                   "forgetting": "forgetting (accuracy lost, fraction)",
                   "subnetwork_overlap": "winner overlap (weighted Jaccard)"},
)

__all__ = ["CONTINUAL", "ContinualConfig", "ContinualResults", "ContinualTrainer",
           "DatasetNotFoundError", "TaskReport", "load_dataset", "train_continual"]
