"""A sweep's running time across its drivers and its efficiency, on a real MLflow store: the
hours between two drivers (the machine off) are not counted, each driver's time is."""

from __future__ import annotations

import time

import pytest
from mlflow.tracking import MlflowClient

from sweeps.clock import ACTIVE_METRIC, cluster_cpus, driven_seconds, driving, sweep_efficiency


@pytest.fixture
def parent(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("clock", artifact_location=(tmp_path / "artifacts").as_uri())
    return client, client.create_run(experiment).info.run_id


def test_each_driver_run_counts_its_own_time_and_the_gap_between_them_does_not(parent):
    client, run_id = parent
    with driving(client, run_id, cpus=2, interval_s=0.05):
        time.sleep(0.6)
    time.sleep(1.0)  # the machine is off: no driver runs
    with driving(client, run_id, cpus=4, interval_s=0.05):
        time.sleep(0.3)
    history = client.get_metric_history(run_id, ACTIVE_METRIC)
    assert {m.step for m in history} == {0, 1}
    assert len(history) > 4  # logged while running, not only at the end
    assert 0.9 <= driven_seconds(client, run_id) < 1.4
    assert cluster_cpus(client, run_id) == 4  # the last driver's cluster


def test_efficiency_is_busy_core_time_over_running_time_times_cores(parent):
    client, run_id = parent
    with driving(client, run_id, cpus=2, interval_s=0.05):
        time.sleep(0.5)
    wall = driven_seconds(client, run_id)
    found = sweep_efficiency(client, run_id, trial_seconds=0.8 * wall, cpus_per_trial=1.0)
    assert found.wall_from == "drivers" and found.cores == 2
    assert found.efficiency == pytest.approx(0.4)
    two_cpu_trials = sweep_efficiency(client, run_id, trial_seconds=0.8 * wall, cpus_per_trial=2.0)
    assert two_cpu_trials.efficiency == pytest.approx(0.8)


def test_a_sweep_whose_drivers_logged_no_time_is_timed_by_its_parent_run(parent):
    client, run_id = parent
    assert sweep_efficiency(client, run_id, trial_seconds=10.0, cpus_per_trial=1.0) is None  # no CPUs known
    start = client.get_run(run_id).info.start_time
    client.set_terminated(run_id, "FINISHED", end_time=start + 20_000)
    found = sweep_efficiency(client, run_id, trial_seconds=30.0, cpus_per_trial=1.0, cores=2)
    assert found.wall_from == "parent run" and found.wall_s == pytest.approx(20.0)
    assert found.efficiency == pytest.approx(0.75)
