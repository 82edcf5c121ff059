"""Run a sweep plan on Ray Tune: local Ray by default (or the cluster named by ``RAY_ADDRESS``),
checkpointed trials retried on failure, every trial tracked in MLflow, resumable from its
storage path, and a report at the end."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import time
from collections.abc import Sequence
from pathlib import Path

import ray
import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import BaseModel
from ray import tune
from ray.tune import ExperimentAnalysis

from sweeps import mlflow_tags as tags
from sweeps.checkpoints import mend_deleted_checkpoints, remove_checkpoints
from sweeps.checks import memory_problems, resource_problems
from sweeps.clock import driving
from sweeps.cost import estimate
from sweeps.mlflow_retry import RetryingMlflowClient, root_cause
from sweeps.plan import SweepPlan
from sweeps.report import SweepReport, build_report
from sweeps.settings import Settings
from sweeps.spec import SweepSpec
from sweeps.status import SweepOutcomeStatus
from sweeps.tracking import (
    MLflowTrialLogger,
    close_lost_runs,
    ensure_experiment,
    experiment_name,
    start_parent_run,
)
from sweeps.trainable import trainable_for

RECORD_FILE = "dlab_sweep.json"
log = logging.getLogger(__name__)


class SweepError(RuntimeError):
    """A sweep could not be started or resumed (bad resources, unreachable Ray or MLflow)."""


class SweepRecord(BaseModel):
    """What is needed to resume or report a sweep; stored beside Tune's experiment state."""

    plan: str  # SweepPlan.to_json()
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    experiment_dir: str


class SweepOutcome(BaseModel):
    """How a run (or resumed run) of a sweep ended."""

    sweep_id: str
    status: SweepOutcomeStatus
    trials_total: int
    trials_errored: int
    experiment_dir: str
    parent_run_id: str
    error: str | None = None
    """Why the sweep failed, in one line (the first failed trial's error)."""
    report: SweepReport | None = None


def local_resources() -> dict[str, float]:
    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def check_resources(spec: SweepSpec, available: dict[str, float]) -> None:
    """Refuse a spec whose single trial needs more than the cluster (one node of it) has (its
    memory too, where ``available`` says: Ray's ``memory``)."""
    problems = (resource_problems(spec, [available])
                + memory_problems(spec, [available], estimate(spec).max_trial_memory_mb))
    if problems:
        raise SweepError(problems[0][1])


def check_mlflow(settings: Settings) -> MlflowClient:
    """An MLflow client for the configured store (its writes wait out a short outage), or a
    clear error naming the cause if the store cannot be reached now."""
    try:
        MlflowClient(settings.tracking_uri).search_experiments(max_results=1)
    except (MlflowException, OSError) as err:
        raise SweepError(f"MLflow tracking store {settings.tracking_uri} is unreachable: "
                         f"{root_cause(err)}") from err
    return RetryingMlflowClient(settings.tracking_uri)


GCS_ADDRESS = re.compile(r"(?P<host>[\w.-]+):(?P<port>\d+)")


def _check_gcs(address: str, wait_s: float) -> None:
    """:class:`SweepError` unless something listens at ``address`` (``host:port``; any other
    form, such as ``auto`` or a ``ray://`` URL, is left to Ray) within ``wait_s``: ``ray.init``
    waits forever for a cluster that is gone (a driver outliving its head would hang)."""
    match = GCS_ADDRESS.fullmatch(address.strip())
    if match is None:
        return
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with socket.create_connection((match["host"], int(match["port"])), timeout=5):
                return
        except OSError as err:
            if time.monotonic() > deadline:
                raise SweepError(f"cannot reach Ray at {address}: nothing answers there "
                                 f"({err.strerror or err}); is the cluster running?") from err
            time.sleep(1.0)


def connect_ray(settings: Settings) -> None:
    """Join the configured Ray cluster, or start a local one with this machine's cores."""
    if ray.is_initialized():
        return
    if settings.ray_address:
        _check_gcs(settings.ray_address, settings.ray_connect_wait_s)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # per-task checkpoints of short trials trip this warning constantly; it is noise here
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    try:
        if settings.ray_address:
            ray.init(address=settings.ray_address, log_to_driver=False)
        else:
            # a new cluster even where another Ray runs on this machine (ray.init would join it)
            ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                     log_to_driver=False)
    except (ConnectionError, RuntimeError) as err:
        where = settings.ray_address or "a new local cluster"
        raise SweepError(f"cannot reach Ray at {where}: {err}") from err


def _trainable(plan: SweepPlan):
    resources = plan.spec.resources
    memory_mb = resources.memory_mb or estimate(plan.spec).max_trial_memory_mb
    return trainable_for(plan.workload.name, resources.cpu, resources.gpu, memory_mb, plan.spec.cases)


def _record_path(experiment_dir: Path) -> Path:
    return experiment_dir / RECORD_FILE


