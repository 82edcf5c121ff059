"""The REST service served by uvicorn on 127.0.0.1, with a real local Ray head (sweep drivers as
Ray jobs) and a real MLflow SQLite store."""

from __future__ import annotations

import json

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from dlab.cli import main as dlab_main
from service.app import create_app
from service.client import ApiError, DlabClient
from service.cluster import running_local_head, stop_local_head
from service.local_stack import ApiProcess
from service.settings import ServiceSettings
from sweeps.cost import estimate
from sweeps.report import load_report
from sweeps.spec import SweepSpec
from tests.service.specs import MALFORMED, spec
from tests.sweeps.search_checks import assert_the_same_study_continued
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
    process = ApiProcess(home, env={"DLAB_POLL_INTERVAL_S": "0.5", "DLAB_MAX_TRIAL_COST": "1e11"}).start()
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
    routes = [
        ("GET", "/api/v1/sweeps"),
        ("POST", "/api/v1/sweeps"),
        ("GET", "/api/v1/sweeps/x"),
        ("GET", "/api/v1/sweeps/x/trials"),
        ("GET", "/api/v1/sweeps/x/events"),
        ("GET", "/api/v1/sweeps/x/report"),
        ("POST", "/api/v1/sweeps/x/cancel"),
    ]
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
        response = httpx.post(
            f"{api.url}/api/v1/sweeps", content=body, headers={**headers, "Content-Type": media}
        )
    assert response.status_code == 422, response.text
    messages = " | ".join(item["msg"] for item in response.json()["detail"])
    assert field in messages, messages


def test_yaml_body_oversized_body_and_unknown_media_type(api, client):
    headers = {"Authorization": f"Bearer {api.token()}"}
    huge = json.dumps({**spec("big"), "description": "x" * 300_000}).encode()
    too_big = httpx.post(
        f"{api.url}/api/v1/sweeps", content=huge, headers={**headers, "Content-Type": "application/json"}
    )
    assert too_big.status_code == 413 and "larger than" in too_big.json()["detail"]
    xml = httpx.post(
        f"{api.url}/api/v1/sweeps",
        content=b"<spec/>",
        headers={**headers, "Content-Type": "application/xml"},
    )
    assert xml.status_code == 415
    assert client.list()["total"] == 0  # nothing was recorded for rejected bodies


def test_bad_requests_keep_the_connection_usable(api):
    """One keep-alive connection: each bad request gets its 4xx and the next request on the same
    connection still works (no reset)."""
    headers = {"Authorization": f"Bearer {api.token()}", "Content-Type": "application/json"}
    deep = (
        b'{"name": "d", "benchmark": "permuted_digits", "description": '
        + b"[" * 50_000
        + b"]" * 50_000
        + b"}"
    )
    with httpx.Client(base_url=api.url, headers=headers, timeout=120) as http:
        answers = [
            http.post("/api/v1/sweeps", content=deep).status_code,
            http.post("/api/v1/sweeps", content=b'{"num_samples": ' + b"9" * 4000 + b"}").status_code,
            http.get("/api/v1/sweeps", params={"offset": "9" * 20}).status_code,
            http.get("/api/v1/sweeps/no-such-sweep/events").status_code,
            http.post("/api/v1/sweeps", content=b"[" * 10).status_code,
            http.get("/api/v1/sweeps").status_code,
        ]
    assert answers[:5] == [413, 422, 422, 404, 422] or answers[:5] == [422, 422, 422, 404, 422], answers
    assert answers[5] == 200


def test_readyz_and_errors_leak_no_paths_or_addresses(api):
    ready = httpx.get(f"{api.url}/readyz").json()
    assert {check["detail"] for check in ready["checks"].values()} <= {"reachable", "writable"}
    assert "/" not in json.dumps(ready) and "127.0.0.1" not in json.dumps(ready)


