"""Real sweeps on a real local Ray with a real MLflow SQLite store."""

import json
import os
import signal
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient
from ray import tune
from ray.tune import ExperimentAnalysis

from sweeps.plan import SweepPlan
from sweeps.runner import load_record, resume_sweep
from sweeps.runner import run_sweep as run_plan
from sweeps.settings import Settings
from sweeps.spec import SweepSpec
from sweeps.tracking import child_runs
from tests.sweeps.interrupted import finished_trial_runs, interrupt_cli_sweep

pytestmark = pytest.mark.integration

TINY_PARAMS = {"num_tasks": 3, "hidden_sizes": [16, 16], "epochs": 1, "batch_size": 128,
               "kw_percent_on": 0.25}


def run_sweep(spec: SweepSpec, settings: Settings):
    return run_plan(SweepPlan.resolve(spec), settings)


def _spec(name: str, **changes) -> SweepSpec:
    return SweepSpec.model_validate({
        "name": name, "benchmark": "permuted_digits", "params": TINY_PARAMS,
        "description": "tiny sweep for the tracking test",
        "search_space": {"num_segments": {"type": "grid", "values": [1, 3]},
                         "seed": {"type": "grid", "values": [0, 1]}},
        **changes,
    })


def test_sweep_records_parent_children_metrics_and_artifacts(tmp_path, local_ray):
    settings = Settings(home=tmp_path)
    outcome = run_sweep(_spec("track"), settings)
    assert outcome.status == "succeeded"
    assert outcome.trials_total == 4
    # a finished trial's worker process runs the next trial (reuse_actors): 4 trials, 2 CPUs
    pids = {trial.last_result["pid"] for trial in ExperimentAnalysis(outcome.experiment_dir).trials}
    assert len(pids) < 4, pids
    client = MlflowClient(settings.tracking_uri)
    record = load_record(outcome.experiment_dir)
    parent = client.get_run(record.parent_run_id)
    assert parent.data.tags["dlab.sweep_id"] == outcome.sweep_id
    assert parent.data.tags["dlab.spec_hash"] == _spec("track").spec_hash()
    assert parent.info.status == "FINISHED"
    parent_artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert "spec.json" in parent_artifacts
    report_files = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {f"report/{name}" for name in (
        "mean_accuracy_vs_num_segments.png", "mean_accuracy_vs_num_segments.svg", "subnetworks.png",
        "subnetworks.svg", "subnetworks.json", "report.json", "results.csv")} <= report_files
    # the parent run explains itself: description, search space with values, results as metrics
    assert parent.data.tags["mlflow.note.content"].startswith("tiny sweep for the tracking test")
    assert parent.data.params["search_space"] == "num_segments: grid [1, 3]; seed: grid [0, 1]"
    assert {"best_mean_accuracy", "mean_accuracy_mean.num_segments_1", "mean_accuracy_std.num_segments_3",
            "forgetting_mean.num_segments_1",
            "subnetwork_overlap_mean.num_segments_3"} <= set(parent.data.metrics)
    curve = client.get_metric_history(parent.info.run_id, "mean_accuracy_mean_vs_num_segments")
    assert sorted(m.step for m in curve) == [1, 3]
    assert parent.data.tags["dlab.best_trial"] in {"num_segments=1 seed=0", "num_segments=1 seed=1",
                                                   "num_segments=3 seed=0", "num_segments=3 seed=1"}
    children = child_runs(client, record.experiment_id, record.parent_run_id)
    assert len(children) == 4
    combos = set()
    for child in children:
        assert child.info.status == "FINISHED"
        params = child.data.params
        combos.add((params["num_segments"], params["seed"]))
        name = f"num_segments={params['num_segments']} seed={params['seed']}"
        assert child.data.tags["mlflow.runName"] == name
        assert not {"task", "tasks_seen"} & set(child.data.metrics)  # bookkeeping is not a metric
        assert params["hidden_sizes"] == "[16, 16]"
        history = client.get_metric_history(child.info.run_id, "mean_accuracy")
        assert sorted(m.step for m in history) == [1, 2, 3]  # one point per task, by tasks seen
        assert len(client.get_metric_history(child.info.run_id, "accuracy_task_0")) == 3
        progress = sorted(client.get_metric_history(child.info.run_id, "progress"), key=lambda m: m.step)
        assert [m.value for m in progress] == pytest.approx([1 / 3, 2 / 3, 1])  # tasks seen of 3
        assert child.data.tags["dlab.sweep_id"] == outcome.sweep_id
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"accuracy_matrix.json", "accuracy_matrix.png", "subnetworks.json", "subnetworks.png",
                "results.json"} <= artifacts
        matrix_path = client.download_artifacts(child.info.run_id, "accuracy_matrix.json",
                                                str(tmp_path / child.info.run_id))
        assert [len(row) for row in json.loads(Path(matrix_path).read_text())] == [1, 2, 3]
    assert combos == {("1", "0"), ("1", "1"), ("3", "0"), ("3", "1")}
    report = outcome.report
    assert report.trials_finished == 4
    assert [row["num_segments"] for row in report.rows] == [1, 3]
    assert all(row["count"] == 2 for row in report.rows)
    assert report.figures == ["mean_accuracy_vs_num_segments.png", "subnetworks.png"]
    assert all(report.path(f).stat().st_size > 1000 for f in report.figures)
    assert report.path("mean_accuracy_vs_num_segments.svg").exists()
    assert str(tmp_path) not in report.path("report.json").read_text()  # paths are relative
    assert [s["setting"] for s in report.subnetworks] == [{"num_segments": 1}, {"num_segments": 3}]
    layer = report.subnetworks[0]["layers"][0]
    assert len(layer["overlap"]) == 3 and layer["winners_per_input"] == 4  # k = 25% of 16 units
    # efficiency: the 4 trials' reported training time over the driver's time x the 2 CPUs
    trial_seconds = sum(child.data.metrics["wall_time_s"] for child in children)
    found = report.efficiency
    assert found is not None and found.cores == 2 and found.wall_from == "drivers"
    assert found.trial_time_s == pytest.approx(trial_seconds)
    assert found.efficiency == pytest.approx(trial_seconds / (found.wall_s * 2))
    assert 0 < found.efficiency <= 1
    assert parent.data.metrics["sweep.efficiency"] == pytest.approx(found.efficiency)
    assert set(report.files()) <= {Path(name).name for name in report_files}
    # the ended sweep's checkpoints are gone (nothing resumes from them), Tune's state stays
    experiment_dir = Path(outcome.experiment_dir)
    assert not list(experiment_dir.glob("*/checkpoint_*"))
    assert tune.Tuner.can_restore(experiment_dir)


