"""The compose topology as local processes on 127.0.0.1: a Ray head (``ray start --head``), a
second Ray node advertising a GPU, an MLflow tracking server (SQLite backend) and the API. Sweeps
go through the API; trials asking for a GPU fraction must run on the GPU node and land in the
MLflow server; killing that node mid-sweep and starting a new one must not lose anything."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import psutil
import pytest
from mlflow.tracking import MlflowClient

from service.client import DlabClient
from service.cluster import free_port, head_command, jobs_client, ray_auth_env, wait_for_jobs_endpoint
from service.local_stack import ApiProcess
from service.processes import Watched
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
TINY = {"num_tasks": 3, "hidden_sizes": [16, 16], "epochs": 1, "batch_size": 128, "kw_percent_on": 0.25}


class Process:
    """A child process in its own session, so the whole group (a Ray node's raylet and workers)
    can be killed at once."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self.popen = subprocess.Popen(args, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                                      env={**os.environ, **(env or {})}, start_new_session=True)
        self.watched = Watched(name, self.popen, log)

    def crash(self) -> None:
        """SIGKILL the process and every descendant (Ray puts its raylet in another group), as
        when the machine dies."""
        if self.popen.poll() is not None:
            return
        tree = psutil.Process(self.popen.pid)
        for process in [*tree.children(recursive=True), tree]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        self.popen.wait()


def ray_env(token_path: Path) -> dict[str, str]:
    """Token auth with this test's own token, for the head, the worker, the API, the drivers and
    ``ray status`` (nothing read from or written to ``~/.ray``)."""
    return {**ray_auth_env(token_path), "RAY_USAGE_STATS_ENABLED": "0"}


def cluster_gpus(gcs_address: str, env: dict[str, str]) -> float:
    """GPUs the cluster reports (``ray status``: lines like ``0.0/1.0 GPU``)."""
    out = subprocess.run([str(BIN / "ray"), "status", "--address", gcs_address], capture_output=True,
                         text=True, check=False, env={**os.environ, **env}).stdout
    lines = [line.split() for line in out.splitlines() if line.strip().endswith(" GPU")]
    return sum(float(parts[0].split("/")[1]) for parts in lines if "/" in parts[0])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    shared = root / "shared"  # the drivers' DLAB_HOME: Tune's storage, seen by every node
    temp_dir = tempfile.mkdtemp(prefix="dlab-clu-")
    token_path = root / "ray-auth-token"
    token_path.write_text(secrets.token_hex(32))
    token_path.chmod(0o600)
    env = ray_env(token_path)
    gcs, dashboard_port, mlflow_port = free_port(), free_port(), free_port()
    dashboard = f"http://127.0.0.1:{dashboard_port}"
    processes: list[Process] = []

    def start_gpu_worker(name: str) -> Process:
        worker = Process(f"the GPU Ray node ({name})",
                         [str(BIN / "ray"), "start", "--address", f"127.0.0.1:{gcs}", "--block",
                          "--num-cpus", "4", "--num-gpus", "1", "--node-ip-address", "127.0.0.1",
                          "--dashboard-agent-listen-port", str(free_port())], root / f"{name}.log", env)
        processes.append(worker)
        return worker

    try:
        head = Process("the Ray head (ray start --head)",
                       head_command(gcs, dashboard_port, temp_dir, 1, "--num-gpus", "0",
                                    "--node-ip-address", "127.0.0.1"), root / "head.log", env)
        processes.append(head)
        wait_for_jobs_endpoint(dashboard, 600, head.watched, token_path)
        worker = start_gpu_worker("worker-1")
        tracking_server = Process("the MLflow server", [
            str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "mlartifacts"), "--host", "127.0.0.1",
            "--port", str(mlflow_port), "--workers", "1"], root / "mlflow.log")
        processes.append(tracking_server)
        tracking = f"http://127.0.0.1:{mlflow_port}"
        wait_for(lambda: _ok(f"{tracking}/health"), 600, "the MLflow server", watch=[tracking_server.watched])
        wait_for(lambda: cluster_gpus(f"127.0.0.1:{gcs}", env) >= 1, 600, "the GPU node to join",
                 watch=[head.watched, worker.watched])
        api = ApiProcess(root / "api", env={
            **env, "DLAB_RAY_DASHBOARD_URL": dashboard, "MLFLOW_TRACKING_URI": tracking,
            "DLAB_DRIVER_HOME": str(shared), "DLAB_POLL_INTERVAL_S": "0.5"}).start()
        yield {"api": api, "tracking": tracking, "dashboard": dashboard, "worker": worker,
               "start_gpu_worker": start_gpu_worker, "root": root, "token_path": token_path,
               "watch": [head.watched, tracking_server.watched, api.watched]}
        api.stop()
    finally:
        for process in reversed(processes):  # no graceful drain needed: the test is over
            process.crash()


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.TransportError:
        return False


