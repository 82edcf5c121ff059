"""Tracking writes wait out a short outage of the MLflow store and then fail with the real cause
in one line; while the store takes no writes the service refuses submissions with 503 and
records nothing. The outage is real: another connection holds the SQLite store's write lock."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager

import pytest
from mlflow.tracking import MlflowClient

from service.settings import ServiceSettings
from sweeps.mlflow_retry import RetryingMlflowClient, TrackingUnavailable, root_cause
from tests.service.served import app_without_lifespan
from tests.service.specs import spec

BUSY_TIMEOUT_S = 20  # MLflow's SQLite sessions wait this long on a held lock before failing


@contextmanager
def store_locked(db_path, seconds: float):
    """Hold the store's write lock from another connection for ``seconds`` (in a thread)."""
    holder = sqlite3.connect(db_path, timeout=30, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(seconds, lambda: (holder.rollback(), holder.close()))
    release.start()
    try:
        yield
    finally:
        release.join()


@pytest.fixture
def store(tmp_path):
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("e"))
    return db, uri, run.info.run_id


def test_a_write_waits_out_a_short_outage(store):
    db, uri, run_id = store
    client = RetryingMlflowClient(uri, budget_s=30)
    started = time.monotonic()
    with store_locked(db, BUSY_TIMEOUT_S + 3):  # longer than one attempt waits: a retry is needed
        client.set_tag(run_id, "k", "written during the outage")
    assert time.monotonic() - started >= BUSY_TIMEOUT_S + 2
    assert MlflowClient(uri).get_run(run_id).data.tags["k"] == "written during the outage"


def test_a_long_outage_fails_with_the_real_cause_in_one_line(store):
    db, uri, run_id = store
    with store_locked(db, BUSY_TIMEOUT_S + 2), pytest.raises(TrackingUnavailable) as failure:
        RetryingMlflowClient(uri, budget_s=1).set_tag(run_id, "k", "v")
    message = str(failure.value)
    assert "sqlite3.OperationalError: database is locked" in message
    assert "\n" not in message and "Background on this error" not in message


def test_a_refused_request_is_not_retried(store):
    _db, uri, run_id = store
    client = RetryingMlflowClient(uri, budget_s=30)
    client.log_param(run_id, "p", "1")
    started = time.monotonic()
    with pytest.raises(Exception) as failure:
        client.log_param(run_id, "p", "2")  # MLflow refuses changing a logged param
    assert time.monotonic() - started < 5 and "p" in root_cause(failure.value)


def test_submissions_are_refused_with_503_while_the_store_takes_no_writes(tmp_path, store):
    db, uri, _run_id = store
    settings = ServiceSettings(home=tmp_path / "home", api_tokens=["t"], mlflow_tracking_uri=uri,
                               ray_dashboard_url="http://127.0.0.1:9")
    client, services = app_without_lifespan(settings)
    with store_locked(db, BUSY_TIMEOUT_S + 2):
        answer = client.post("/api/v1/sweeps", json=spec("outage"), headers={"Authorization": "Bearer t"})
    assert answer.status_code == 503, answer.text
    assert "the MLflow tracking store" in answer.json()["detail"] and str(tmp_path) not in answer.text
    assert services.records.list(None, 0, 10)[1] == 0  # nothing recorded
