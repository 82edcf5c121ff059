"""The subnetwork analysis of a multi-task SAC actor: per task, on that task's stored
observations with its one-hot context."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from workers.metaworld import MTSACConfig
from workers.metaworld.replay import MultiTaskReplay
from workers.metaworld.sac import MultiTaskSAC
from workers.metaworld.subnetworks import subnetwork_metrics


def _trainer(model: str, stored_tasks: list[int]):
    config = MTSACConfig(model=model, hidden_sizes=[40, 40], kw_percent_on=0.25, num_segments=3,
                         device="cpu", batch_size=8, buffer_size=200)
    agent = MultiTaskSAC(config, 6, 2, 3, torch.device("cpu"))
    replay = MultiTaskReplay(200, 6, 2)
    rng = np.random.default_rng(0)
    for task in stored_tasks:
        n = 20
        replay.add(rng.normal(size=(n, 6)).astype(np.float32), np.zeros((n, 2), np.float32), np.zeros(n),
                   np.zeros((n, 6), np.float32), np.zeros(n), np.full(n, task))
    return SimpleNamespace(replay=replay, agent=agent, tasks=["reach", "push", "pick"],
                           device=torch.device("cpu"))


def test_actor_subnetworks_per_task_with_one_hot_context() -> None:
    metrics = subnetwork_metrics(_trainer("dendritic", [0, 1, 2]))
    analysis = metrics["subnetworks"]
    assert analysis["tasks"] == ["reach", "push", "pick"]
    assert [layer["winners_per_input"] for layer in analysis["layers"]] == [10.0, 10.0]  # 25% of 40
    assert all(len(layer["overlap"]) == 3 for layer in analysis["layers"])
    assert 0.0 <= metrics["subnetwork_overlap"] < 1.0


def test_only_tasks_with_stored_observations_are_analysed() -> None:
    analysis = subnetwork_metrics(_trainer("sparse_mlp", [2, 0]))["subnetworks"]
    assert analysis["tasks"] == ["reach", "pick"]
    assert subnetwork_metrics(_trainer("dendritic", [])) == {}
