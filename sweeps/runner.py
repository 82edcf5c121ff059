"""Turn a sweep spec into a Ray Tune run: local Ray by default (or the cluster named by
``RAY_ADDRESS``), checkpointed trials retried on failure, every trial tracked in MLflow,
resumable from its storage path, and a report at the end."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Literal

import ray
import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import BaseModel
from ray import tune
from ray.tune import ExperimentAnalysis
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from sweeps.benchmarks import get_benchmark
from sweeps.progress import TrialProgress
from sweeps.report import SweepReport, build_report
from sweeps.settings import Settings
from sweeps.spec import SweepSpec
from sweeps.tracking import MLflowTrialLogger, ensure_experiment, experiment_name, start_parent_run

RECORD_FILE = "dlab_sweep.json"


class SweepError(RuntimeError):
    """A sweep could not be started or resumed (bad resources, unreachable Ray or MLflow)."""


class SweepRecord(BaseModel):
    """What is needed to resume or report a sweep; stored beside Tune's experiment state."""

    sweep_id: str
    spec: dict[str, Any]
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    experiment_dir: str


class SweepOutcome(BaseModel):
    """How a run (or resumed run) of a sweep ended."""

    sweep_id: str
    status: Literal["succeeded", "failed", "interrupted"]
    trials_total: int
    trials_errored: int
    experiment_dir: str
    parent_run_id: str
    report: SweepReport | None = None


def tune_domain(dimension, search_alg: str):
    """A spec dimension as a Ray Tune search-space domain."""
    if dimension.type == "grid":
        return tune.grid_search(dimension.values) if search_alg == "grid" else tune.choice(dimension.values)
    if dimension.type == "choice":
        return tune.choice(dimension.values)
    if dimension.type == "uniform":
        return tune.uniform(dimension.low, dimension.high)
    if dimension.type == "loguniform":
        return tune.loguniform(dimension.low, dimension.high)
    return tune.randint(dimension.low, dimension.high)


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """Benchmark defaults, fixed params and searched domains, merged."""
    space = {**get_benchmark(spec.benchmark).defaults, **spec.params}
    space.update({name: tune_domain(dim, spec.search_alg) for name, dim in spec.search_space.items()})
    return space


def local_resources() -> dict[str, float]:
    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def check_resources(spec: SweepSpec, available: dict[str, float]) -> None:
    """Refuse a spec whose single trial needs more than the cluster has."""
    for field, key in (("cpu", "CPU"), ("gpu", "GPU")):
        wanted = getattr(spec.resources, field)
        if wanted > available.get(key, 0.0):
            raise SweepError(f"resources.{field}: a trial asks for {wanted:g} {key} but the cluster "
                             f"has {available.get(key, 0.0):g}")


def check_mlflow(settings: Settings) -> MlflowClient:
    """An MLflow client for the configured store, or a clear error if it cannot be reached."""
    client = MlflowClient(settings.tracking_uri)
    try:
        client.search_experiments(max_results=1)
    except (MlflowException, OSError) as err:
        raise SweepError(f"MLflow tracking store {settings.tracking_uri} is unreachable: {err}") from err
    return client


def connect_ray(settings: Settings) -> None:
    """Join the configured Ray cluster, or start a local one with this machine's cores."""
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # per-task checkpoints of short trials trip this warning constantly; it is noise here
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    try:
        if settings.ray_address:
            ray.init(address=settings.ray_address, log_to_driver=False)
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError) as err:
        where = settings.ray_address or "a new local cluster"
        raise SweepError(f"cannot reach Ray at {where}: {err}") from err


def _trainable(spec: SweepSpec):
    resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    return tune.with_resources(get_benchmark(spec.benchmark).trainable, resources)


def _scheduler(spec: SweepSpec):
    if spec.scheduler == "asha":
        benchmark = get_benchmark(spec.benchmark)
        config = benchmark.config_model.model_validate({**benchmark.defaults, **spec.params})
        max_t = int(getattr(config, benchmark.iterations_param, 1))
        return ASHAScheduler(time_attr="training_iteration", max_t=max(max_t, 1), grace_period=1)
    return FIFOScheduler()


def _record_path(experiment_dir: Path) -> Path:
    return experiment_dir / RECORD_FILE


def load_record(experiment_dir: str | Path) -> SweepRecord:
    """The sweep record stored in a sweep's experiment directory."""
    path = _record_path(Path(experiment_dir))
    if not path.exists():
        raise SweepError(f"{experiment_dir} is not a dendrite-lab sweep directory (no {RECORD_FILE})")
    return SweepRecord.model_validate_json(path.read_text())