def load_record(experiment_dir: str | Path) -> SweepRecord:
    """The sweep record stored in a sweep's experiment directory."""
    path = _record_path(Path(experiment_dir))
    if not path.exists():
        raise SweepError(f"{experiment_dir} is not a dendrite-lab sweep directory (no {RECORD_FILE})")
    return SweepRecord.model_validate_json(path.read_text())


def run_sweep(plan: SweepPlan, settings: Settings | None = None,
              callbacks: Sequence[tune.Callback] = ()) -> SweepOutcome:
    """Run a sweep to completion (or interruption) and build its report; ``callbacks`` are extra
    Tune callbacks (e.g. a progress display)."""
    settings = settings or Settings()
    spec = plan.spec
    if not settings.ray_address:
        check_resources(spec, local_resources())
    client = check_mlflow(settings)
    experiment_dir = settings.ray_results / plan.sweep_id
    if experiment_dir.exists():
        raise SweepError(f"sweep {plan.sweep_id} already exists; resume it instead")
    connect_ray(settings)
    check_resources(spec, ray.cluster_resources())  # (now with the nodes' memory)
    experiment_id = ensure_experiment(client, experiment_name(spec.benchmark),
                                      None if settings.tracking_server else settings.artifact_root)
    parent_run_id = start_parent_run(client, experiment_id, plan)
    record = SweepRecord(plan=plan.to_json(), tracking_uri=settings.tracking_uri,
                         experiment_id=experiment_id, parent_run_id=parent_run_id,
                         experiment_dir=str(experiment_dir))
    experiment_dir.mkdir(parents=True)
    _record_path(experiment_dir).write_text(record.model_dump_json(indent=2))
    tuner = tune.Tuner(
        _trainable(plan),
        param_space=plan.param_space(),
        tune_config=tune.TuneConfig(
            metric=plan.metric, mode=plan.mode, num_samples=spec.num_samples,
            search_alg=plan.searcher(), scheduler=plan.scheduler(),
            max_concurrent_trials=spec.max_concurrent_trials,
            time_budget_s=spec.time_budget_s,
            # a finished trial's worker process (torch imported, dataset cached) runs the next
            # trial instead of a fresh process paying seconds of start-up (all trials of a sweep
            # ask for the same resources); run_trial keeps no state between trials
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=plan.sweep_id, storage_path=str(settings.ray_results), verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[MLflowTrialLogger(settings.tracking_uri, experiment_id, parent_run_id, plan),
                       *callbacks],
        ),
    )
    with driving(client, parent_run_id, ray.cluster_resources().get("CPU")):
        results = _fit(tuner, plan, experiment_dir)
    return _finish(plan, record, results, client, settings)


def _fit(tuner: tune.Tuner, plan: SweepPlan, experiment_dir: Path):
    """``tuner.fit()``; then, while the sweep ended with trials that Tune failed before their
    ``max_failures`` retries were used, the sweep again from Tune's saved state with those trials
    resumed from their checkpoints.

    Tune ends a trial in ERROR without a retry when the cached worker (``reuse_actors``) it was
    handed has died, e.g. with its node: ray/tune/execution/tune_controller.py routes the failed
    reset of that worker to ``_process_trial_failure`` while the trial is PENDING, which only
    retries RUNNING trials (seen when a compose worker container was killed mid-sweep;
    ``tests/sweeps/test_runner.py`` reproduces it by killing a cached worker). Tune keeps a
    trial's failure count across a resume, so this ends once each such trial finishes or has
    failed more than ``max_failures`` times. Not done when a trial ran out of retries for real
    (a resume would retry every errored trial), when the sweep was interrupted, or when the spec
    sets a ``time_budget_s``: Tune carries the budget's remainder into a resume, and a spent
    one would end the resumed trials as TERMINATED without running them."""
    # a report may leave the sweep's metric out (a continual run's tasks off its evaluation
    # schedule report only the task just trained); the spec's metric name is already checked
    # against the workload's, and FIFO and ASHA skip such reports
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    results = tuner.fit()
    retries = 0 if plan.spec.time_budget_s is not None else plan.spec.max_failures
    for _ in range(retries):
        trials = _saved_trials(str(experiment_dir))
        errored = [trial for trial in trials if trial.status == "ERROR"]
        ended = all(trial.status in ("TERMINATED", "ERROR") for trial in trials)
        if not (errored and ended and all(trial.num_failures <= plan.spec.max_failures
                                          for trial in errored)):
            break
        results = _restored(experiment_dir, plan).fit()
    return results


def _restored(experiment_dir: str | Path, plan: SweepPlan) -> tune.Tuner:
    """The sweep's Tuner from its saved state: finished trials kept, unfinished and errored ones
    continued from their checkpoints (one deleted after Tune last saved its state: from the later
    one, see :mod:`sweeps.checkpoints`)."""
    mend_deleted_checkpoints(_saved_trials(str(experiment_dir)))
    return tune.Tuner.restore(str(experiment_dir), trainable=_trainable(plan),
                              resume_unfinished=True, resume_errored=True)


