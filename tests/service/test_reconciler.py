"""The reconciler in-process, against a real MLflow SQLite store and a fake Ray Jobs client:
ended sweeps settle (no run left RUNNING, no trial left pending/running), a dead driver is
restarted from Tune's state a bounded number of times, and errors reach the API as one short line
without paths or addresses."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from mlflow.tracking import MlflowClient

from service.cluster import ClusterUnavailable
from service.db import SweepRow, make_engine, make_sessionmaker
from service.drivers import DriverState
from service.mlflow_view import count_trials
from service.reconciler import Reconciler, driver_cause, public_error
from service.settings import ServiceSettings
from sweeps import mlflow_tags as tags
from tests.service.specs import spec

TRACEBACK = (
    "Job entrypoint command failed with exit code 1, last available logs (truncated to 20,000 chars):\n"
    "Traceback (most recent call last):\n"
    '  File "/home/user/.venv/lib/python3.11/site-packages/ray/tune/tuner.py", line 12, in fit\n'
    '    raise RuntimeError("x")\n'
    "sweep s-1 failed: every trial failed; the first: FileNotFoundError: MNIST not found in "
    "/srv/data/mnist at 10.1.2.3:6379\n"
)


@dataclass
class FakeDrivers:
    """Ray Jobs as a script: the state of each job id, and what was submitted."""

    states: dict[str, DriverState] = field(default_factory=dict)
    submitted: list[tuple[str, str, bool]] = field(default_factory=list)

    def state(self, job_id: str) -> DriverState | None:
        return self.states.get(job_id)

    def submit_plan(self, sweep_id: str, plan_json: str, job_id: str | None = None, resume: bool = False):
        self.submitted.append((sweep_id, job_id or sweep_id, resume))
        self.states[job_id or sweep_id] = DriverState("RUNNING", "", 1.0, None)

    def node_resources(self):
        raise ClusterUnavailable("no cluster in this test")

    def stop(self, job_id: str) -> bool:
        return True


@pytest.fixture
def world(tmp_path):
    settings = ServiceSettings(home=tmp_path, max_driver_restarts=2)
    sessions = make_sessionmaker(make_engine(settings.database))
    mlflow = MlflowClient(settings.tracking_uri)
    drivers = FakeDrivers()
    return settings, sessions, mlflow, drivers, Reconciler(settings, sessions, drivers, mlflow)


def add_sweep(sessions, mlflow, status: str, child_statuses: list[str]) -> str:
    """A record plus its MLflow parent and trial runs, as a crash would leave them."""
    experiment = mlflow.create_experiment("dendrite-lab/permuted_digits")
    parent = mlflow.create_run(
        experiment, tags={tags.SWEEP_ID: "s-1", tags.KIND: tags.KIND_SWEEP}
    ).info.run_id
    for index, run_status in enumerate(child_statuses):
        run = mlflow.create_run(
            experiment,
            tags={
                tags.PARENT_RUN: parent,
                tags.TRIAL_ID: f"t{index}",
                tags.KIND: tags.KIND_TRIAL,
                tags.SWEEP_ID: "s-1",
            },
        )
        if run_status != "RUNNING":
            mlflow.set_terminated(run.info.run_id, run_status)
    with sessions() as session:
        session.add(
            SweepRow(
                id="s-1",
                name="s",
                benchmark="permuted_digits",
                status=status,
                spec=spec("s"),
                spec_hash="h",
                expected_trials=4,
                metric="mean_accuracy",
                mode="max",
                experiment_id=experiment,
                parent_run_id=parent,
                driver_submitted=True,
            )
        )
        session.commit()
    return parent


def test_a_crashed_failed_sweep_is_settled_no_run_left_running(world):
    _settings, sessions, mlflow, _drivers, reconciler = world
    parent = add_sweep(sessions, mlflow, "failed", ["FINISHED", "RUNNING", "RUNNING"])
    reconciler.reconcile()
    row = reconciler.current("s-1")
    assert row.settled
    trials = reconciler.trials(row)
    assert sorted(t.status for t in trials) == ["done", "failed", "failed"]
    assert mlflow.get_run(parent).info.status == "FAILED"
    counts = count_trials(trials, row.expected_trials, ended=True)
    assert (counts.pending, counts.running, counts.never_started) == (0, 0, 1)


def test_a_cancelled_sweep_closes_its_runs_killed(world):
    _settings, sessions, mlflow, drivers, reconciler = world
    parent = add_sweep(sessions, mlflow, "running", ["FINISHED", "RUNNING"])
    drivers.states["s-1"] = DriverState("STOPPED", "stopped", 1.0, 2.0)
    reconciler.reconcile()
    row = reconciler.current("s-1")
    assert row.status == "cancelled" and row.settled
    assert sorted(t.status for t in reconciler.trials(row)) == ["cancelled", "done"]
    assert mlflow.get_run(parent).info.status == "KILLED"


def test_a_dead_driver_is_restarted_then_the_sweep_fails_after_the_retries(world):
    _settings, sessions, mlflow, drivers, reconciler = world
    add_sweep(sessions, mlflow, "running", ["FINISHED", "RUNNING"])
    killed = DriverState("FAILED", "Job entrypoint command failed with exit code -9", 1.0, 2.0)
    drivers.states["s-1"] = killed
    reconciler.reconcile()
    assert drivers.submitted == [("s-1", "s-1--restart-1", True)]
    row = reconciler.current("s-1")
    assert row.status == "running" and row.driver_restarts == 1 and row.job_id == "s-1--restart-1"
    drivers.states["s-1--restart-1"] = killed
    reconciler.reconcile()
    drivers.states["s-1--restart-2"] = killed
    reconciler.reconcile()
    row = reconciler.current("s-1")
    assert [job for _, job, _ in drivers.submitted] == ["s-1--restart-1", "s-1--restart-2"]
    assert row.status == "failed" and "died 3 times" in row.error
    assert "ray job logs s-1--restart-2" in row.error


def test_a_driver_that_reports_a_failed_sweep_is_not_restarted_and_its_cause_is_one_clean_line(world):
    _settings, sessions, mlflow, drivers, reconciler = world
    add_sweep(sessions, mlflow, "running", ["FAILED"])
    drivers.states["s-1"] = DriverState("FAILED", TRACEBACK, 1.0, 2.0)
    reconciler.reconcile()
    row = reconciler.current("s-1")
    assert drivers.submitted == []
    assert row.status == "failed" and "\n" not in row.error
    assert "MNIST not found" in row.error and "ray job logs s-1" in row.error
    for leak in ("/srv/data", "/home/user", "10.1.2.3", "Traceback"):
        assert leak not in row.error


def test_public_error_and_driver_cause():
    assert driver_cause(TRACEBACK).startswith("sweep s-1 failed: every trial failed")
    line = public_error("cannot reach http://10.0.0.5:8265 or 192.168.1.4:6379; see /var/log/ray/x.log")
    assert "10.0.0.5" not in line and "192.168" not in line and "/var/log" not in line and "x.log" in line
    assert len(public_error("x" * 5000)) <= 300