def test_sweep_with_an_evaluation_schedule_tracks_the_tasks_it_evaluated(tmp_path, local_ray):
    """``eval_tasks``: reports off the schedule carry no ``mean_accuracy`` (only the task just
    trained); Tune still runs the trial to the end and MLflow has the points that exist."""
    settings = Settings(home=tmp_path)
    spec = _spec("schedule", params={**TINY_PARAMS, "eval_tasks": [0]},
                 search_space={"seed": {"type": "grid", "values": [0]}}, keep_checkpoints=True)
    outcome = run_sweep(spec, settings)
    assert outcome.status == "succeeded" and outcome.report.trials_finished == 1
    # kept as asked: the trained network of the last task
    assert len(list(Path(outcome.experiment_dir).glob("*/checkpoint_*/trainer_state.pt"))) == 1
    client = MlflowClient(settings.tracking_uri)
    record = load_record(outcome.experiment_dir)
    (child,) = child_runs(client, record.experiment_id, record.parent_run_id)
    steps = {name: sorted(m.step for m in client.get_metric_history(child.info.run_id, name))
             for name in ("mean_accuracy", "accuracy_task_0", "accuracy_task_1", "train_loss")}
    assert steps == {"mean_accuracy": [1, 3], "accuracy_task_0": [1, 3], "accuracy_task_1": [2, 3],
                     "train_loss": [1, 2, 3]}
    assert "accuracy_matrix.png" in {a.path for a in client.list_artifacts(child.info.run_id)}


