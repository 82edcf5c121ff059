"""A report read back from a real MLflow store (no Ray): task inference and the clusters online
prototypes found are in its table where the trials report them, only the metrics a figure is
about are drawn, a cases sweep is drawn against the values its cases set, and the paper's curve
stands beside a sweep run as the paper ran it."""

from __future__ import annotations

import re

import pytest

from sweeps import mlflow_tags as tags
from sweeps.plan import SweepPlan
from sweeps.report import REPORT_FORMAT, build_report, fixed_params
from sweeps.spec import SweepSpec
from tests.sweeps.recorded import recorded_sweep


def _plan(search_space: dict, benchmark: str = "permuted_digits", params: dict | None = None) -> SweepPlan:
    return SweepPlan.resolve(SweepSpec.model_validate({
        "name": "recorded", "benchmark": benchmark, "params": {"num_tasks": 3} if params is None else params,
        "search_space": {**search_space, "seed": {"type": "grid", "values": [0, 1]}}}), "recorded-1")


def _panels(svg: str) -> int:
    """How many plot areas (axes) a matplotlib SVG has."""
    return len(set(re.findall(r'id="axes_(\d+)"', svg)))


def _texts(svg: str) -> set[str]:
    """The texts a matplotlib SVG draws (it writes each as a comment before its glyphs)."""
    return set(re.findall(r"<!-- (.*?) -->", svg))


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


@pytest.mark.parametrize(("benchmark", "num_tasks", "paper_axes"), [
    ("permuted_fashion_mnist", 10, 1),  # as the paper ran it: its MNIST curve on a right-hand axis
    ("permuted_fashion_mnist", None, 1),  # the benchmark's default task count is the paper's 10
    ("permuted_fashion_mnist", 3, 0),  # its 10-task curve is no reference for 3 tasks
    ("permuted_digits", 10, 0),  # nor for the bundled toy digits
])
def test_a_figure_draws_the_sweeps_metric_and_forgetting_but_tables_task_inference(
        tmp_path, benchmark: str, num_tasks: int | None, paper_axes: int):
    trials = [({"kw_percent_on": kw, "seed": seed},
               {"mean_accuracy": 0.8 - kw / 10, "forgetting": 0.05 + kw / 10, "task_inference_accuracy": 0.99,
                "wall_time_s": 60.0})
              for kw in (0.05, 0.1) for seed in (0, 1)]
    client, experiment, parent = recorded_sweep(tmp_path, trials)
    plan = _plan({"kw_percent_on": {"type": "grid", "values": [0.05, 0.1]}}, benchmark,
                 {} if num_tasks is None else {"num_tasks": num_tasks})
    report = build_report(client, experiment, parent, plan, tmp_path / "report", log_to_mlflow=False, cores=2)
    assert report.metrics == ["mean_accuracy", "forgetting", "task_inference_accuracy"]
    assert report.figures == ["mean_accuracy_vs_kw_percent_on.png"]
    assert report.params == {"num_tasks": num_tasks or 10}
    svg = (tmp_path / "report" / "mean_accuracy_vs_kw_percent_on.svg").read_text()
    # accuracy beside forgetting (task inference is a column, not a panel), and the paper's axis
    assert _panels(svg) == 2 + paper_axes
    assert ("paper, MNIST, 10 tasks (%, n = 10, right axis)" in _texts(svg)) == bool(paper_axes)


