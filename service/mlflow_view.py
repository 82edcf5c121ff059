"""A sweep's trials as the service sees them: read from the MLflow runs its driver writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from service.schemas import BestTrialSoFar, TrialCounts, TrialInfo
from sweeps import mlflow_tags as tags
from sweeps.status import TRIAL_STATUS_OF_RUN
from sweeps.tracking import child_runs, experiment_name


def find_parent_run(client: MlflowClient, benchmark: str, sweep_id: str) -> Run | None:
    """The sweep's parent run (the driver creates it when the sweep starts), if there is one yet."""
    experiment = client.get_experiment_by_name(experiment_name(benchmark))
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{tags.SWEEP_ID}` = '{sweep_id}' and tags.`{tags.KIND}` = '{tags.KIND_SWEEP}'",
        max_results=1,
    )
    return runs[0] if runs else None


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text


def _time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def trial_infos(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list[TrialInfo]:
    """Every trial run of the sweep, oldest first."""
    trials = [
        TrialInfo(trial_id=run.data.tags.get(tags.TRIAL_ID, run.info.run_id), run_id=run.info.run_id,
                  status=TRIAL_STATUS_OF_RUN.get(run.info.status, "running"),
                  config={k: _value(v) for k, v in run.data.params.items()},
                  metrics=dict(run.data.metrics), started_at=_time(run.info.start_time),
                  ended_at=_time(run.info.end_time))
        for run in child_runs(client, experiment_id, parent_run_id)
    ]
    return sorted(trials, key=lambda t: (t.started_at or datetime.min.replace(tzinfo=UTC), t.trial_id))


def count_trials(trials: list[TrialInfo], expected: int, ended: bool = False) -> TrialCounts:
    """Trials by status; the expected trials without a run yet are pending, or never started
    once the sweep has ended (so an ended sweep has no pending or running trial)."""
    counts = TrialCounts()
    for trial in trials:
        setattr(counts, trial.status, getattr(counts, trial.status) + 1)
    counts.pending += max(expected - len(trials), 0)
    if ended:
        counts.never_started, counts.pending = counts.pending, 0
        counts.cancelled, counts.running = counts.cancelled + counts.running, 0
    return counts


def best_trial(trials: list[TrialInfo], metric: str, mode: str) -> BestTrialSoFar | None:
    """The trial with the best latest value of ``metric`` so far."""
    scored = [t for t in trials if metric in t.metrics]
    if not scored:
        return None
    pick = max if mode == "max" else min
    best = pick(scored, key=lambda t: t.metrics[metric])
    return BestTrialSoFar(trial_id=best.trial_id, metric=metric, value=best.metrics[metric],
                          config=best.config)


def settle_runs(client: MlflowClient, experiment_id: str, parent_run_id: str, sweep_status: str,
                trial_end: str, parent_end: str) -> None:
    """Close the runs an ended sweep left open: its unfinished trials' runs end ``trial_end``
    (KILLED/FAILED), the parent run ``parent_end`` with the sweep's status tag; finished trials
    keep their results. Idempotent: a second call changes nothing."""
    for run in child_runs(client, experiment_id, parent_run_id):
        if run.info.status in ("RUNNING", "SCHEDULED"):
            client.set_terminated(run.info.run_id, trial_end)
    parent = client.get_run(parent_run_id)
    if tags.STATUS not in parent.data.tags or sweep_status == "cancelled":
        client.set_tag(parent_run_id, tags.STATUS, sweep_status)
    if parent.info.status in ("RUNNING", "SCHEDULED"):
        client.set_terminated(parent_run_id, parent_end)
