"""MLflow tracking of sweeps through ``MlflowClient``: one experiment per benchmark, a parent run
per sweep, a nested child run per trial with its config, per-task metric history and artifacts."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray import tune

from sweeps import mlflow_tags as tags
from sweeps.figures import TRIAL_FIGURES
from sweeps.mlflow_retry import RetryingMlflowClient
from sweeps.plan import SweepPlan
from sweeps.trainable import PLACEMENT_KEYS, RESOLVED_CONFIG, stopped_early

if TYPE_CHECKING:
    from sweeps.search_report import SearchSummary

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


RUNS_VIEW = "workflowType=machine_learning"
"""MLflow 3's UI opens an experiment in its GenAI (traces) view unless the URL asks for the
machine-learning workflow; every link to a sweep asks for it."""


def mlflow_ui_url(ui: str, experiment_id: str, run_id: str | None = None) -> str:
    """The MLflow UI page of an experiment's runs (or of one run), in the runs view."""
    page = f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs"
    return f"{page}/{run_id}?{RUNS_VIEW}" if run_id else f"{page}?{RUNS_VIEW}"


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


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, default=str))


def log_json_artifact(client: MlflowClient, run_id: str, payload: Any, filename: str) -> None:
    """Write ``payload`` as JSON and attach it to the run."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / filename
        _write_json(path, payload)
        client.log_artifact(run_id, str(path))


def _params(values: dict[str, Any]) -> list[Param]:
    return [Param(k, json.dumps(v) if not isinstance(v, str) else v)
            for k, v in sorted(values.items()) if len(str(v)) <= MAX_PARAM_LENGTH]


def format_value(value: Any) -> str:
    """A parameter value as a short label (``5``, ``0.05``, ``[256,256]``, ``dendritic``)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def trial_run_name(config: dict[str, Any], searched: list[str]) -> str:
    """A trial's run name: its searched values, ``num_segments=5 seed=1``."""
    return " ".join(f"{name}={format_value(config[name])}" for name in searched if name in config)


def describe_dimension(dimension) -> str:
    """``grid [1, 5]``, ``loguniform [0.001, 0.1]``: a search dimension with its values."""
    if hasattr(dimension, "values"):
        return f"{dimension.type} [{', '.join(format_value(v) for v in dimension.values)}]"
    return f"{dimension.type} [{format_value(dimension.low)}, {format_value(dimension.high)}]"


def sweep_note(plan: SweepPlan) -> str:
    """The parent run's description (Markdown, shown on its MLflow page)."""
    spec = plan.spec
    fixed = ", ".join(f"{k}={format_value(v)}" for k, v in spec.params.items()) or "none"
    space = "\n".join(f"- `{name}`: {describe_dimension(dim)}" for name, dim in spec.search_space.items())
    return (f"{spec.description or spec.name}\n\n"
            f"Benchmark `{spec.benchmark}`; metric `{plan.metric}` ({spec.mode}); "
            f"{plan.expected_trials} trials ({spec.search_alg} search, {spec.scheduler} scheduler).\n\n"
            f"Fixed: {fixed}\n\nSearched:\n{space}\n\n"
            f"Child runs are named by their searched values; this run carries the best trial and "
            f"the mean/std over seeds of each setting as metrics, and the report under `report/`.")


def start_parent_run(client: MlflowClient, experiment_id: str, plan: SweepPlan) -> str:
    """Create the sweep's parent run with the spec as params, tags and artifact, its description as
    the run's note."""
    spec = plan.spec
    run_tags = {tags.SWEEP_ID: plan.sweep_id, tags.SPEC_HASH: spec.spec_hash(), tags.KIND: tags.KIND_SWEEP,
                tags.VERSION: project_version(), tags.GIT_SHA: git_sha(), tags.RUN_NAME: spec.name,
                tags.NOTE: sweep_note(plan)}
    run = client.create_run(experiment_id, tags=run_tags)
    spec_params = {"benchmark": spec.benchmark, "metric": plan.metric, "mode": spec.mode,
                   "scheduler": spec.scheduler, "search_alg": spec.search_alg,
                   "num_samples": spec.num_samples, "expected_trials": plan.expected_trials,
                   "search_space": "; ".join(f"{name}: {describe_dimension(dim)}"
                                             for name, dim in spec.search_space.items()),
                   **{f"search.{k}": describe_dimension(d) for k, d in spec.search_space.items()},
                   **{f"params.{k}": v for k, v in spec.params.items()}}
    client.log_batch(run.info.run_id, params=_params(spec_params))
    log_json_artifact(client, run.info.run_id, spec.model_dump(mode="json"), "spec.json")
    return run.info.run_id


_METRIC_NAME = re.compile(r"[^\w./\- :]")


def metric_key(*parts: str) -> str:
    """A valid MLflow metric name from ``parts`` (other characters become ``_``)."""
    return _METRIC_NAME.sub("_", ".".join(p for p in parts if p))