def test_dry_run_and_submission_checks_name_the_field(api, client):
    headers = {"Authorization": f"Bearer {api.token()}"}
    dry = httpx.post(
        f"{api.url}/api/v1/sweeps", params={"dry_run": "true"}, json=spec("dry"), headers=headers
    )
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["dry_run"] and body["expected_trials"] == 2 and len(body["trials"]) == 2
    assert 0 < body["max_trial_cost"] <= body["total_cost"] < body["sweep_budget"]
    costly = spec("costly", params={"hidden_sizes": [4096, 4096], "epochs": 50})
    refused = httpx.post(f"{api.url}/api/v1/sweeps", json=costly, headers=headers)
    assert refused.status_code == 422 and "DLAB_MAX_TRIAL_COST" in refused.json()["detail"][0]["msg"]
    assert refused.json()["detail"][0]["loc"] == ["body", "params"]
    wait_for(
        lambda: (
            httpx.post(
                f"{api.url}/api/v1/sweeps",
                params={"dry_run": "true"},
                headers=headers,
                json=spec("cpus", resources={"cpu": 4096}),
            ).status_code
            == 422
        ),
        120,
        "the reconciler's first reading of the cluster's resources",
    )
    too_many = httpx.post(
        f"{api.url}/api/v1/sweeps", json=spec("cpus", resources={"cpu": 1000}), headers=headers
    )
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["loc"] == [
        "body",
        "resources",
        "cpu",
    ]
    # memory per trial: below the trial's estimate (oversubscription), or more than any node has
    for memory_mb, why in ((1, "below a trial's estimated peak"), (2**24, "largest node")):
        refused = httpx.post(f"{api.url}/api/v1/sweeps", headers=headers,
                             json=spec("memory", resources={"memory_mb": memory_mb}))
        assert refused.status_code == 422, refused.text
        detail = refused.json()["detail"][0]
        assert detail["loc"] == ["body", "resources", "memory_mb"] and why in detail["msg"]
    no_data = {**spec("nodata"), "benchmark": "permuted_mnist5k"}
    no_data["benchmark"], no_data["params"] = (
        "permuted_mnist",
        {**no_data["params"], "data_dir": "/nonexistent"},
    )
    missing = httpx.post(f"{api.url}/api/v1/sweeps", json=no_data, headers=headers)
    assert missing.status_code == 422, missing.text
    assert missing.json()["detail"][0]["loc"] == ["body", "params", "data_dir"]
    assert client.list()["total"] == 0  # nothing was recorded or started


# --- the sweep lifecycle ---------------------------------------------------------------------


