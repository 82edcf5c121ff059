"""The Tune callback that mirrors trials into MLflow, driven with Tune's own callback calls on a
real (local SQLite) MLflow store."""

from types import SimpleNamespace

from mlflow.tracking import MlflowClient

from sweeps import mlflow_tags as tags
from sweeps.plan import SweepPlan
from sweeps.settings import Settings
from sweeps.spec import SweepSpec
from sweeps.tracking import MLflowTrialLogger, ensure_experiment, start_parent_run


def _trial() -> SimpleNamespace:
    return SimpleNamespace(trial_id="t0", config={"seed": 0}, last_result={}, error_file=None)


def _result(tasks_seen: int, accuracy: float) -> dict:
    return {"tasks_seen": tasks_seen, "mean_accuracy": accuracy, "training_iteration": tasks_seen}


def test_a_step_reported_again_after_a_restart_is_recorded_once(tmp_path):
    """A trial that goes back to an earlier checkpoint (its sweep interrupted before Tune saved
    the last one) reports steps its run already holds: one point per step, the first recorded,
    in the same driver and in a new one (a resumed sweep finds the run again)."""
    settings = Settings(home=tmp_path)
    plan = SweepPlan.resolve(SweepSpec.model_validate({
        "name": "steps", "benchmark": "permuted_digits", "params": {"num_tasks": 4},
        "search_space": {"seed": {"type": "grid", "values": [0]}}}))
    client = MlflowClient(settings.tracking_uri)
    experiment_id = ensure_experiment(client, "steps", settings.artifact_root)
    parent = start_parent_run(client, experiment_id, plan)
    trial = _trial()

    first = MLflowTrialLogger(settings.tracking_uri, experiment_id, parent, plan)
    for step in (1, 2):
        first.on_trial_result(0, [], trial, _result(step, 0.5 + step / 10))
    first.on_trial_result(0, [], trial, _result(1, 0.0))  # the same driver, a trial restarted
    resumed = MLflowTrialLogger(settings.tracking_uri, experiment_id, parent, plan)  # a new driver
    for step in (1, 2, 3):
        resumed.on_trial_result(0, [], trial, _result(step, 0.0 if step < 3 else 0.9))

    (run_id,) = set(first._runs.values()) | set(resumed._runs.values())
    history = client.get_metric_history(run_id, "mean_accuracy")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.6), (2, 0.7), (3, 0.9)]


def test_a_trial_is_tagged_stopped_early_only_short_of_its_own_budget(tmp_path):
    """A cases sweep's trials each have their own number of tasks: a 2-task trial that trained
    both tasks ran its full budget, though the benchmark's default is more tasks (it was tagged
    stopped, and so left out of the report); a 4-task trial ended after one task was stopped
    early."""
    settings = Settings(home=tmp_path)
    plan = SweepPlan.resolve(SweepSpec.model_validate({
        "name": "budgets", "benchmark": "permuted_digits",
        "search_space": {"setting": {"type": "cases", "values": {"two": {"num_tasks": 2},
                                                                 "four": {"num_tasks": 4}}}}}))
    assert plan.step_range[1] > 2  # the default budget the 2-task trial was once compared with
    client = MlflowClient(settings.tracking_uri)
    experiment_id = ensure_experiment(client, "budgets", settings.artifact_root)
    logger = MLflowTrialLogger(settings.tracking_uri, experiment_id,
                               start_parent_run(client, experiment_id, plan), plan)
    ended = {"two": {"tasks_seen": 2, "progress": 1.0}, "four": {"tasks_seen": 1, "progress": 0.25}}
    for name, last in ended.items():
        trial = SimpleNamespace(trial_id=name, config={"setting": name}, error_file=None,
                                last_result={**last, "mean_accuracy": 0.9})
        logger.on_trial_result(0, [], trial, trial.last_result)
        logger.on_trial_complete(0, [], trial)
    stopped = {name: client.get_run(logger._runs[name]).data.tags.get(tags.STOPPED_AT) for name in ended}
    assert stopped == {"two": None, "four": "1"}
