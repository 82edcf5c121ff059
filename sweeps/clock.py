"""How long a sweep has run, across its drivers, and how well it kept its cores busy.

A sweep may be driven by several processes in turn: the first driver, a driver restarted after
it died, a driver resumed after the machine stopped (a session end, a power cut). Each logs to
the sweep's parent run how long it has been driving (``sweep.driver_active_s``, one MLflow step
per driver run, updated every ``interval_s``) and the CPUs of the cluster it drives
(``sweep.cluster_cpus``), so a sweep's efficiency divides by the time it ran, not by the hours
the machine was off in between. A driver killed outright loses at most its last interval."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from mlflow.tracking import MlflowClient
from pydantic import BaseModel, Field

ACTIVE_METRIC = "sweep.driver_active_s"
CPUS_METRIC = "sweep.cluster_cpus"
INTERVAL_S = 30.0


def _next_step(client: MlflowClient, run_id: str) -> int:
    """The step of a new driver run: one past the last driver run recorded."""
    return max((m.step for m in client.get_metric_history(run_id, ACTIVE_METRIC)), default=-1) + 1


@contextmanager
def driving(client: MlflowClient, run_id: str, cpus: float | None,
            interval_s: float = INTERVAL_S) -> Iterator[None]:
    """Log this driver run's running time to the sweep's parent run ``run_id`` every
    ``interval_s`` seconds while the block runs, and once more when it ends."""
    step = _next_step(client, run_id)
    if cpus:
        client.log_metric(run_id, CPUS_METRIC, float(cpus), step=step)
    started = time.monotonic()
    stop = threading.Event()

    def log_elapsed() -> None:
        client.log_metric(run_id, ACTIVE_METRIC, time.monotonic() - started, step=step)

    def tick() -> None:
        while not stop.wait(interval_s):
            try:
                log_elapsed()
            except Exception:  # a store outage: the next tick (or the last log) records it
                continue

    log_elapsed()
    ticker = threading.Thread(target=tick, name="sweep-clock", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
        log_elapsed()


def driven_seconds(client: MlflowClient, run_id: str) -> float | None:
    """The sweep's running time: each driver run's last logged time, summed (None: no driver
    logged any, e.g. a sweep started before drivers logged their time)."""
    last: dict[int, float] = {}
    for point in client.get_metric_history(run_id, ACTIVE_METRIC):
        last[point.step] = max(point.value, last.get(point.step, 0.0))
    return sum(last.values()) if last else None


def cluster_cpus(client: MlflowClient, run_id: str) -> float | None:
    """The CPUs of the cluster the sweep's last driver ran on (None: not logged)."""
    history = client.get_metric_history(run_id, CPUS_METRIC)
    return max(history, key=lambda m: (m.step, m.timestamp)).value if history else None


class SweepEfficiency(BaseModel):
    """How busy a sweep kept its cores: the trials' summed training time (each times the CPUs it
    reserved) over the sweep's running time times the cluster's CPUs."""

    trial_time_s: float = Field(description="sum over trials of their reported training time x "
                                            "CPUs per trial")
    wall_s: float = Field(description="the sweep's running time (its drivers' time, summed)")
    cores: float = Field(description="CPUs of the cluster the sweep ran on")
    efficiency: float = Field(description="trial_time_s / (wall_s x cores)")
    wall_from: str = Field(description="'drivers': logged by each driver run; 'parent run': the "
                                       "parent run's start to its end (or to now)")


def sweep_efficiency(client: MlflowClient, run_id: str, trial_seconds: float, cpus_per_trial: float,
                     cores: float | None = None) -> SweepEfficiency | None:
    """The sweep's efficiency from its drivers' logged time (else its parent run's start to end)
    and its cluster's CPUs (as its drivers logged them, else ``cores``); None when neither
    gives the CPUs or no trial reported its time."""
    cores = cluster_cpus(client, run_id) or cores
    if not cores or trial_seconds <= 0:
        return None
    wall, wall_from = driven_seconds(client, run_id), "drivers"
    if wall is None:
        info = client.get_run(run_id).info
        end_ms = info.end_time or int(time.time() * 1000)
        wall, wall_from = (end_ms - info.start_time) / 1000, "parent run"
    if wall <= 0:
        return None
    busy = trial_seconds * cpus_per_trial
    return SweepEfficiency(trial_time_s=busy, wall_s=wall, cores=cores,
                           efficiency=busy / (wall * cores), wall_from=wall_from)