def test_submit_watch_report_and_idempotent_resubmission(api, client, home, tmp_path):
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
    assert final["trials"] == {
        "pending": 0,
        "running": 0,
        "done": 2,
        "failed": 0,
        "cancelled": 0,
        "never_started": 0,
    }
    assert final["best"]["metric"] == "mean_accuracy" and 0 < final["best"]["value"] <= 1
    assert client.list(status="succeeded")["total"] == 1  # the replay made no second sweep

    trials = client.trials(created["id"])
    assert sorted(t["config"]["num_segments"] for t in trials) == [1, 3]
    assert all(t["status"] == "done" and "mean_accuracy" in t["metrics"] for t in trials)
    report = client.report(created["id"])
    assert [row["num_segments"] for row in report["rows"]] == [1, 3]
    figure = f"/api/v1/sweeps/{created['id']}/report/mean_accuracy_vs_num_segments.png"
    assert report["figure_urls"] == [figure, f"/api/v1/sweeps/{created['id']}/report/subnetworks.png"]
    assert report["figures"] == ["mean_accuracy_vs_num_segments.png", "subnetworks.png"]  # relative
    assert client.figure(report["figure_urls"][0]).startswith(b"\x89PNG")
    saved = tmp_path / "saved"  # the whole report, as a researcher commits it
    common = ["--url", api.url, "--token", api.token()]
    assert dlab_main(["report", created["id"], "--out", str(saved), *common]) == 0
    kept = load_report(saved)
    assert kept.rows == report["rows"] and set(kept.files()) == set(report["file_urls"])
    assert {path.name for path in saved.iterdir()} == {"report.json", *kept.files()}
    assert (saved / "mean_accuracy_vs_num_segments.svg").read_text().lstrip().startswith("<?xml")
    assert len((saved / "trials.csv").read_text().splitlines()) == 3  # a header and the 2 trials
    assert kept.efficiency is not None and kept.efficiency.wall_from == "drivers"
    assert 0 < kept.efficiency.efficiency <= 1 and kept.efficiency.cores >= 1
    assert final["mlflow_tracking_uri"] is None  # a local store: its path stays on the server
    assert str(home) not in json.dumps(final) and "sqlite" not in json.dumps(final)
    mlflow = MlflowClient(ServiceSettings(home=home).tracking_uri)
    parent = mlflow.get_run(final["mlflow_parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["dlab.sweep_id"] == created["id"]


def test_cancel_mid_sweep_keeps_finished_trials(api, client, home):
    body = spec(
        "cancel", segments=(1, 2, 3, 4), max_concurrent_trials=1, params={"num_tasks": 3, "epochs": 3}
    )
    created = client.submit(body)
    for event, _ in client.events(created["id"]):
        if event == "trial_finished":
            break
    # while a trial runs, the sweep has an estimate of its time left (its arithmetic: test_time_left;
    # these toy trials train for a fraction of a second, so the estimate may round to 0 s)
    def estimated(detail: dict) -> dict | None:
        return detail if detail["estimated_time_left_s"] is not None else None

    left = wait_for(lambda: estimated(client.status(created["id"])), 120,
                    "an estimate of the sweep's time left", watch=[api.watched])["estimated_time_left_s"]
    assert isinstance(left, int) and left >= 0
    detail = client.cancel(created["id"])
    assert detail["status"] == "cancelled" and detail["estimated_time_left_s"] is None
    assert detail["trials"]["done"] >= 1 and detail["trials"]["done"] < 4
    with pytest.raises(ApiError) as again:
        client.cancel(created["id"])
    assert again.value.status_code == 409
    mlflow = MlflowClient(ServiceSettings(home=home).tracking_uri)
    assert mlflow.get_run(detail["mlflow_parent_run_id"]).info.status == "KILLED"
    settled = wait_for(
        lambda: (lambda d: d if d["trials"]["pending"] == d["trials"]["running"] == 0 else None)(
            client.status(created["id"])
        ),
        120,
        "the cancelled sweep's trials to settle",
    )
    assert (
        settled["trials"]["never_started"] + settled["trials"]["cancelled"] + settled["trials"]["done"] == 4
    )
    trials = client.trials(created["id"])
    assert any(t["status"] == "done" for t in trials)
    assert not any(t["status"] in ("running", "pending") for t in trials)
    children = mlflow.search_runs(
        [detail["mlflow_experiment_id"]], f"tags.`mlflow.parentRunId` = '{detail['mlflow_parent_run_id']}'"
    )
    assert children and all(run.info.status in ("FINISHED", "KILLED") for run in children)
    report = client.report(created["id"])
    assert report["trials_finished"] == detail["trials"]["done"]


def test_api_restart_does_not_lose_a_running_sweep(api, home):
    token = api.token()
    first = ApiProcess(home, env={"DLAB_POLL_INTERVAL_S": "0.5"}, log_path=home / "api-first.log").start()
    with DlabClient(first.url, token) as client:
        created = client.submit(
            spec(
                "restart", segments=(1, 2, 3), max_concurrent_trials=1, params={"num_tasks": 3, "epochs": 2}
            )
        )
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


def driver_processes(home) -> list[psutil.Process]:
    """This home's sweep drivers (``python -m sweeps.driver``), found by command line and DLAB_HOME."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if "sweeps.driver" in " ".join(process.info["cmdline"] or ()) and process.environ().get(
                "DLAB_HOME"
            ) == str(home):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_a_killed_driver_is_restarted_and_the_sweep_completes_losing_nothing(api, home):
    mlflow = MlflowClient(ServiceSettings(home=home).tracking_uri)
    with DlabClient(api.url, api.token()) as client:
        created = client.submit(
            spec(
                "driver-kill",
                segments=(1, 2, 3),
                max_concurrent_trials=1,
                params={"num_tasks": 3, "epochs": 3},
            )
        )

        def one_trial_finished():
            detail = client.status(created["id"])
            if detail["trials"]["done"] >= 1 and detail["status"] == "running":
                return [t for t in client.trials(created["id"]) if t["status"] == "done"]
            return None

        finished = wait_for(one_trial_finished, 600, "a finished trial with the sweep still running")
        before = {t["run_id"]: mlflow.get_run(t["run_id"]) for t in finished}
        drivers = wait_for(lambda: driver_processes(home), 60, "the driver process")
        for process in drivers:
            process.kill()  # kill -9: no shutdown handler runs
        final = collect_events(client, created["id"])
        trials = [(t["trial_id"], t["status"]) for t in client.trials(created["id"])]
    assert final[-1][1]["status"] == "succeeded", final[-1][1]
    assert final[-1][1]["driver_restarts"] >= 1
    assert "driver_restarted" in [event for event, _ in final]
    assert final[-1][1]["trials"]["done"] == 3, (final[-1][1]["trials"], trials)
    children = mlflow.search_runs(
        [final[-1][1]["mlflow_experiment_id"]],
        f"tags.`mlflow.parentRunId` = '{final[-1][1]['mlflow_parent_run_id']}'",
    )
    assert len(children) == 3 and all(run.info.status == "FINISHED" for run in children)
    for run_id, run in before.items():  # finished before the kill: untouched
        after = mlflow.get_run(run_id)
        assert after.info.end_time == run.info.end_time and after.data.metrics == run.data.metrics


def test_a_seeded_search_with_early_stopping_resumes_its_study_after_its_driver_is_killed(api, home):
    body = spec("search-kill", params={"num_tasks": 4, "epochs": 2, "batch_size": 32},
                search_alg="optuna", search_seed=5, num_samples=5, scheduler="asha", max_concurrent_trials=1)
    body["search_space"] = {"weight_sparsity": {"type": "uniform", "low": 0.0, "high": 0.9},
                            "num_segments": {"type": "randint", "low": 1, "high": 6}}
    with DlabClient(api.url, api.token()) as client:
        dry = httpx.post(f"{api.url}/api/v1/sweeps", params={"dry_run": "true"}, json=body,
                         headers={"Authorization": f"Bearer {api.token()}"}).json()
        assert dry["expected_trials"] == 5 and dry["total_cost"] == pytest.approx(5 * dry["max_trial_cost"])
        saving = dry["early_stopping"]  # stated apart: the bound stays every trial's full budget
        assert saving["rungs"] == [1, 3] and saving["expected_cost"] < dry["total_cost"]
        created = client.submit(body)
        wait_for(lambda: (lambda d: d["trials"]["done"] >= 1 and d["status"] == "running")(
            client.status(created["id"])), 600, "an ended trial with the search still running")
        for process in wait_for(lambda: driver_processes(home), 60, "the driver process"):
            process.kill()  # kill -9: no shutdown handler runs
        final = collect_events(client, created["id"])[-1][1]
        report = client.report(created["id"])
    assert final["status"] == "succeeded", final
    assert final["driver_restarts"] >= 1 and final["trials"]["done"] == 5
    assert_the_same_study_continued(ServiceSettings(home=home).ray_results / created["id"],
                                    ServiceSettings(home=home).tracking_uri)
    search = report["search"]
    assert search["trials_complete"] + search["trials_stopped"] == 5
    assert sum(search["stopped_at"].values()) == search["trials_stopped"]
    assert f"/api/v1/sweeps/{created['id']}/report/search_parallel_coordinates.png" in report["figure_urls"]


def test_cli_commands_against_the_service(api, tmp_path, capsys):
    common = ["--url", api.url, "--token", api.token()]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nbenchmark: permuted_digits\nnum_samples: 0\n")
    assert dlab_main(["submit", str(bad), *common]) == 2
    assert "num_samples" in capsys.readouterr().err  # errors go to stderr
    with DlabClient(api.url, api.token()) as client:
        before = client.list()["total"]
    good = tmp_path / "good.json"
    good.write_text(json.dumps(spec("dry-cli", segments=(1, 3))))
    assert dlab_main(["submit", str(good), "--dry-run", *common]) == 0
    out = capsys.readouterr().out
    assert "dry-cli (permuted_digits): 2 trial(s)" in out and "num_segments=3" in out
    three = estimate(SweepSpec.model_validate(spec("dry-cli", segments=(3,))))
    assert f"costliest trial {three.max_trial_cost:.3g}" in out and "nothing was submitted" in out
    assert dlab_main(["submit", str(bad), "--dry-run", *common]) == 2  # refused as a submission is
    assert "num_samples" in capsys.readouterr().err
    assert dlab_main(["list", *common]) == 0
    assert f"{before} sweeps" in capsys.readouterr().out  # the dry run recorded nothing
    assert dlab_main(["status", "no-such-sweep", *common]) == 3
    assert "no sweep" in capsys.readouterr().err
    assert dlab_main(["list", "--url", api.url, "--token", "wrong"]) == 6  # the token was refused


# --- limits and a dead Ray, through the same app in-process -----------------------------------


def test_active_sweep_limit_is_429_and_dead_ray_is_503_with_the_record_kept(home, api):
    head = running_local_head(ServiceSettings(home=home))
    limited = ServiceSettings(
        home=home, max_active_sweeps=1, ray_dashboard_url=head.dashboard_url, api_tokens=["t"]
    )
    dead = ServiceSettings(home=home, ray_dashboard_url="http://127.0.0.1:9", api_tokens=["t"])
    auth = {"Authorization": "Bearer t"}
    with DlabClient(api.url, api.token()) as client:
        running = client.submit(
            spec("limit", segments=(1, 2, 3), max_concurrent_trials=1, params={"num_tasks": 3, "epochs": 2})
        )
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
        assert "127.0.0.1" not in failed.text and ":9" not in failed.text
        listed = app.get("/api/v1/sweeps", params={"status": "failed"}, headers=auth).json()
        assert "noray" in {item["name"] for item in listed["items"]}
        assert app.get("/api/v1/sweeps", headers=auth).json()["total"] >= 3  # earlier sweeps kept
