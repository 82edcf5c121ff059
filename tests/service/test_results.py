"""An ended sweep's report as the service keeps it: built from a real MLflow store once, then read
from its cache, and built again where an older service cached a report of another format."""

from __future__ import annotations

from service.db import SweepRow
from service.results import Reports
from service.settings import ServiceSettings
from sweeps.report import REPORT_FORMAT, SweepReport
from tests.service.specs import spec
from tests.sweeps.recorded import recorded_sweep


def _ended_sweep(tmp_path) -> tuple[Reports, SweepRow]:
    trials = [({"num_segments": segments, "seed": 0},
               {"mean_accuracy": 0.8 + segments / 100, "task_inference_accuracy": 0.99, "wall_time_s": 30.0})
              for segments in (1, 3)]
    client, experiment, parent = recorded_sweep(tmp_path, trials)
    row = SweepRow(id="s-1", name="s", benchmark="permuted_digits", status="succeeded", spec=spec("s"),
                   spec_hash="h", expected_trials=2, metric="mean_accuracy", mode="max",
                   driver_submitted=True, settled=True, experiment_id=experiment, parent_run_id=parent,
                   trials=[])
    return Reports(ServiceSettings(home=tmp_path / "home", api_tokens=["t"]), client), row


def test_an_ended_sweeps_report_is_built_once_then_read_from_its_cache(tmp_path):
    reports, row = _ended_sweep(tmp_path)
    built = reports.report(row)
    assert [r["num_segments"] for r in built.rows] == [1, 3]
    cached = reports.settings.reports / "s-1" / "report.json"
    marked = built.model_copy(update={"title": "read from the cache"})
    cached.write_text(marked.model_dump_json())
    assert reports.report(row).title == "read from the cache"


def test_a_report_an_older_service_cached_is_built_again_in_this_format(tmp_path):
    reports, row = _ended_sweep(tmp_path)
    directory = reports.settings.reports / "s-1"
    directory.mkdir(parents=True)
    older = SweepReport(sweep_id="s-1", metric="mean_accuracy", group_by=["num_segments"], trials=2,
                        trials_finished=2, rows=[], table_csv="results.csv", table_json="results.json",
                        figures=[], metrics=["mean_accuracy"])  # format 1: before task inference was tabled
    (directory / "report.json").write_text(older.model_dump_json(exclude={"format_version"}))
    report = reports.report(row)
    assert report.format_version == REPORT_FORMAT
    assert report.metrics == ["mean_accuracy", "task_inference_accuracy"]
    assert len(report.rows) == 2
    cached = SweepReport.model_validate_json((directory / "report.json").read_text())
    assert cached.model_dump() == report.model_dump()  # cached anew


def _cached_older(reports: Reports) -> tuple[SweepReport, object]:
    directory = reports.settings.reports / "s-1"
    directory.mkdir(parents=True)
    older = SweepReport(sweep_id="s-1", metric="mean_accuracy", group_by=["num_segments"], trials=2,
                        trials_finished=2, rows=[{"num_segments": 1}], table_csv="results.csv",
                        table_json="results.json", figures=[], metrics=["mean_accuracy"])
    (directory / "report.json").write_text(older.model_dump_json(exclude={"format_version"}))
    (directory / "results.csv").write_text("num_segments,mean_accuracy_mean\n1,0.8\n")
    return older, directory


def test_an_older_report_that_cannot_be_built_again_is_kept_with_its_files(tmp_path):
    reports, row = _ended_sweep(tmp_path)
    older, directory = _cached_older(reports)
    row.parent_run_id = "runs-deleted-from-mlflow"  # MLflow has no trial of it now
    assert reports.report(row).rows == older.rows
    row.spec = {"name": "s"}  # a stored spec this version no longer reads
    assert reports.report(row).rows == older.rows
    assert (directory / "results.csv").read_text() == "num_segments,mean_accuracy_mean\n1,0.8\n"
    assert sorted(p.name for p in reports.settings.reports.iterdir()) == ["s-1"]  # nothing left beside
