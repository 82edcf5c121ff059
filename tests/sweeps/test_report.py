"""A report read back from a real MLflow store (no Ray): task inference and the clusters online
prototypes found are in its table where the trials report them, and only the metrics a figure
is about are drawn."""

from __future__ import annotations

import re

import pytest

from sweeps.plan import SweepPlan
from sweeps.report import REPORT_FORMAT, build_report
from sweeps.spec import SweepSpec
from tests.sweeps.recorded import recorded_sweep


def _plan(search_space: dict) -> SweepPlan:
    return SweepPlan.resolve(SweepSpec.model_validate({
        "name": "recorded", "benchmark": "permuted_digits", "params": {"num_tasks": 3},
        "search_space": {**search_space, "seed": {"type": "grid", "values": [0, 1]}}}), "recorded-1")


def _panels(svg: str) -> int:
    """How many plot areas (axes) a matplotlib SVG has."""
    return len(set(re.findall(r'id="axes_(\d+)"', svg)))


def test_online_prototype_clusters_and_task_inference_are_tabled_per_setting(tmp_path):
    trials = []
    for seed in (0, 1):
        trials.append(({"variant": "online_prototypes", "seed": seed},
                       {"mean_accuracy": 0.77, "forgetting": 0.11, "num_clusters": 39 + 3 * seed,
                        "task_inference_accuracy": 0.97 + 0.02 * seed, "wall_time_s": 100.0}))
        trials.append(({"variant": "active_dendrites", "seed": seed},
                       {"mean_accuracy": 0.82, "forgetting": 0.05, "task_inference_accuracy": 1.0,
                        "wall_time_s": 100.0}))
    client, experiment, parent = recorded_sweep(tmp_path, trials)
    plan = _plan({"variant": {"type": "grid", "values": ["online_prototypes", "active_dendrites"]}})
    report = build_report(client, experiment, parent, plan, tmp_path / "report", log_to_mlflow=False, cores=2)
    assert report.metrics == ["mean_accuracy", "forgetting", "task_inference_accuracy", "num_clusters"]
    rows = {row["variant"]: row for row in report.rows}
    online, dendrites = rows["online_prototypes"], rows["active_dendrites"]
    assert online["num_clusters_mean"] == pytest.approx(40.5)
    assert online["num_clusters_std"] == pytest.approx(2.1213, abs=1e-4)  # over the 2 seeds
    assert online["task_inference_accuracy_mean"] == pytest.approx(0.98)
    assert dendrites["num_clusters_mean"] is None  # no clusters: not a zero
    assert dendrites["task_inference_accuracy_mean"] == pytest.approx(1.0)
    assert report.format_version == REPORT_FORMAT
    header = (tmp_path / "report" / "results.csv").read_text().splitlines()[0]
    assert "num_clusters_mean" in header and "task_inference_accuracy_std" in header


def test_a_figure_draws_the_sweeps_metric_and_forgetting_but_tables_task_inference(tmp_path):
    trials = [({"kw_percent_on": kw, "seed": seed},
               {"mean_accuracy": 0.8 - kw / 10, "forgetting": 0.05 + kw / 10, "task_inference_accuracy": 0.99,
                "wall_time_s": 60.0})
              for kw in (0.05, 0.1) for seed in (0, 1)]
    client, experiment, parent = recorded_sweep(tmp_path, trials)
    plan = _plan({"kw_percent_on": {"type": "grid", "values": [0.05, 0.1]}})
    report = build_report(client, experiment, parent, plan, tmp_path / "report", log_to_mlflow=False, cores=2)
    assert report.metrics == ["mean_accuracy", "forgetting", "task_inference_accuracy"]
    assert report.figures == ["mean_accuracy_vs_kw_percent_on.png"]
    svg = (tmp_path / "report" / "mean_accuracy_vs_kw_percent_on.svg").read_text()
    assert _panels(svg) == 2  # accuracy beside forgetting; task inference is a column, not a panel
