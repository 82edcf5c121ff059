"""The REST service served by uvicorn on 127.0.0.1, with a real local Ray head (sweep drivers as
Ray jobs) and a real MLflow SQLite store."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from dlab.cli import main as dlab_main
from service.app import create_app
from service.client import ApiError, DlabClient
from service.cluster import running_local_head, stop_local_head
from service.local_stack import ApiProcess
from service.settings import ServiceSettings
from tests.service.specs import MALFORMED, spec
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("service-home")
    yield path
    stop_local_head(ServiceSettings(home=path))


@pytest.fixture(scope="module")
def api(home):
    """``dlab serve`` as a real uvicorn process; its start-up starts the embedded Ray head."""
    process = ApiProcess(home, env={"DLAB_POLL_INTERVAL_S": "0.5"}).start()
    yield process
    process.stop()


@pytest.fixture
def client(api):
    with DlabClient(api.url, api.token()) as dlab:
        yield dlab


def collect_events(client: DlabClient, sweep_id: str) -> list[tuple[str, dict]]:
    return list(client.events(sweep_id))


# --- auth, health, malformed input -------------------------------------------------------

def test_health_needs_no_token_but_every_api_route_does(api):
    assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{api.url}/readyz").json()
    assert ready["ready"] and set(ready["checks"]) == {"ray", "mlflow", "database"}
    routes = [("GET", "/api/v1/sweeps"), ("POST", "/api/v1/sweeps"), ("GET", "/api/v1/sweeps/x"),
              ("GET", "/api/v1/sweeps/x/trials"), ("GET", "/api/v1/sweeps/x/events"),
              ("GET", "/api/v1/sweeps/x/report"), ("POST", "/api/v1/sweeps/x/cancel")]
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
            response = httpx.request(method, api.url + path, headers=headers, json=spec("x"))
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["detail"] == "missing or invalid bearer token"


OVER_HTTP = [case for case in MALFORMED if case[0] in ("not json", "yaml alias", "unknown benchmark")] + [
    ("too many trials", None, spec("a", num_samples=1000), "num_samples"),  # a service limit
]


@pytest.mark.parametrize(("case", "media", "body", "field"), OVER_HTTP, ids=[m[0] for m in OVER_HTTP])
def test_malformed_specs_are_422_naming_the_field(api, case, media, body, field):
    headers = {"Authorization": f"Bearer {api.token()}"}
    if media is None:
        response = httpx.post(f"{api.url}/api/v1/sweeps", json=body, headers=headers)
    else:
        response = httpx.post(f"{api.url}/api/v1/sweeps", content=body,
                              headers={**headers, "Content-Type": media})
    assert response.status_code == 422, response.text
    messages = " | ".join(item["msg"] for item in response.json()["detail"])
    assert field in messages, messages


def test_yaml_body_oversized_body_and_unknown_media_type(api, client):
    headers = {"Authorization": f"Bearer {api.token()}"}
    huge = json.dumps({**spec("big"), "description": "x" * 300_000}).encode()
    too_big = httpx.post(f"{api.url}/api/v1/sweeps", content=huge,
                         headers={**headers, "Content-Type": "application/json"})
    assert too_big.status_code == 413 and "larger than" in too_big.json()["detail"]
    xml = httpx.post(f"{api.url}/api/v1/sweeps", content=b"<spec/>",
                     headers={**headers, "Content-Type": "application/xml"})
    assert xml.status_code == 415
    assert client.list()["total"] == 0  # nothing was recorded for rejected bodies


# --- the sweep lifecycle ---------------------------------------------------------------------

def test_submit_watch_report_and_idempotent_resubmission(api, client, home):
    body = spec("lifecycle", segments=(1, 3))
    created = client.submit(body, idempotency_key="lifecycle-1")
    again = client.submit(body, idempotency_key="lifecycle-1")
    assert again["id"] == created["id"]
    with pytest.raises(ApiError) as conflict:
        client.submit(spec("lifecycle", segments=(1, 2)), idempotency_key="lifecycle-1")
    assert conflict.value.status_code == 409
    events = collect_events(client, created["id"])
    kinds = [event for event, _ in events]
    assert kinds[0] == "sweep_status" and kinds[-1] == "sweep_finished"
    assert events[-1][1]["status"] == "succeeded", events[-1][1]["error"]
    assert kinds.count("trial_started") == 2 and kinds.count("trial_finished") == 2
    assert "trial_reported" in kinds
    final = events[-1][1]
    assert final["status"] == "succeeded", final
    assert final["trials"] == {"pending": 0, "running": 0, "done": 2, "failed": 0, "cancelled": 0}
    assert final["best"]["metric"] == "mean_accuracy" and 0 < final["best"]["value"] <= 1
    assert client.list(status="succeeded")["total"] == 1  # the replay made no second sweep

    trials = client.trials(created["id"])
    assert sorted(t["config"]["num_segments"] for t in trials) == [1, 3]
    assert all(t["status"] == "done" and "mean_accuracy" in t["metrics"] for t in trials)
    report = client.report(created["id"])
    assert [row["num_segments"] for row in report["rows"]] == [1, 3]
    figure = f"/api/v1/sweeps/{created['id']}/report/mean_accuracy_vs_num_segments.png"
    assert report["figure_urls"] == [figure]
    assert client.figure(report["figure_urls"][0]).startswith(b"\x89PNG")
    mlflow = MlflowClient(ServiceSettings(home=home).tracking_uri)
    parent = mlflow.get_run(final["mlflow_parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["dlab.sweep_id"] == created["id"]


def test_cancel_mid_sweep_keeps_finished_trials(api, client, home):
    body = spec("cancel", segments=(1, 2, 3, 4), max_concurrent_trials=1,
                params={"num_tasks": 3, "epochs": 3})
    created = client.submit(body)
    for event, _ in client.events(created["id"]):
        if event == "trial_finished":
            break
    detail = client.cancel(created["id"])
    assert detail["status"] == "cancelled"
    assert detail["trials"]["done"] >= 1 and detail["trials"]["done"] < 4
    with pytest.raises(ApiError) as again:
        client.cancel(created["id"])
    assert again.value.status_code == 409
    mlflow = MlflowClient(ServiceSettings(home=home).tracking_uri)
    assert mlflow.get_run(detail["mlflow_parent_run_id"]).info.status == "KILLED"
    trials = client.trials(created["id"])
    assert any(t["status"] == "done" for t in trials)
    assert not any(t["status"] == "running" for t in trials)
    report = client.report(created["id"])
    assert report["trials_finished"] == detail["trials"]["done"]


def test_api_restart_does_not_lose_a_running_sweep(api, home):
    token = api.token()
    first = ApiProcess(home, env={"DLAB_POLL_INTERVAL_S": "0.5"}, log_path=home / "api-first.log").start()
    with DlabClient(first.url, token) as client:
        created = client.submit(spec("restart", segments=(1, 2, 3), max_concurrent_trials=1,
                                     params={"num_tasks": 3, "epochs": 2}))
        wait_for(lambda: client.status(created["id"])["status"] == "running")
    first.stop(kill=True)  # a crash: no shutdown hooks run
    assert running_local_head(ServiceSettings(home=home)) is not None
    second = ApiProcess(home, env={"DLAB_POLL_INTERVAL_S": "0.5"}, log_path=home / "api-second.log").start()
    try:
        with DlabClient(second.url, token) as client:
            final = collect_events(client, created["id"])[-1][1]
            assert final["status"] == "succeeded", final
            assert final["trials"]["done"] == 3
            assert len(client.report(created["id"])["rows"]) == 3
    finally:
        second.stop()


def test_cli_commands_against_the_service(api, tmp_path, capsys):
    common = ["--url", api.url, "--token", api.token()]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nbenchmark: permuted_digits\nnum_samples: 0\n")
    assert dlab_main(["submit", str(bad), *common]) == 2
    assert "num_samples" in capsys.readouterr().out
    assert dlab_main(["list", *common]) == 0
    assert "sweeps" in capsys.readouterr().out
    assert dlab_main(["status", "no-such-sweep", *common]) == 3
    assert "no sweep" in capsys.readouterr().out
    assert dlab_main(["list", "--url", api.url, "--token", "wrong"]) == 3


# --- limits and a dead Ray, through the same app in-process -----------------------------------

def test_active_sweep_limit_is_429_and_dead_ray_is_503_with_the_record_kept(home, api):
    head = running_local_head(ServiceSettings(home=home))
    limited = ServiceSettings(home=home, max_active_sweeps=1, ray_dashboard_url=head.dashboard_url,
                              api_tokens=["t"])
    dead = ServiceSettings(home=home, ray_dashboard_url="http://127.0.0.1:9", api_tokens=["t"])
    auth = {"Authorization": "Bearer t"}
    with DlabClient(api.url, api.token()) as client:
        running = client.submit(spec("limit", segments=(1, 2, 3), max_concurrent_trials=1,
                                     params={"num_tasks": 3, "epochs": 2}))
        with TestClient(create_app(limited)) as app:
            refused = app.post("/api/v1/sweeps", json=spec("second"), headers=auth)
            assert refused.status_code == 429 and "at most 1" in refused.json()["detail"]
            assert refused.headers["retry-after"] == "30"
        client.cancel(running["id"])
    with TestClient(create_app(dead)) as app:
        ready = app.get("/readyz")
        assert ready.status_code == 503 and not ready.json()["checks"]["ray"]["ok"]
        assert ready.json()["checks"]["mlflow"]["ok"] and ready.json()["checks"]["database"]["ok"]
        failed = app.post("/api/v1/sweeps", json=spec("noray"), headers=auth)
        assert failed.status_code == 503 and "unreachable" in failed.json()["detail"]
        listed = app.get("/api/v1/sweeps", params={"status": "failed"}, headers=auth).json()
        assert "noray" in {item["name"] for item in listed["items"]}
        assert app.get("/api/v1/sweeps", headers=auth).json()["total"] >= 3  # earlier sweeps kept