def test_a_cases_sweep_is_drawn_against_the_task_count_its_cases_set_a_curve_per_model(tmp_path):
    cases = {"dendrites_2": {"variant": "active_dendrites", "num_segments": 10, "num_tasks": 2},
             "dendrites_10": {"variant": "active_dendrites", "num_segments": 10, "num_tasks": 10},
             "mlp_10": {"variant": "mlp", "num_tasks": 10}}
    accuracy = {"dendrites_2": 0.95, "dendrites_10": 0.82, "mlp_10": 0.77}
    trials = [({"setting": name, "seed": seed},
               {"mean_accuracy": accuracy[name] + seed / 100, "forgetting": 0.05, "wall_time_s": 60.0})
              for name in cases for seed in (0, 1)]
    client, experiment, parent = recorded_sweep(tmp_path, trials)
    plan = _plan({"setting": {"type": "cases", "values": cases}}, "permuted_fashion_mnist",
                 {"preset": "paper"})
    report = build_report(client, experiment, parent, plan, tmp_path / "report", log_to_mlflow=False, cores=2)
    assert report.figures == ["mean_accuracy_vs_num_tasks.png"]
    header = (tmp_path / "report" / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["setting", "variant", "num_tasks"]  # num_segments: not set by every case
    assert [row["setting"] for row in report.rows] == list(cases)  # the spec's order, not 10 < 2
    rows = {row["setting"]: row for row in report.rows}
    assert (rows["mlp_10"]["variant"], rows["mlp_10"]["num_tasks"]) == ("mlp", 10)
    assert rows["dendrites_2"]["mean_accuracy_mean"] == pytest.approx(0.955)
    assert report.group_by == ["setting"]  # the table still names each case
    assert report.params == {"preset": "paper"}  # the cases set the task count: no default for it
    svg = (tmp_path / "report" / "mean_accuracy_vs_num_tasks.svg").read_text()
    assert _panels(svg) == 3  # accuracy, forgetting, and the paper's task-count curves
    legend = {t for t in _texts(svg) if "mean ± std" in t}
    assert legend == {"variant=active_dendrites (mean ± std, n = 2 seeds)",
                      "variant=mlp (mean ± std, n = 2 seeds)"}  # a curve per model, not per case
    assert "paper, MNIST, Active Dendrites, 10 segments (%, n = 8, right axis)" in _texts(svg)


@pytest.mark.parametrize(("cases", "legend"), [
    # the preset against a setting a search found: their values do not tell them apart
    ({"paper": {}, "found": {"lr": 8e-4, "kw_percent_on": 0.08}}, {"setting=paper", "setting=found"}),
    # lists (grouped by their JSON)
    ({"small": {"hidden_sizes": [64, 64]}, "big": {"hidden_sizes": [256, 256]}},
     {"hidden_sizes=[64, 64]", "hidden_sizes=[256, 256]"}),
    # labels MLflow hands back as numbers
    ({"10": {"lr": 0.001}, "20": {"lr": 0.0005}}, {"lr=0.001", "lr=0.0005"}),
])
def test_a_cases_sweep_crossed_with_a_grid_draws_a_curve_per_case(tmp_path, cases: dict, legend: set):
    trials = [({"setting": name, "num_segments": segments, "seed": seed},
               {"mean_accuracy": 0.7 + index / 10 + segments / 100, "wall_time_s": 60.0})
              for index, name in enumerate(cases) for segments in (5, 10) for seed in (0, 1)]
    client, experiment, parent = recorded_sweep(tmp_path, trials)
    plan = _plan({"setting": {"type": "cases", "values": cases},
                  "num_segments": {"type": "grid", "values": [5, 10]}})
    report = build_report(client, experiment, parent, plan, tmp_path / "report", log_to_mlflow=False, cores=2)
    assert report.figures == ["mean_accuracy_vs_num_segments.png"]
    svg = (tmp_path / "report" / "mean_accuracy_vs_num_segments.svg").read_text()
    assert {t.split(" (mean")[0] for t in _texts(svg) if "mean ± std" in t} == legend


def test_a_sweep_is_compared_with_the_paper_at_the_defaults_it_leaves_and_only_those():
    def plan(benchmark: str, params: dict, search_space: dict) -> SweepPlan:
        return SweepPlan.resolve(SweepSpec.model_validate({
            "name": "p", "benchmark": benchmark, "params": params, "search_space": search_space}))

    segments = {"num_segments": {"type": "grid", "values": [2, 10]}}
    assert fixed_params(plan("permuted_fashion_mnist", {"preset": "paper"}, segments)) == {
        "preset": "paper", "num_tasks": 10}  # the spec's first, then the default it ran with
    assert fixed_params(plan("permuted_fashion_mnist", {"num_tasks": 3}, segments)) == {"num_tasks": 3}
    searched = plan("permuted_fashion_mnist", {}, {"num_tasks": {"type": "grid", "values": [2, 5]}})
    assert fixed_params(searched) == {}  # varied: no fixed value
    # Meta-World's task count is its environment's, not a parameter: never a fixed value
    assert fixed_params(plan("metaworld_mt10", {}, {"seed": {"type": "grid", "values": [0]}})) == {}


def test_a_trial_that_ran_its_own_budget_is_a_result_whatever_its_stopped_tag_says(tmp_path):
    """A service that compared each trial's last step with the sweep's default budget (10 tasks)
    tagged a cases sweep's 2-task trials as stopped early, and the report left them out: read
    back, a run whose own progress reached 1 is a result; a run that stopped short is not."""
    cases = {"dendrites_2": {"variant": "active_dendrites", "num_tasks": 2},
             "dendrites_10": {"variant": "active_dendrites", "num_tasks": 10}}
    trials = [({"setting": name, "seed": seed}, {"mean_accuracy": 0.8 + seed / 100, "progress": 1.0})
              for name in cases for seed in (0, 1)]
    trials[-1][1]["progress"] = 0.3  # dendrites_10, seed 1: ASHA ended it after 3 tasks
    client, experiment, parent = recorded_sweep(tmp_path, trials)
    for run in client.search_runs([experiment], filter_string=f"tags.`{tags.PARENT_RUN}` = '{parent}'"):
        name = run.data.tags[tags.RUN_NAME]
        if "dendrites_2" in name or (name.endswith("seed=1") and "dendrites_10" in name):
            client.set_tag(run.info.run_id, tags.STOPPED_AT, "2" if "dendrites_2" in name else "3")
    plan = _plan({"setting": {"type": "cases", "values": cases}}, "permuted_fashion_mnist",
                 {"preset": "paper"})
    report = build_report(client, experiment, parent, plan, tmp_path / "report", log_to_mlflow=False, cores=2)
    assert {row["setting"]: row["count"] for row in report.rows} == {"dendrites_2": 2, "dendrites_10": 1}