def resume_sweep(experiment_dir: str | Path, settings: Settings | None = None,
                 callbacks: Sequence[tune.Callback] = ()) -> SweepOutcome:
    """Resume an interrupted sweep: finished trials stay, unfinished and errored ones continue.
    (Tune restores its own callbacks; ``callbacks`` is accepted for symmetry and unused.)"""
    settings = settings or Settings()
    experiment_dir = Path(experiment_dir).resolve()
    record = load_record(experiment_dir)
    plan = SweepPlan.from_json(record.plan)
    if not tune.Tuner.can_restore(experiment_dir):
        raise SweepError(f"sweep {plan.sweep_id} holds no Ray Tune state to resume")
    client = check_mlflow(Settings(mlflow_tracking_uri=record.tracking_uri, home=settings.home))
    connect_ray(settings)
    with driving(client, record.parent_run_id, ray.cluster_resources().get("CPU")):
        results = _fit(_restored(experiment_dir, plan), plan, experiment_dir)
    return _finish(plan, record, results, client, settings)


def run_or_resume_sweep(plan: SweepPlan, settings: Settings | None = None) -> SweepOutcome:
    """Resume the plan's sweep from its saved Tune state, or run it if none was saved yet (a
    driver that died before Tune's first save)."""
    settings = settings or Settings()
    experiment_dir = settings.ray_results / plan.sweep_id
    if (_record_path(experiment_dir).exists() and tune.Tuner.can_restore(experiment_dir)):
        return resume_sweep(experiment_dir, settings)
    if experiment_dir.exists():  # a record but no Tune state: nothing ran, start over
        shutil.rmtree(experiment_dir)
    return run_sweep(plan, settings)


def _saved_trials(experiment_dir: str) -> list:
    """Trials as Tune saved them (an interrupted trial is saved as pending/paused)."""
    return list(ExperimentAnalysis(experiment_dir).trials)


def first_trial_error(trials: list) -> str | None:
    """The last line of the first errored trial's error (``ValueError: ...``), if any."""
    for trial in trials:
        if trial.status != "ERROR":
            continue
        path = getattr(trial, "error_file", None)
        text = Path(path).read_text(errors="replace") if path and Path(path).is_file() else ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1][:500] if lines else "the trial failed (no error text saved)"
    return None


def _finish(plan: SweepPlan, record: SweepRecord, results, client: MlflowClient,
            settings: Settings) -> SweepOutcome:
    saved = _saved_trials(record.experiment_dir)
    close_lost_runs(client, record.experiment_id, record.parent_run_id, {trial.trial_id for trial in saved})
    statuses = [trial.status for trial in saved]
    total, errored = max(len(statuses), len(results)), statuses.count("ERROR")
    ended = statuses.count("TERMINATED") + errored
    status: SweepOutcomeStatus
    if ended < max(plan.expected_trials, total):
        status = "interrupted"
    elif errored == total:
        status = "failed"
    else:
        status = "succeeded"
    report = build_report(client, record.experiment_id, record.parent_run_id, plan,
                          settings.reports / plan.sweep_id, log_to_mlflow=status != "interrupted")
    error = f"every trial failed; the first: {first_trial_error(saved)}" if status == "failed" else None
    client.set_tag(record.parent_run_id, tags.STATUS, status)
    if error:
        client.set_tag(record.parent_run_id, tags.ERROR, error)
    if status != "interrupted":
        client.set_terminated(record.parent_run_id, "FINISHED" if status == "succeeded" else "FAILED")
        if not plan.spec.keep_checkpoints:
            freed = remove_checkpoints(record.experiment_dir)
            log.info("sweep %s ended: its trials' checkpoints removed (%.1f GB; keep_checkpoints "
                     "keeps them)", plan.sweep_id, freed / 1e9)
    return SweepOutcome(sweep_id=plan.sweep_id, status=status, trials_total=total,
                        trials_errored=errored, experiment_dir=record.experiment_dir,
                        parent_run_id=record.parent_run_id, error=error, report=report)


def find_sweep(sweep_id: str, settings: Settings | None = None) -> SweepRecord:
    """A sweep's record by id, from the local Ray results directory."""
    settings = settings or Settings()
    return load_record(settings.ray_results / sweep_id)


def report_sweep(sweep_id: str, settings: Settings | None = None) -> SweepReport:
    """(Re)build a sweep's report from MLflow."""
    settings = settings or Settings()
    record = find_sweep(sweep_id, settings)
    plan = SweepPlan.from_json(record.plan)
    client = check_mlflow(Settings(mlflow_tracking_uri=record.tracking_uri, home=settings.home))
    return build_report(client, record.experiment_id, record.parent_run_id, plan,
                        settings.reports / sweep_id)
