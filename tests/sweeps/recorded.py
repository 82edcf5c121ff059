"""A sweep as MLflow holds it once its trials have ended, written straight into a real MLflow
store (no Ray): a parent run and one finished child run per trial, tagged as the driver tags
them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from sweeps import mlflow_tags as tags


def recorded_sweep(root: Path, trials: list[tuple[dict[str, Any], dict[str, float]]]
                   ) -> tuple[MlflowClient, str, str]:
    """``trials``: each trial's searched params and final metrics. Returns the client, the
    experiment id and the parent run id."""
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.create_experiment("recorded", artifact_location=(root / "artifacts").as_uri())
    parent = client.create_run(experiment, tags={tags.KIND: tags.KIND_SWEEP}).info.run_id
    for index, (params, metrics) in enumerate(trials):
        name = " ".join(f"{k}={v}" for k, v in params.items())
        run = client.create_run(experiment, tags={tags.PARENT_RUN: parent, tags.KIND: tags.KIND_TRIAL,
                                                  tags.RUN_NAME: name, tags.TRIAL_INDEX: str(index)})
        for key, value in params.items():
            client.log_param(run.info.run_id, key, value)
        for key, value in metrics.items():
            client.log_metric(run.info.run_id, key, value)
        client.set_terminated(run.info.run_id, "FINISHED")
    client.set_terminated(parent, "FINISHED")
    return client, experiment, parent
