"""`GET /sweeps/{id}` and `GET /sweeps` answer from the service's rendered records: no database,
Ray or MLflow access on a read, every write visible to the reads that follow it, and a write that
changes nothing renders nothing. In-process (the app without its lifespan: no Ray head)."""

from __future__ import annotations

import pytest

from service import records as records_module
from service.db import SweepRow
from service.services import Services
from service.settings import ServiceSettings
from tests.service.served import app_without_lifespan
from tests.service.specs import spec

AUTH = {"Authorization": "Bearer t"}


def trial(index: int, status: str, accuracy: float | None) -> dict:
    return {"trial_id": f"t{index}", "run_id": f"r{index}", "status": status,
            "config": {"num_segments": index + 1},
            "metrics": {} if accuracy is None else {"mean_accuracy": accuracy}}


@pytest.fixture
def served(tmp_path):
    """The app with its services built by hand, one running sweep recorded."""
    client, services = app_without_lifespan(ServiceSettings(home=tmp_path, api_tokens=["t"]))
    with services.sessions() as session:
        session.add(SweepRow(id="s-1", name="s", benchmark="permuted_digits", status="running",
                             spec=spec("s"), spec_hash="h", expected_trials=4, metric="mean_accuracy",
                             mode="max", driver_submitted=True,
                             trials=[trial(0, "done", 0.7), trial(1, "running", None)]))
        session.commit()
    services.records.changed("s-1")  # what the submission does after its commit
    return client, services


def write(services: Services, **values) -> None:
    """A writer's commit followed by its ``changed`` call (the reconciler's refresh)."""
    with services.sessions() as session:
        row = session.get(SweepRow, "s-1")
        for name, value in values.items():
            setattr(row, name, value)
        session.commit()
    services.records.changed("s-1")


def test_reads_touch_no_database_and_see_every_write(served, monkeypatch):
    client, services = served
    assert client.get("/api/v1/sweeps", headers=AUTH).json()["total"] == 1  # first read of a page renders it

    def no_database():
        raise AssertionError("a read opened a database session")

    records = services.records
    monkeypatch.setattr(records, "sessions", no_database)
    detail = client.get("/api/v1/sweeps/s-1", headers=AUTH).json()
    assert detail["status"] == "running"
    assert detail["trials"] == {"pending": 2, "running": 1, "done": 1, "failed": 0, "cancelled": 0,
                                "never_started": 0}
    assert detail["best"] == {"trial_id": "t0", "metric": "mean_accuracy", "value": 0.7,
                              "config": {"num_segments": 1}}
    assert detail["spec"]["name"] == "s" and detail["links"]["self"] == "/api/v1/sweeps/s-1"
    assert client.get("/api/v1/sweeps", headers=AUTH).json()["items"][0]["status"] == "running"

    monkeypatch.undo()
    write(services, status="succeeded", trials=[trial(0, "done", 0.7), trial(1, "done", 0.9)])
    monkeypatch.setattr(records, "sessions", no_database)
    detail = client.get("/api/v1/sweeps/s-1", headers=AUTH).json()
    assert detail["status"] == "succeeded" and detail["best"]["trial_id"] == "t1"
    assert detail["trials"]["done"] == 2 and detail["trials"]["never_started"] == 2
    assert client.get("/api/v1/sweeps", headers=AUTH).json()["items"][0]["status"] == "succeeded"


def test_a_write_that_changes_nothing_renders_no_page_and_metrics_render_only_the_detail(served, monkeypatch):
    client, services = served
    client.get("/api/v1/sweeps", headers=AUTH)
    client.get("/api/v1/sweeps", params={"status": "running"}, headers=AUTH)
    rendered = []
    render_page = services.records._render_page
    monkeypatch.setattr(services.records, "_render_page",
                        lambda *key: rendered.append(key) or render_page(*key))
    services.records.changed("s-1")  # the reconciler's tick with nothing new
    write(services, trials=[trial(0, "done", 0.7), trial(1, "running", 0.8)])  # a report: detail only
    assert rendered == []
    assert client.get("/api/v1/sweeps/s-1", headers=AUTH).json()["best"]["trial_id"] == "t1"
    write(services, status="failed", error="boom")  # a listed field: every kept page again
    assert set(rendered) == {(None, 0, 50), ("running", 0, 50)} and len(rendered) == 2
    assert client.get("/api/v1/sweeps", params={"status": "running"}, headers=AUTH).json()["total"] == 0


def test_unknown_sweeps_are_404_and_the_kept_reads_are_bounded(served):
    client, services = served
    assert client.get("/api/v1/sweeps/nope", headers=AUTH).status_code == 404
    for offset in range(records_module.MAX_CACHED_PAGES + 10):
        assert client.get("/api/v1/sweeps", params={"offset": offset}, headers=AUTH).status_code == 200
    assert len(services.records._pages) == records_module.MAX_CACHED_PAGES
    assert client.get("/api/v1/sweeps/s-1").status_code == 401


def test_a_stored_record_with_text_utf8_cannot_encode_still_reads(served):
    """A record committed before submissions refused lone surrogates must not make any read fail."""
    client, services = served
    write(services, spec={**spec("s"), "description": "\udc80 broken", "params": {"\ud800": 1}})
    detail = client.get("/api/v1/sweeps/s-1", headers=AUTH)
    assert detail.status_code == 200, detail.text
    assert detail.json()["spec"]["description"] == "\\udc80 broken"
    assert detail.json()["spec"]["params"] == {"\\ud800": 1}
    assert client.get("/api/v1/sweeps", headers=AUTH).status_code == 200


def test_a_lone_surrogate_is_refused_before_anything_is_recorded(served):
    client, services = served
    body = b'{"name": "sur", "benchmark": "permuted_digits", "description": "\\udc80"}'
    for params in ({}, {"dry_run": "true"}):
        answer = client.post("/api/v1/sweeps", content=body, params=params,
                             headers={**AUTH, "Content-Type": "application/json"})
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["loc"] == ["body", "description"]
    assert [row.id for row in services.records.list(None, 0, 10)[0]] == ["s-1"]