def sweep(name: str, segments: list[int], gpu: float, cpu: float, **changes) -> dict:
    return {"name": name, "benchmark": "permuted_digits", "params": {**TINY, **changes.pop("params", {})},
            "search_space": {"num_segments": {"type": "grid", "values": segments}},
            "resources": {"cpu": cpu, "gpu": gpu}, **changes}


def test_gpu_fraction_trials_share_the_gpu_node_and_land_in_the_mlflow_server(cluster):
    with DlabClient(cluster["api"].url, cluster["api"].token()) as client:
        created = client.submit(sweep("gpu-share", [1, 2, 3, 4], gpu=0.25, cpu=1))
        final = list(client.events(created["id"]))[-1][1]
    assert final["status"] == "succeeded", final
    assert final["trials"]["done"] == 4
    mlflow = MlflowClient(cluster["tracking"])
    children = mlflow.search_runs([final["mlflow_experiment_id"]],
                                  f"tags.`mlflow.parentRunId` = '{final['mlflow_parent_run_id']}'")
    assert len(children) == 4 and all(run.info.status == "FINISHED" for run in children)
    jobs = jobs_client(cluster["dashboard"], cluster["token_path"])
    driver_node = jobs.get_job_info(created["id"]).driver_node_id
    for run in children:
        assert run.data.tags["dlab.gpu_ids"] == "0"  # only the worker node has a GPU
        assert run.data.tags["dlab.node_id"] != driver_node  # the driver runs on the head
        assert "mean_accuracy" in run.data.metrics
    assert {run.info.artifact_uri.split(":")[0] for run in children} == {"mlflow-artifacts"}
    starts = [run.info.start_time for run in children]
    ends = [run.info.end_time for run in children]
    assert max(starts) < min(ends), "0.25-GPU trials should have run side by side on one GPU"


def test_killing_the_gpu_node_mid_sweep_loses_no_finished_trial(cluster):
    mlflow = MlflowClient(cluster["tracking"])
    with DlabClient(cluster["api"].url, cluster["api"].token()) as client:
        created = client.submit(sweep("node-loss", [1, 2, 3], gpu=0.5, cpu=1.0, max_concurrent_trials=1,
                                      max_failures=3, params={"num_tasks": 4, "epochs": 12,
                                                              "hidden_sizes": [64, 64]}))

        def one_finished_one_mid_trial():
            detail = client.status(created["id"])
            if detail["mlflow_parent_run_id"] is None:
                return None
            runs = mlflow.search_runs([detail["mlflow_experiment_id"]],
                                      f"tags.`mlflow.parentRunId` = '{detail['mlflow_parent_run_id']}'")
            done = [r for r in runs if r.info.status == "FINISHED"]
            reporting = [r for r in runs if r.info.status == "RUNNING" and "mean_accuracy" in r.data.metrics]
            return done if done and reporting else None

        before = wait_for(one_finished_one_mid_trial, 900, "a finished trial and one past its first task",
                          watch=[*cluster["watch"], cluster["worker"].watched])
        cluster["worker"].crash()  # the GPU node dies with the running trial
        cluster["start_gpu_worker"]("worker-2")
        final = list(client.events(created["id"]))[-1][1]
    assert final["status"] == "succeeded", final
    assert final["trials"]["done"] == 3
    for run in before:  # what was recorded before the node died is untouched
        after = mlflow.get_run(run.info.run_id)
        assert after.info.status == "FINISHED" and after.info.end_time == run.info.end_time
        assert after.data.metrics == run.data.metrics
    experiment_dir = cluster["root"] / "shared" / "ray_results" / created["id"]
    trial_dirs = [d for d in experiment_dir.iterdir() if d.is_dir()]
    errored = [d for d in trial_dirs if any(f.name.startswith("error") for f in d.iterdir())]
    assert errored, "the trial on the killed node should have failed and been retried from its checkpoint"
