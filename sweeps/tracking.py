"""MLflow tracking of sweeps through ``MlflowClient``: one experiment per benchmark, a parent run
per sweep, a nested child run per trial with its config, per-task metric history and artifacts."""

from __future__ import annotations

import json
import subprocess
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray import tune

from sweeps import mlflow_tags as tags
from sweeps.plan import SweepPlan
from sweeps.trainable import PLACEMENT_KEYS, RESOLVED_CONFIG

MAX_PARAM_LENGTH = 6000


def project_version() -> str:
    try:
        return version("dendrite-lab")
    except PackageNotFoundError:
        return "unknown"


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).parent, check=False)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def experiment_name(benchmark: str) -> str:
    return f"dendrite-lab/{benchmark}"


def ensure_experiment(client: MlflowClient, name: str, artifact_root: Path | None) -> str:
    """The id of experiment ``name``, created if missing: with a local artifact location under
    ``artifact_root``, or (``None``, for a tracking server) the server's own artifact store."""
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    if artifact_root is None:
        return client.create_experiment(name)
    location = (artifact_root / name.replace("/", "_")).resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


def log_json_artifact(client: MlflowClient, run_id: str, payload: Any, filename: str) -> None:
    """Write ``payload`` as JSON and attach it to the run."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / filename
        path.write_text(json.dumps(payload, indent=2, default=str))
        client.log_artifact(run_id, str(path))


def _params(values: dict[str, Any]) -> list[Param]:
    return [Param(k, json.dumps(v) if not isinstance(v, str) else v)
            for k, v in sorted(values.items()) if len(str(v)) <= MAX_PARAM_LENGTH]


def start_parent_run(client: MlflowClient, experiment_id: str, plan: SweepPlan) -> str:
    """Create the sweep's parent run with the spec as params, tags and artifact."""
    spec = plan.spec
    run_tags = {tags.SWEEP_ID: plan.sweep_id, tags.SPEC_HASH: spec.spec_hash(), tags.KIND: tags.KIND_SWEEP,
                tags.VERSION: project_version(), tags.GIT_SHA: git_sha(), tags.RUN_NAME: spec.name}
    run = client.create_run(experiment_id, tags=run_tags)
    spec_params = {"benchmark": spec.benchmark, "metric": plan.metric, "mode": spec.mode,
                   "scheduler": spec.scheduler, "search_alg": spec.search_alg,
                   "num_samples": spec.num_samples,
                   "search_space": sorted(spec.search_space),
                   **{f"params.{k}": v for k, v in spec.params.items()}}
    client.log_batch(run.info.run_id, params=_params(spec_params))
    log_json_artifact(client, run.info.run_id, spec.model_dump(mode="json"), "spec.json")
    return run.info.run_id


def child_runs(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list:
    """All trial runs of a sweep."""
    return client.search_runs([experiment_id],
                              filter_string=f"tags.`{tags.PARENT_RUN}` = '{parent_run_id}'",
                              max_results=10_000)


class MLflowTrialLogger(tune.Callback):
    """Tune callback (runs in the driver) mirroring every trial into a nested MLflow run.

    Idempotent across restores: a trial's run is found again by its ``dlab.trial_id`` tag, so a
    resumed sweep continues the same runs and loses nothing already recorded.
    """

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str, plan: SweepPlan) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.sweep_id = plan.sweep_id
        self.step_metric = plan.workload.step_metric
        self.artifacts = plan.workload.artifacts
        self._client: MlflowClient | None = None
        self._runs: dict[str, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"], state["_runs"] = None, {}
        return state

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(self.tracking_uri)
        return self._client

    def _run_id(self, trial) -> str:
        if trial.trial_id in self._runs:
            return self._runs[trial.trial_id]
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{tags.TRIAL_ID}` = '{trial.trial_id}' and "
                          f"tags.`{tags.SWEEP_ID}` = '{self.sweep_id}'",
        )
        if found:
            run_id = found[0].info.run_id
        else:
            run_tags = {tags.PARENT_RUN: self.parent_run_id, tags.SWEEP_ID: self.sweep_id,
                        tags.TRIAL_ID: trial.trial_id, tags.KIND: tags.KIND_TRIAL,
                        tags.VERSION: project_version(), tags.RUN_NAME: str(trial)}
            if "seed" in trial.config:
                run_tags[tags.SEED] = str(trial.config["seed"])
            run_id = self.client.create_run(self.experiment_id, tags=run_tags).info.run_id
        self._runs[trial.trial_id] = run_id
        return run_id

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._run_id(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        run_id = self._run_id(trial)
        step = int(result.get(self.step_metric, result.get("training_iteration", 0)))
        timestamp = int(result.get("timestamp", 0) * 1000)
        metrics = [Metric(k, float(v), timestamp, step) for k, v in result.items()
                   if isinstance(v, int | float) and not isinstance(v, bool) and k not in _TUNE_KEYS]
        placement = [RunTag(f"{tags.PLACEMENT_PREFIX}{k}", str(result[k]))
                     for k in PLACEMENT_KEYS if k in result]
        params = _params(result[RESOLVED_CONFIG]) if RESOLVED_CONFIG in result else []
        if params and self.client.get_run(run_id).data.params:
            params = []  # a retried trial: its params were logged by its first attempt
        self.client.log_batch(run_id, metrics=metrics, params=params, tags=placement)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        run_id = self._run_id(trial)
        result = {k: v for k, v in (trial.last_result or {}).items() if k != RESOLVED_CONFIG}
        for name in self.artifacts:
            if name in result:
                log_json_artifact(self.client, run_id, result[name], f"{name}.json")
        log_json_artifact(self.client, run_id, {"config": trial.config, "last_result": result},
                          "results.json")
        self.client.set_terminated(run_id, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        run_id = self._run_id(trial)
        self.client.set_tag(run_id, tags.ERROR, str(trial.error_file or "trial failed"))
        self.client.set_terminated(run_id, "FAILED")


_TUNE_KEYS = {"timestamp", "time_this_iter_s", "time_total_s", "pid", "time_since_restore",
              "iterations_since_restore", "training_iteration", "done", "node_ip",
              "checkpoint_dir_name", "date", "hostname", "should_checkpoint"}
