"""A sweep outlives the machine stopping: every process of the embedded stack (the API, the Ray
head and its raylet, the sweep's driver, the trial workers) SIGKILLed at once mid-sweep, then the
service started again on the same DLAB_HOME; the sweep continues by itself from Tune's saved
state, finished trials untouched, no MLflow step logged twice."""

from __future__ import annotations

import contextlib
from collections import Counter

import psutil
import pytest
from mlflow.tracking import MlflowClient

from service.client import DlabClient
from service.cluster import running_local_head, stop_local_head
from service.local_stack import ApiProcess
from service.settings import ServiceSettings
from tests.service.specs import spec
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def stack_processes(home, head_pid: int, temp_dir: str) -> list[psutil.Process]:
    """Every process of this home's stack: the head's tree, Ray's session processes (by their
    temp dir), and whatever runs with this DLAB_HOME (the API, drivers, trial workers)."""
    found = {}
    for process in psutil.process_iter(["cmdline"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or ())
            ours = process.pid == head_pid or temp_dir in cmdline
            if ours or process.environ().get("DLAB_HOME") == str(home):
                found[process.pid] = process
                for child in process.children(recursive=True):
                    found[child.pid] = child
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return list(found.values())


def _cmdline(process: psutil.Process) -> str:
    """The process's command line, or "" if it has exited since it was found (a short-lived
    helper of Ray's may)."""
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        return " ".join(process.cmdline())
    return ""


def test_a_sweep_continues_after_every_process_of_the_stack_was_killed(tmp_path):
    home = tmp_path / "home"
    env = {"DLAB_POLL_INTERVAL_S": "0.5", "DLAB_LOCAL_RAY_CPUS": "1"}
    first = ApiProcess(home, env=env, log_path=tmp_path / "api-first.log").start()
    settings = ServiceSettings(home=home)
    mlflow = MlflowClient(settings.tracking_uri)
    second = None
    try:
        with DlabClient(first.url, first.token()) as client:
            created = client.submit(spec("power-cut", segments=(1, 2, 3), max_concurrent_trials=1,
                                         params={"num_tasks": 4, "epochs": 3}))

            def finished_and_one_mid_trial():
                detail = client.status(created["id"])
                trials = client.trials(created["id"])
                done = [t for t in trials if t["status"] == "done"]
                mid = [t for t in trials if t["status"] == "running" and t["metrics"].get("mean_accuracy")]
                return (detail, done) if done and mid else None

            detail, done = wait_for(finished_and_one_mid_trial, 600, "a finished trial and one mid-way",
                                    watch=[first.watched])
        before = {t["run_id"]: mlflow.get_run(t["run_id"]) for t in done}
        head = running_local_head(settings)
        victims = stack_processes(home, head.pid, head.temp_dir)
        assert any("sweeps.driver" in _cmdline(p) for p in victims), "no driver found to kill"
        for process in victims:  # all at once: a power cut
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(victims, timeout=30)
        assert running_local_head(settings) is None

        second = ApiProcess(home, env=env, log_path=tmp_path / "api-second.log").start()
        with DlabClient(second.url, second.token()) as client:
            events = list(client.events(created["id"]))
        final = events[-1][1]
        assert final["status"] == "succeeded", final
        assert final["trials"]["done"] == 3 and final["driver_restarts"] >= 1
        assert "driver_restarted" in [event for event, _ in events]
        for run_id, run in before.items():  # recorded before the power cut: untouched
            after = mlflow.get_run(run_id)
            assert after.info.status == "FINISHED" and after.info.end_time == run.info.end_time
            assert after.data.metrics == run.data.metrics
        children = mlflow.search_runs([detail["mlflow_experiment_id"]],
                                      f"tags.`mlflow.parentRunId` = '{detail['mlflow_parent_run_id']}'")
        assert len(children) == 3 and all(run.info.status == "FINISHED" for run in children)
        for run in children:
            steps = Counter(m.step for m in mlflow.get_metric_history(run.info.run_id, "mean_accuracy"))
            assert steps and max(steps.values()) == 1, (run.info.run_name, steps)  # no step twice
    finally:
        for api in (first, second):
            if api is not None:
                api.stop()
        stop_local_head(settings)