def _step_scale(values: list[float]) -> int:
    """The power of ten that makes every value an integer (MLflow steps are integers), at most 10^6."""
    for scale in (1, 10, 100, 1000, 10_000, 100_000, 1_000_000):
        if all(abs(v * scale - round(v * scale)) < 1e-6 for v in values):
            return scale
    return 1_000_000


def log_sweep_summary(client: MlflowClient, run_id: str, summary, group_by: list[str],
                      metrics: list[str], curve_axes: list[str], best: dict[str, Any] | None) -> None:
    """The sweep's results on its parent run: the best trial (metric ``best_<metric>``, tags with
    its run), ``<metric>_mean`` / ``_std`` per setting (``<metric>_mean.num_segments_5``) and, per
    numeric swept axis, the curve ``<metric>_mean_vs_<axis>`` stepped by the axis value (times
    ``10^d`` when the values are fractions: the name then ends in ``_x10^d``)."""
    records = summary.to_dict("records")
    entries: list[Metric] = []
    if best is not None:
        entries.append(Metric(f"best_{metrics[0]}", best["value"], 0, 0))
        client.set_tag(run_id, tags.BEST_RUN_ID, best["run_id"])
        client.set_tag(run_id, tags.BEST_TRIAL, best["run_name"])
    for row in records:
        setting = ".".join(f"{g}_{format_value(row[g])}" for g in group_by)
        for metric in metrics:
            for stat in ("mean", "std"):
                value = row.get(f"{metric}_{stat}")
                if value is not None and value == value:  # not NaN
                    entries.append(Metric(metric_key(f"{metric}_{stat}", setting), float(value), 0, 0))
    for axis in curve_axes:
        others = [g for g in group_by if g != axis]
        scale = _step_scale([float(r[axis]) for r in records])
        for row in records:
            label = ".".join(f"{g}_{format_value(row[g])}" for g in others)
            for metric in metrics:
                value = row.get(f"{metric}_mean")
                if value is None or value != value:
                    continue
                name = f"{metric}_mean_vs_{axis}" + (f"_x{scale}" if scale > 1 else "")
                entries.append(Metric(metric_key(name, label), float(value), 0,
                                      round(float(row[axis]) * scale)))
    for start in range(0, len(entries), 1000):
        client.log_batch(run_id, metrics=entries[start : start + 1000])


def log_search_summary(client: MlflowClient, run_id: str, search: SearchSummary) -> None:
    """A search's summary on its parent run: ``search.trials_complete`` / ``search.trials_stopped``,
    ``search.stopped_at.<step>`` (trials stopped there), ``importance.<objective>.<param>`` and,
    stepped by trial index, ``<metric>_by_trial`` with its running best ``<metric>_best_so_far``."""
    metric = search.objectives[0].metric
    entries = [Metric("search.trials_complete", search.trials_complete, 0, 0),
               Metric("search.trials_stopped", search.trials_stopped, 0, 0)]
    entries += [Metric(metric_key("search.stopped_at", step), count, 0, 0)
                for step, count in search.stopped_at.items()]
    entries += [Metric(metric_key("importance", objective, param), value, 0, 0)
                for objective, found in search.importances.items() for param, value in found.items()]
    for point in search.history:
        entries += [Metric(f"{metric}_by_trial", point.value, 0, point.index),
                    Metric(f"{metric}_best_so_far", point.best, 0, point.index)]
    for start in range(0, len(entries), 1000):
        client.log_batch(run_id, metrics=entries[start : start + 1000])


