"""The subnetwork analysis (:mod:`dendrites.analysis`) of a multi-task SAC policy: per task, the
hidden units of the actor that win on that task's observations (from the replay buffer, with the
task's one-hot context), and the task-by-task overlap."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch

from dendrites.analysis import analyse_subnetworks, subnetwork_report
from dendrites.context import one_hot_context
from workers.metaworld.replay import MultiTaskReplay
from workers.metaworld.sac import MultiTaskSAC


class MTSACTrainer(Protocol):
    """What the analysis reads of a :class:`workers.metaworld.trainer.MTSACTrainer`."""

    replay: MultiTaskReplay
    agent: MultiTaskSAC
    tasks: list[str]
    device: torch.device

SUBNETWORKS = "subnetworks"
SUBNETWORK_OVERLAP = "subnetwork_overlap"
SAMPLES_PER_TASK = 512


def subnetwork_metrics(trainer: MTSACTrainer, samples: int = SAMPLES_PER_TASK) -> dict[str, Any]:
    """The actor's analysis over the tasks with stored observations (the latest ``samples`` each),
    as report entries; empty when the buffer holds none."""
    replay, body = trainer.replay, trainer.agent.actor.body
    stored = replay.tasks[: replay.size]
    tasks = [t for t in range(len(trainer.tasks)) if (stored == t).any()]
    if not tasks:
        return {}
    batches = []
    for task in tasks:
        index = np.flatnonzero(stored == task)[-samples:]
        obs = torch.as_tensor(replay.obs[index], device=trainer.device)
        ids = torch.full((len(index),), task, dtype=torch.long, device=trainer.device)
        batches.append([(obs, one_hot_context(ids, body.num_tasks))])
    layers = analyse_subnetworks(body.net, batches)
    analysis = subnetwork_report(layers, [trainer.tasks[t] for t in tasks])
    return {SUBNETWORKS: analysis, SUBNETWORK_OVERLAP: analysis["mean_overlap"]}
