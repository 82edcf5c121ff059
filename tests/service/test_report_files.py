"""Report files: served only as regular files inside the sweep's report directory, and never
torn: a figure rewritten while it is read is always one whole version. In-process."""

from __future__ import annotations

import threading

import pytest

from service.db import SweepRow
from service.settings import ServiceSettings
from sweeps import figures
from sweeps.report import REPORT_FORMAT, SweepReport
from sweeps.spec import SweepSpec
from tests.service.served import app_without_lifespan
from tests.service.specs import spec

AUTH = {"Authorization": "Bearer t"}
FIGURES = ["mean_accuracy_vs_num_segments.png", "subnetworks.png"]


@pytest.fixture
def served(tmp_path):
    """An ended sweep whose report is cached on disk (no MLflow read needed)."""
    settings = ServiceSettings(home=tmp_path / "home", api_tokens=["t"])
    client, services = app_without_lifespan(settings)
    with services.sessions() as session:
        session.add(SweepRow(id="s-1", name="s", benchmark="permuted_digits", status="succeeded",
                             spec=spec("s"), spec_hash="h", expected_trials=2, metric="mean_accuracy",
                             mode="max", driver_submitted=True, settled=True, experiment_id="1",
                             parent_run_id="p", trials=[]))
        session.commit()
    directory = settings.reports / "s-1"
    directory.mkdir(parents=True)
    report = SweepReport(sweep_id="s-1", metric="mean_accuracy", group_by=["num_segments"], trials=2,
                         trials_finished=2, rows=[], table_csv="results.csv", table_json="results.json",
                         figures=FIGURES, format_version=REPORT_FORMAT)
    (directory / "report.json").write_text(report.model_dump_json())
    return client, directory


def test_a_figure_in_the_report_directory_is_served_whole(served):
    client, directory = served
    (directory / FIGURES[0]).write_bytes(b"\x89PNG figure bytes")
    answer = client.get(f"/api/v1/sweeps/s-1/report/{FIGURES[0]}", headers=AUTH)
    assert answer.status_code == 200 and answer.content == b"\x89PNG figure bytes"
    assert int(answer.headers["content-length"]) == len(answer.content)


def test_every_file_the_report_lists_is_served_with_its_type_and_nothing_else(served, tmp_path):
    client, directory = served
    listed = client.get("/api/v1/sweeps/s-1/report", headers=AUTH).json()["file_urls"]
    assert set(listed) == {"results.csv", "results.json", "trials.csv", *FIGURES,
                           "mean_accuracy_vs_num_segments.svg", "subnetworks.svg"}
    for name in listed:
        (directory / name).write_bytes(f"the bytes of {name}".encode())
    types = {".csv": "text/csv", ".json": "application/json", ".png": "image/png", ".svg": "image/svg+xml"}
    for name, url in listed.items():
        answer = client.get(url, headers=AUTH)
        assert answer.status_code == 200 and answer.content == f"the bytes of {name}".encode()
        assert answer.headers["content-type"].split(";")[0] == types[name[name.rindex("."):]]
    (tmp_path / "home" / "api-token").write_text("the api token")
    (directory / "notes.txt").write_text("a file the report does not list")
    for name in ("report.json", "notes.txt", "..%2F..%2Fapi-token", "%2E%2E"):
        answer = client.get(f"/api/v1/sweeps/s-1/report/files/{name}", headers=AUTH)
        assert answer.status_code == 404, (name, answer.text)
        assert "the api token" not in answer.text and str(tmp_path) not in answer.text


def test_a_symlink_in_the_report_directory_is_not_followed(served, tmp_path):
    client, directory = served
    secret = tmp_path / "home" / "api-token"
    secret.write_text("the api token")
    (directory / "subnetworks.png").symlink_to(secret)
    (directory / FIGURES[0]).symlink_to(directory / "report.json")  # inside, but still a link
    for name in FIGURES:
        answer = client.get(f"/api/v1/sweeps/s-1/report/{name}", headers=AUTH)
        assert answer.status_code == 404, answer.text
        assert "the api token" not in answer.text and str(tmp_path) not in answer.text


def test_a_figure_saved_again_while_it_is_read_is_never_torn(tmp_path):
    """Readers polling a figure while a report build rewrites it (as the API and the driver do at a
    sweep's end) see one complete version each time: the old file or the new one."""
    import matplotlib.pyplot as plt

    stem = tmp_path / "figure"
    sizes: set[int] = set()
    complete = {}
    for points in (10, 4000):  # two versions of different sizes
        fig, ax = plt.subplots()
        ax.plot(range(points), [i % 7 for i in range(points)])
        figures.save(fig, tmp_path / f"v{points}")
        complete[points] = (tmp_path / f"v{points}.svg").read_bytes()
    sizes = {len(body) for body in complete.values()}
    stop, seen = threading.Event(), []

    def read() -> None:
        while not stop.is_set():
            path = stem.with_suffix(".svg")
            if path.exists():
                seen.append(path.read_bytes())

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for round_ in range(12):
            points = (10, 4000)[round_ % 2]
            fig, ax = plt.subplots()
            ax.plot(range(points), [i % 7 for i in range(points)])
            figures.save(fig, stem)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert seen
    torn = [len(body) for body in seen if len(body) not in sizes]
    assert not torn, f"{len(torn)} of {len(seen)} reads saw a partly written figure"


def test_a_sweep_without_a_saved_report_has_its_report_built_from_mlflow(tmp_path):
    """A running sweep, or one whose driver was stopped before it wrote its report: the service
    builds the report from the stored spec and the MLflow runs."""
    settings = ServiceSettings(home=tmp_path / "home", api_tokens=["t"])
    client, services = app_without_lifespan(settings)
    experiment = services.mlflow.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    parent = services.mlflow.create_run(experiment).info.run_id
    with services.sessions() as session:
        session.add(SweepRow(id="s-2", name="s", benchmark="permuted_digits", status="running",
                             spec=SweepSpec.model_validate(spec("s")).model_dump(mode="json"),
                             spec_hash="h", expected_trials=2, metric="mean_accuracy", mode="max",
                             driver_submitted=True, experiment_id=experiment, parent_run_id=parent,
                             trials=[]))
        session.commit()
    answer = client.get("/api/v1/sweeps/s-2/report", headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json()["trials"] == 0 and answer.json()["efficiency"] is None


def test_a_recorded_search_that_this_version_refuses_still_has_its_report(tmp_path):
    """A sweep recorded under older rules (here a two-objective search with ASHA, refused since):
    its stored spec is rebuilt field by field (search dimensions, objectives) for its report."""
    settings = ServiceSettings(home=tmp_path / "home", api_tokens=["t"])
    client, services = app_without_lifespan(settings)
    experiment = services.mlflow.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    parent = services.mlflow.create_run(experiment).info.run_id
    recorded = {**spec("old-search"), "search_alg": "optuna", "search_seed": 0, "num_samples": 4,
                "scheduler": "asha", "objectives": [{"metric": "forgetting", "mode": "min"}],
                "search_space": {"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}}
    with pytest.raises(ValueError, match="objectives"):
        SweepSpec.model_validate(recorded)
    with services.sessions() as session:
        session.add(SweepRow(id="s-3", name="old-search", benchmark="permuted_digits",
                             status="failed", spec=recorded, spec_hash="h", expected_trials=4,
                             metric="mean_accuracy", mode="max", driver_submitted=True, settled=True,
                             experiment_id=experiment, parent_run_id=parent, trials=[]))
        session.commit()
    answer = client.get("/api/v1/sweeps/s-3/report", headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json()["search"]["trials_complete"] == 0