def child_runs(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list:
    """All trial runs of a sweep."""
    return client.search_runs([experiment_id],
                              filter_string=f"tags.`{tags.PARENT_RUN}` = '{parent_run_id}'",
                              max_results=10_000)


def close_lost_runs(client: MlflowClient, experiment_id: str, parent_run_id: str, trial_ids: set[str]) -> int:
    """End as KILLED the sweep's trial runs still RUNNING for a trial Tune's saved state does not
    know: created by a driver killed before Tune saved that trial, which the resumed search then
    created again (an optuna search suggests it again, to a new trial id). Returns how many."""
    lost = [run for run in child_runs(client, experiment_id, parent_run_id)
            if run.info.status == "RUNNING" and run.data.tags.get(tags.TRIAL_ID) not in trial_ids]
    for run in lost:
        client.set_tag(run.info.run_id, tags.ERROR, "lost with its driver before Ray Tune saved the "
                                                    "trial; the resumed sweep ran it as a new trial")
        client.set_terminated(run.info.run_id, "KILLED")
    return len(lost)


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
        self.not_metrics = {*_TUNE_KEYS, plan.workload.step_metric, *plan.workload.counters}
        self.artifacts = plan.workload.artifacts
        self.searched = plan.searched
        self.benchmark = plan.spec.benchmark
        self._client: MlflowClient | None = None
        self._runs: dict[str, str] = {}
        self._recorded: set[str] = set()  # runs found already FINISHED: left as they are
        self._last_step: dict[str, int] = {}  # per run: the last step whose metrics it holds

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"], state["_runs"], state["_recorded"] = None, {}, set()
        state["_last_step"] = {}
        return state

    @property
    def client(self) -> MlflowClient:
        """The tracking client; its writes wait out a short store outage (bounded retries)."""
        if self._client is None:
            self._client = RetryingMlflowClient(self.tracking_uri)
        return self._client

    def _run_id(self, trial, trials: list | None = None) -> str:
        """The trial's MLflow run, found again or created (``trials``: Tune's trials in the
        order they were created, which gives a new run its ``dlab.trial_index``)."""
        if trial.trial_id in self._runs:
            return self._runs[trial.trial_id]
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{tags.TRIAL_ID}` = '{trial.trial_id}' and "
                          f"tags.`{tags.SWEEP_ID}` = '{self.sweep_id}'",
        )
        if found:
            run_id = found[0].info.run_id
            if found[0].info.status == "FINISHED":
                # finished before a driver restart that Tune's saved state did not see yet: the
                # trial may run (or complete) again, but its recorded results stay as they were
                self._recorded.add(run_id)
            self._last_step[run_id] = self._recorded_step(found[0])
        else:
            run_tags = {tags.PARENT_RUN: self.parent_run_id, tags.SWEEP_ID: self.sweep_id,
                        tags.TRIAL_ID: trial.trial_id, tags.KIND: tags.KIND_TRIAL,
                        tags.VERSION: project_version(),
                        tags.RUN_NAME: trial_run_name(trial.config, self.searched) or str(trial)}
            if "seed" in trial.config:
                run_tags[tags.SEED] = str(trial.config["seed"])
            if trials is not None and trial in trials:
                run_tags[tags.TRIAL_INDEX] = str(trials.index(trial))
            run_id = self.client.create_run(self.experiment_id, tags=run_tags).info.run_id
        self._runs[trial.trial_id] = run_id
        return run_id

    def _recorded_step(self, run) -> int:
        """The last step a run found again (after a driver restart) holds metrics for."""
        return max((m.step for key in run.data.metrics
                    for m in self.client.get_metric_history(run.info.run_id, key)), default=-1)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._run_id(trial, trials)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        run_id = self._run_id(trial)
        if run_id in self._recorded:
            return
        step = int(result.get(self.step_metric, result.get("training_iteration", 0)))
        if step <= self._last_step.get(run_id, -1):
            # a step this run already holds, reported again by a trial that went back to an
            # earlier checkpoint (its state saved before the result, e.g. an interrupted sweep
            # resumed): one point per step, the first one recorded
            return
        self._last_step[run_id] = step
        timestamp = int(result.get("timestamp", 0) * 1000)
        metrics = [Metric(k, float(v), timestamp, step) for k, v in result.items()
                   if isinstance(v, int | float) and not isinstance(v, bool) and k not in self.not_metrics]
        placement = [RunTag(f"{tags.PLACEMENT_PREFIX}{k}", str(result[k]))
                     for k in PLACEMENT_KEYS if k in result]
        params = _params(result[RESOLVED_CONFIG]) if RESOLVED_CONFIG in result else []
        if params and self.client.get_run(run_id).data.params:
            params = []  # a retried trial: its params were logged by its first attempt
        self.client.log_batch(run_id, metrics=metrics, params=params, tags=placement)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        run_id = self._run_id(trial)
        if run_id in self._recorded:
            return
        result = {k: v for k, v in (trial.last_result or {}).items() if k != RESOLVED_CONFIG}
        name_tag = self.client.get_run(run_id).data.tags.get(tags.RUN_NAME, trial.trial_id)
        with tempfile.TemporaryDirectory() as directory:  # every file, then one MLflow write
            folder = Path(directory)
            for name in self.artifacts:
                if name not in result:
                    continue
                _write_json(folder / f"{name}.json", result[name])
                if name in TRIAL_FIGURES:
                    title = f"{name.replace('_', ' ')}, {self.benchmark}\n{name_tag}"
                    figure = TRIAL_FIGURES[name](result[name], title)
                    figure.savefig(folder / f"{name}.png")
                    plt.close(figure)
            _write_json(folder / "results.json", {"config": trial.config, "last_result": result})
            self.client.log_artifacts(run_id, directory)
        step = result.get(self.step_metric)
        if isinstance(step, int | float) and stopped_early(result):  # by the scheduler
            self.client.set_tag(run_id, tags.STOPPED_AT, str(int(step)))
        self.client.set_terminated(run_id, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        run_id = self._run_id(trial)
        if run_id in self._recorded:
            return
        self.client.set_tag(run_id, tags.ERROR, str(trial.error_file or "trial failed"))
        self.client.set_terminated(run_id, "FAILED")


_TUNE_KEYS = {"timestamp", "time_this_iter_s", "time_total_s", "pid", "time_since_restore",
              "iterations_since_restore", "training_iteration", "done", "node_ip",
              "checkpoint_dir_name", "date", "hostname", "should_checkpoint"}