def test_interrupted_sweep_resumes_without_rerunning_finished_trials(tmp_path, local_ray):
    spec_path = tmp_path / "spec.yaml"
    params = {**TINY_PARAMS, "num_tasks": 4, "epochs": 3, "batch_size": 32}
    spec_path.write_text(yaml.safe_dump({
        "name": "interrupt", "benchmark": "permuted_digits", "params": params,
        "search_space": {"seed": {"type": "grid", "values": [0, 1, 2, 3]}},
        "max_concurrent_trials": 1,
    }))
    settings = Settings(home=tmp_path)
    returncode, output = interrupt_cli_sweep(spec_path, tmp_path)
    assert returncode == 130, output
    assert "resume with: dlab sweep resume" in output
    before = {r.info.run_id: r for r in finished_trial_runs(settings.tracking_uri)}
    assert 2 <= len(before) < 4
    client = MlflowClient(settings.tracking_uri)
    history_before = {rid: len(client.get_metric_history(rid, "mean_accuracy")) for rid in before}

    experiment_dir = next((tmp_path / "ray_results").iterdir())
    outcome = resume_sweep(experiment_dir, settings)
    assert outcome.status == "succeeded"
    after = finished_trial_runs(settings.tracking_uri)
    assert len(after) == 4  # one run per trial: nothing duplicated
    for run in after:
        history = client.get_metric_history(run.info.run_id, "mean_accuracy")
        assert sorted(m.step for m in history) == [1, 2, 3, 4]
    for rid, count in history_before.items():  # finished trials were not re-run
        assert len(client.get_metric_history(rid, "mean_accuracy")) == count == 4
        assert client.get_run(rid).info.end_time == before[rid].info.end_time
    assert outcome.report.trials_finished == 4
    # two driver runs timed apart (the time between them not counted), one trial at a time
    drivers = {m.step for m in client.get_metric_history(load_record(experiment_dir).parent_run_id,
                                                          "sweep.driver_active_s")}
    assert drivers == {0, 1}
    assert 0 < outcome.report.efficiency.efficiency <= 0.5


def test_a_trial_whose_saved_checkpoint_tune_had_deleted_resumes_from_the_later_one(tmp_path, local_ray):
    # Tune deletes a trial's older checkpoint once it registers a newer one, and saves its own
    # state only every few seconds: a driver killed in between leaves that state naming the
    # deleted checkpoint. Made here by moving every checkpoint of an interrupted trial up by ten.
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({
        "name": "gone", "benchmark": "permuted_digits", "max_failures": 1,
        "params": {**TINY_PARAMS, "num_tasks": 6, "epochs": 3, "batch_size": 32},
    }))
    results = tmp_path / "ray_results"
    returncode, output = interrupt_cli_sweep(
        spec_path, tmp_path, until=lambda: any(results.glob("*/*/checkpoint_*/trainer_state.pt")))
    assert returncode == 130, output
    moved = sorted(results.glob("*/*/checkpoint_*"), reverse=True)
    for path in moved:
        path.rename(path.with_name(f"checkpoint_{int(path.name.split('_')[1]) + 10:06d}"))
    assert moved
    settings = Settings(home=tmp_path)
    outcome = resume_sweep(next(results.iterdir()), settings)
    assert outcome.status == "succeeded" and outcome.trials_errored == 0, outcome
    (run,) = finished_trial_runs(settings.tracking_uri)
    history = MlflowClient(settings.tracking_uri).get_metric_history(run.info.run_id, "mean_accuracy")
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5, 6]


class KillFirstTrialsWorker(tune.Callback):
    """Kills the worker process of the trial with seed 0 as it completes: the worker Tune caches
    for the next trial (``reuse_actors``) is dead when that trial is handed it, as when its node
    dies."""

    def on_trial_complete(self, iteration, trials, trial, **info):
        if trial.config.get("seed") == 0:
            os.kill(trial.last_result["pid"], signal.SIGKILL)


def test_a_trial_handed_a_dead_cached_worker_is_retried_from_tunes_saved_state(tmp_path, local_ray):
    # Tune fails such a trial without a retry (its reset fails while it is PENDING); the runner
    # resumes it, within max_failures
    spec = _spec("dead-worker", search_space={"seed": {"type": "grid", "values": [0, 1, 2]}},
                 max_concurrent_trials=1, max_failures=2)
    settings = Settings(home=tmp_path)
    outcome = run_plan(SweepPlan.resolve(spec), settings, callbacks=[KillFirstTrialsWorker()])
    trials = ExperimentAnalysis(outcome.experiment_dir).trials
    failures = {trial.config["seed"]: trial.num_failures for trial in trials}
    assert sum(failures.values()) >= 1, failures  # the kill did fail a trial
    assert outcome.status == "succeeded" and outcome.trials_errored == 0, (outcome, failures)
    assert [trial.status for trial in trials] == ["TERMINATED"] * 3
    finished = finished_trial_runs(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri)
    assert len(finished) == 3  # one run per trial, the retried one included
    for run in finished:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "mean_accuracy")]
        assert sorted(steps) == [1, 2, 3], steps