def run_sweep(spec: SweepSpec, settings: Settings | None = None, *, show_progress: bool = False,
              sweep_id: str | None = None) -> SweepOutcome:
    """Run a sweep to completion (or interruption) and build its report."""
    settings = settings or Settings()
    if not settings.ray_address:
        check_resources(spec, local_resources())
    client = check_mlflow(settings)
    sweep_id = sweep_id or f"{spec.name}-{uuid.uuid4().hex[:8]}"
    experiment_dir = settings.ray_results / sweep_id
    if experiment_dir.exists():
        raise SweepError(f"sweep {sweep_id} already exists at {experiment_dir}; resume it instead")
    connect_ray(settings)
    if settings.ray_address:
        check_resources(spec, ray.cluster_resources())
    experiment_id = ensure_experiment(client, experiment_name(spec.benchmark),
                                      None if settings.tracking_server else settings.artifact_root)
    parent_run_id = start_parent_run(client, experiment_id, spec, sweep_id)
    record = SweepRecord(sweep_id=sweep_id, spec=spec.model_dump(mode="json"),
                         tracking_uri=settings.tracking_uri, experiment_id=experiment_id,
                         parent_run_id=parent_run_id, experiment_dir=str(experiment_dir))
    experiment_dir.mkdir(parents=True)
    _record_path(experiment_dir).write_text(record.model_dump_json(indent=2))
    tuner = tune.Tuner(
        _trainable(spec),
        param_space=param_space(spec),
        tune_config=tune.TuneConfig(
            metric=spec.resolved_metric, mode=spec.mode, num_samples=spec.num_samples,
            scheduler=_scheduler(spec), max_concurrent_trials=spec.max_concurrent_trials,
            time_budget_s=spec.time_budget_s,
        ),
        run_config=tune.RunConfig(
            name=sweep_id, storage_path=str(settings.ray_results), verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[
                MLflowTrialLogger(settings.tracking_uri, experiment_id, parent_run_id, sweep_id,
                                  spec.benchmark),
                TrialProgress(spec.resolved_metric, disable=not show_progress),
            ],
        ),
    )
    return _finish(record, tuner.fit(), client, settings)


def resume_sweep(experiment_dir: str | Path, settings: Settings | None = None) -> SweepOutcome:
    """Resume an interrupted sweep: finished trials stay, unfinished and errored ones continue."""
    settings = settings or Settings()
    experiment_dir = Path(experiment_dir).resolve()
    record = load_record(experiment_dir)
    spec = SweepSpec.model_validate(record.spec)
    if not tune.Tuner.can_restore(experiment_dir):
        raise SweepError(f"{experiment_dir} holds no Ray Tune state to resume")
    client = check_mlflow(Settings(mlflow_tracking_uri=record.tracking_uri, home=settings.home))
    connect_ray(settings)
    tuner = tune.Tuner.restore(str(experiment_dir), trainable=_trainable(spec),
                               resume_unfinished=True, resume_errored=True)
    return _finish(record, tuner.fit(), client, settings)


def _saved_trial_statuses(experiment_dir: str) -> list[str]:
    """Trial statuses as Tune saved them (an interrupted trial is saved as pending/paused)."""
    return [trial.status for trial in ExperimentAnalysis(experiment_dir).trials]


def _finish(record: SweepRecord, results, client: MlflowClient, settings: Settings) -> SweepOutcome:
    spec = SweepSpec.model_validate(record.spec)
    statuses = _saved_trial_statuses(record.experiment_dir)
    total, errored = max(len(statuses), len(results)), statuses.count("ERROR")
    ended = statuses.count("TERMINATED") + errored
    status: Literal["succeeded", "failed", "interrupted"]
    if ended < max(spec.expected_trials, total):
        status = "interrupted"
    elif errored == total:
        status = "failed"
    else:
        status = "succeeded"
    report = build_report(client, record.experiment_id, record.parent_run_id, record.sweep_id,
                          list(spec.search_space), spec.resolved_metric,
                          settings.reports / record.sweep_id, log_to_mlflow=status != "interrupted")
    client.set_tag(record.parent_run_id, "dlab.status", status)
    if status != "interrupted":
        client.set_terminated(record.parent_run_id, "FINISHED" if status == "succeeded" else "FAILED")
    return SweepOutcome(sweep_id=record.sweep_id, status=status, trials_total=total,
                        trials_errored=errored, experiment_dir=record.experiment_dir,
                        parent_run_id=record.parent_run_id, report=report)


def find_sweep(sweep_id: str, settings: Settings | None = None) -> SweepRecord:
    """A sweep's record by id, from the local Ray results directory."""
    settings = settings or Settings()
    return load_record(settings.ray_results / sweep_id)


def report_sweep(sweep_id: str, settings: Settings | None = None) -> SweepReport:
    """(Re)build a sweep's report from MLflow."""
    settings = settings or Settings()
    record = find_sweep(sweep_id, settings)
    spec = SweepSpec.model_validate(record.spec)
    client = check_mlflow(Settings(mlflow_tracking_uri=record.tracking_uri, home=settings.home))
    return build_report(client, record.experiment_id, record.parent_run_id, sweep_id,
                        list(spec.search_space), spec.resolved_metric, settings.reports / sweep_id)


def outcome_json(outcome: SweepOutcome) -> str:
    return json.dumps(outcome.model_dump(), indent=2)
