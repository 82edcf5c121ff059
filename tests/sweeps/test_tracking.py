"""The Tune callback that mirrors trials into MLflow, driven with Tune's own callback calls on a
real (local SQLite) MLflow store."""

from types import SimpleNamespace

from mlflow.tracking import MlflowClient

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