def test_mt10_sweep_reports_success_and_placement_to_mlflow(tmp_path, local_ray):
    spec = SweepSpec.model_validate({
        "name": "mt10-tiny", "benchmark": "metaworld_mt10",
        "params": {"total_steps": 600, "learning_starts": 300, "eval_every": 300, "max_episode_steps": 20,
                   "hidden_sizes": [32, 32], "batch_size": 32, "buffer_size": 2000, "updates_per_step": 0.1},
        "search_space": {"model": {"type": "grid", "values": ["dendritic"]}},
    })
    settings = Settings(home=tmp_path)
    outcome = run_sweep(spec, settings)
    assert outcome.status == "succeeded", outcome
    client = MlflowClient(settings.tracking_uri)
    record = load_record(outcome.experiment_dir)
    (child,) = child_runs(client, record.experiment_id, record.parent_run_id)
    history = client.get_metric_history(child.info.run_id, "success_rate")
    assert len(history) == 2 and all(0 <= m.value <= 1 for m in history)
    assert {"success_reach-v3", "grad_steps", "mean_return", "subnetwork_overlap"} <= set(child.data.metrics)
    assert [m.step for m in history] == [300, 600]  # env steps: MLflow's step, not a metric
    assert not {"env_steps", "evaluation"} & set(child.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert {"subnetworks.json", "subnetworks.png"} <= artifacts
    assert child.data.tags["dlab.device"] == "cpu" and child.data.tags["dlab.gpu_ids"] == "none"
    assert outcome.report is not None and outcome.report.metric == "success_rate"


def test_a_sweep_whose_every_trial_fails_ends_failed_with_the_real_cause(tmp_path, local_ray):
    from rich.console import Console

    from dlab.sweep_commands import report_table

    spec = SweepSpec.model_validate({
        "name": "all-fail", "benchmark": "permuted_mnist",
        "params": {**TINY_PARAMS, "num_tasks": 2, "data_dir": str(tmp_path / "no-mnist-here")},
        "search_space": {"seed": {"type": "grid", "values": [0, 1]}}, "max_failures": 0,
    })
    settings = Settings(home=tmp_path)
    outcome = run_sweep(spec, settings)
    assert outcome.status == "failed"
    assert "MNIST not found" in outcome.error and "\n" not in outcome.error, outcome.error
    assert outcome.report.trials_finished == 0
    with open(os.devnull, "w") as sink:
        Console(file=sink).print(report_table(outcome.report))  # no TypeError with no finished trial
    client = MlflowClient(settings.tracking_uri)
    record = load_record(outcome.experiment_dir)
    parent = client.get_run(record.parent_run_id)
    assert parent.info.status == "FAILED" and "MNIST not found" in parent.data.tags["dlab.error"]
    children = child_runs(client, record.experiment_id, record.parent_run_id)
    assert len(children) == 2 and all(run.info.status == "FAILED" for run in children)


def test_a_cases_sweep_runs_each_named_setting_and_reports_by_its_name(tmp_path, local_ray):
    """``type: cases``: each trial trains on its case's values, its run carries the case's name,
    and the report groups by it."""
    settings = Settings(home=tmp_path)
    cases = {"one": {"num_segments": 1}, "three": {"num_segments": 3, "lr": 0.002}}
    outcome = run_sweep(_spec("cases", search_space={"setting": {"type": "cases", "values": cases},
                                                     "seed": {"type": "grid", "values": [0]}}), settings)
    assert outcome.status == "succeeded"
    client = MlflowClient(settings.tracking_uri)
    record = load_record(outcome.experiment_dir)
    runs = {run.data.params["setting"]: run for run in child_runs(client, record.experiment_id,
                                                                   record.parent_run_id)}
    assert set(runs) == {"one", "three"}
    assert runs["one"].data.params["num_segments"] == "1" and runs["three"].data.params["num_segments"] == "3"
    assert runs["three"].data.params["lr"] == "0.002" and runs["one"].data.params["lr"] != "0.002"
    assert runs["three"].data.tags["mlflow.runName"] == "setting=three seed=0"
    assert [row["setting"] for row in outcome.report.rows] == ["one", "three"]
