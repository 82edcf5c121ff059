"""Multi-task reinforcement learning on Meta-World (MT10 / MT50 / one task) with multi-task SAC.

- :mod:`.config`: :class:`MTSACConfig`, one run's settings
- :mod:`.networks`: actor and critics over (input, task one-hot)
- :mod:`.replay`: the multi-task replay buffer
- :mod:`.sac`: the multi-task SAC update
- :mod:`.trainer`: envs, the collect/learn/evaluate loop, :func:`train_mtsac`
"""

from __future__ import annotations

from workers.metaworld.config import MTSACConfig
from workers.metaworld.trainer import EvalReport, MTSACTrainer, make_envs, task_names, train_mtsac
from workers.workload import Workload

METAWORLD = Workload(
    name="metaworld",
    config_model=MTSACConfig,
    train=train_mtsac,
    default_metric="success_rate",
    metric_names=frozenset({"success_rate", "success_rate_last10", "mean_return", "env_steps",
                            "grad_steps", "alpha_mean",
                            "wall_time_s", "env_steps_per_s", "eval_time_s", "subnetwork_overlap"}),
    artifacts=("subnetworks",),
    step_metric="env_steps",
    time_metric="wall_time_s",
    counters=frozenset({"evaluation"}),
    reports_per_run=lambda config: config.num_evaluations,
    step_range=lambda config: (config.eval_every, config.total_steps),  # env steps
    figure_axes={"num_segments": "number of dendritic segments per unit",
                 "kw_percent_on": "kWTA activation density (fraction of units on)"},
    metric_labels={"success_rate": "mean success rate over tasks",
                   "success_rate_last10": "mean success rate over tasks, mean of the last 10 evaluations",
                   "subnetwork_overlap": "actor winner overlap (weighted Jaccard)"},
)

__all__ = ["METAWORLD", "EvalReport", "MTSACConfig", "MTSACTrainer", "make_envs", "task_names",
           "train_mtsac"]
