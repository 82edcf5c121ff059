"""The one Ray Tune trainable: any workload (:mod:`workers.workload`) as a function of its trial
config. It reports after each unit of work, checkpoints so a failed trial resumes where it
stopped, and tells tracking where the trial runs and which config it resolved to."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from sweeps.spec import CasesDimension, expand_cases
from workers import get_workload

STATE_FILE = "trainer_state.pt"
RESOLVED_CONFIG = "resolved_config"
"""Result key carrying the trial's full validated config (first report of each trial process)."""
PLACEMENT_KEYS = ("node_id", "gpu_ids", "device")
PROGRESS = "progress"
"""Result key (and MLflow metric) of the fraction of its run a trial has done: the workload's
``step_metric`` over its last step for the trial's config (tasks seen of ``num_tasks``, env steps
of ``total_steps``); with the trial's ``time_metric``, what its time left is estimated from."""


def stopped_early(result: dict[str, Any] | None) -> bool:
    """Whether a trial's last result (or its run's final metrics) falls short of the trial's own
    budget, its ``progress`` under 1: an early-stopping scheduler ended it. Each trial has its own
    budget (a cases sweep's trials may differ in ``num_tasks``), so a step is never compared with
    the sweep's default budget."""
    progress = (result or {}).get(PROGRESS)
    return isinstance(progress, int | float) and progress < 1.0


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


def run_trial(trial_config: dict[str, Any], workload: str,
              cases: dict[str, CasesDimension] | None = None) -> None:
    """Train ``workload`` on this trial's config (its case labels expanded, then validated here,
    once), reporting and checkpointing after every unit of work; a retried trial continues from
    its checkpoint."""
    _trial_threads()
    spec = get_workload(workload)
    cases = cases or {}
    config = spec.config_model.model_validate(expand_cases(trial_config, cases))
    labels = {name: trial_config[name] for name in cases if name in trial_config}
    extras: dict[str, Any] = {**placement(), RESOLVED_CONFIG: {**config.model_dump(mode="json"), **labels}}
    last_step = spec.step_range(config)[1]

    def report(metrics: dict[str, Any], checkpoint) -> None:
        nonlocal extras
        step = metrics.get(spec.step_metric)
        progress = {PROGRESS: min(step / last_step, 1.0)} if step is not None and last_step > 0 else {}
        with tempfile.TemporaryDirectory() as directory:
            torch.save(checkpoint(), Path(directory) / STATE_FILE)
            tune.report({**metrics, **progress, **extras},
                        checkpoint=tune.Checkpoint.from_directory(directory))
        extras = placement()

    spec.train(config, report, _resume_state())


def trainable_for(workload: str, cpu: float, gpu: float, memory_mb: float | None = None,
                  cases: dict[str, CasesDimension] | None = None):
    """The trainable Ray Tune runs for ``workload``, with its per-trial resources (``memory_mb``:
    Ray's ``memory`` resource, so a node runs only as many trials at once as its memory holds)
    and the spec's cases dimensions, which each trial expands."""
    resources = {"cpu": cpu, "gpu": gpu}
    if memory_mb is not None:
        resources["memory"] = memory_mb * 2**20
    return tune.with_resources(tune.with_parameters(run_trial, workload=workload, cases=cases or {}),
                               resources)
