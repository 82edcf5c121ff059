"""Report figures and MLflow naming, without Ray: ticks, log axes, legends, baselines, the paper's
two-panel figure, run names and metric names."""

from __future__ import annotations

import json
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.transforms import Bbox

from dlab.cli import main as dlab_main
from sweeps.figures import accuracy_matrix_figure, draw_metric_vs, draw_paper_curves, save, subnetwork_figure
from sweeps.paper_curves import PaperCurve
from sweeps.report import SweepReport, paper_figure, summarise
from sweeps.spec import GridDimension, LogUniformDimension
from sweeps.tracking import (
    _step_scale,
    describe_dimension,
    metric_key,
    mlflow_ui_url,
    trial_run_name,
)


def _summary(axis: str, values: list[float], models=("dendritic",)) -> pd.DataFrame:
    rows = [{"model": m, axis: v, "mean_accuracy_mean": 0.5 + 0.1 * i, "mean_accuracy_std": 0.02, "count": 3}
            for m in models for i, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_ticks_sit_at_the_swept_values_and_decades_get_a_log_axis() -> None:
    figure, ax = plt.subplots()
    draw_metric_vs(ax, _summary("num_segments", [1, 2, 3, 5, 10]), "num_segments", "mean_accuracy",
                   ["model", "num_segments"])
    assert ax.get_xscale() == "linear"
    assert list(ax.get_xticks()) == [1, 2, 3, 5, 10]
    figure.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "5", "10"]
    plt.close(figure)
    figure, ax = plt.subplots()
    draw_metric_vs(ax, _summary("kw_percent_on", [0.01, 0.05, 0.2, 0.5, 0.99]), "kw_percent_on",
                   "mean_accuracy", ["model", "kw_percent_on"])
    assert ax.get_xscale() == "log"
    figure.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.01", "0.05", "0.2", "0.5", "0.99"]
    plt.close(figure)
    figure, ax = plt.subplots()  # the paper's densities: 0.8 and 0.9 crowd 0.99 on a log axis
    values = [0.01, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.99]
    draw_metric_vs(ax, _summary("kw_percent_on", values), "kw_percent_on", "mean_accuracy",
                   ["model", "kw_percent_on"])
    assert list(ax.get_xticks()) == values  # every value keeps its mark
    figure.canvas.draw()  # labels are fitted to the axis as drawn
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.01", "0.05", "0.1", "0.2", "0.4", "0.6", "",
                                                            "", "0.99"]
    figure.set_size_inches(3, 3)  # a narrower axis shows fewer
    figure.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.01", "0.05", "", "0.2", "0.4", "", "", "",
                                                            "0.99"]
    plt.close(figure)


def test_legend_states_the_spread_and_seeds_and_baselines_are_lines() -> None:
    figure, ax = plt.subplots()
    summary = _summary("num_segments", [1, 5, 10], models=("dendritic", "mlp"))
    draw_metric_vs(ax, summary, "num_segments", "mean_accuracy", ["model", "num_segments"])
    labels = [text.get_text() for text in ax.legend().get_texts()]
    assert labels == ["model=dendritic (mean ± std, n = 3 seeds)", "mlp baseline (mean ± std, n = 3 seeds)"]
    baseline = next(line for line in ax.get_lines() if line.get_label().startswith("mlp"))
    assert list(baseline.get_ydata()) == [pytest.approx(0.6), pytest.approx(0.6)]  # the mean over x
    plt.close(figure)


def test_summary_pools_seeds_per_setting() -> None:
    trials = pd.DataFrame({"num_segments": [1, 1, 5, 5], "status": ["FINISHED"] * 4,
                           "mean_accuracy": [0.5, 0.7, 0.8, 0.8], "forgetting": [0.2, 0.4, 0.1, 0.1]})
    summary = summarise(trials, ["num_segments"], "mean_accuracy", ["forgetting", "subnetwork_overlap"])
    assert list(summary.columns) == ["num_segments", "mean_accuracy_mean", "mean_accuracy_std",
                                     "forgetting_mean", "forgetting_std", "count"]
    assert summary["mean_accuracy_mean"].tolist() == pytest.approx([0.6, 0.8])
    assert summary["count"].tolist() == [2, 2]


@pytest.mark.parametrize(("benchmark", "paper_axes"), [("permuted_fashion_mnist", 2), ("permuted_digits", 0)])
def test_paper_figure_puts_the_two_sweeps_side_by_side(tmp_path, monkeypatch, benchmark: str,
                                                       paper_axes: int) -> None:
    for name, axis, values in (("seg", "num_segments", [1, 5, 10]), ("den", "kw_percent_on", [0.05, 0.5])):
        directory = tmp_path / name
        directory.mkdir()
        _summary(axis, values).drop(columns="model").to_csv(directory / "results.csv", index=False)
        report = SweepReport(sweep_id=name, metric="mean_accuracy", group_by=[axis], trials=9,
                             trials_finished=9, rows=[], table_csv="results.csv", table_json="results.json",
                             figures=[], benchmark=benchmark, title=f"{benchmark}: {name}",
                             params={"num_tasks": 10})
        (directory / "report.json").write_text(report.model_dump_json())
    paths = paper_figure(tmp_path / "seg", tmp_path / "den", tmp_path / "paper")
    assert [p.name for p in paths] == ["paper.png", "paper.svg"]
    assert all(p.stat().st_size > 1000 for p in paths)
    svg = paths[1].read_text()
    # each panel with the paper's (MNIST, 10-task) curve on a right-hand axis of its own, but
    # only beside a full-size benchmark
    assert len(set(re.findall(r'id="axes_(\d+)"', svg))) == 2 + paper_axes
    assert svg.count("<!-- paper, MNIST, 10 tasks (%, n = 10, right axis) -->") == paper_axes
    # the command takes the reports' directories as `dlab report --out` leaves them
    monkeypatch.chdir(tmp_path)
    assert dlab_main(["sweep", "paper-figure", "seg", "den", "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli.svg").read_text().count("right axis") == svg.count("right axis")
    with pytest.raises(ValueError, match="does not vary num_segments"):
        paper_figure(tmp_path / "den", tmp_path / "seg", tmp_path / "wrong")


def test_trial_figures_render() -> None:
    plt.close(accuracy_matrix_figure([[0.9], [0.7, 0.95]], "acc"))
    analysis = {"tasks": ["task 0", "task 1"],
                "layers": [{"overlap": [[1, 0.2], [0.2, 1]], "mean_overlap": 0.2, "units": 8,
                            "winners_per_input": 2.0}]}
    plt.close(subnetwork_figure(json.loads(json.dumps(analysis)), "overlap"))


def test_run_names_parameters_metric_names_and_links() -> None:
    assert trial_run_name({"num_segments": 5, "seed": 1, "lr": 0.1}, ["num_segments", "seed"]) == \
        "num_segments=5 seed=1"
    assert trial_run_name({"hidden_sizes": [64, 64], "lr": 0.000123456}, ["hidden_sizes", "lr"]) == \
        "hidden_sizes=[64,64] lr=0.0001235"
    assert describe_dimension(GridDimension(type="grid", values=[1, 5])) == "grid [1, 5]"
    assert describe_dimension(LogUniformDimension(type="loguniform", low=1e-4, high=0.1)) == \
        "loguniform [0.0001, 0.1]"
    assert metric_key("mean_accuracy_mean", "model_mlp.hidden_sizes_[64,64]") == \
        "mean_accuracy_mean.model_mlp.hidden_sizes__64_64_"
    assert _step_scale([1, 5, 10]) == 1 and _step_scale([0.05, 0.2]) == 100
    assert mlflow_ui_url("http://m:5000/", "3") == "http://m:5000/#/experiments/3/runs?workflowType=machine_learning"
    assert mlflow_ui_url("http://m:5000", "3", "abc") == \
        "http://m:5000/#/experiments/3/runs/abc?workflowType=machine_learning"


@pytest.mark.parametrize("published", [{2: 93.6, 10: 94.5, 30: 95.0},  # narrower than ours
                                       {2: 60.0, 10: 94.5, 30: 70.0}])  # wider: ours widened
def test_the_papers_curve_is_drawn_at_our_scale_over_our_range(published: dict) -> None:
    figure, ax = plt.subplots()
    ax.plot([2, 10, 30], [0.78, 0.82, 0.81])
    draw_paper_curves(ax, [PaperCurve("num_segments", "paper, MNIST", {**published, 100: 95.1}, runs=3)])
    twin = figure.axes[1]
    ours, theirs = ax.get_ylim(), twin.get_ylim()
    assert (theirs[1] - theirs[0]) == pytest.approx(100 * (ours[1] - ours[0]))  # a point is a point
    assert ours[0] <= 0.78 and ours[1] >= 0.82  # our data still in view
    assert theirs[0] <= min(published.values()) and theirs[1] >= max(published.values())
    assert [list(line.get_xdata()) for line in twin.get_lines()] == [[2, 10, 30]]  # not 100: past our range
    assert "n = 3" in twin.get_lines()[0].get_label()
    assert not twin.collections  # no spread published: no band
    plt.close(figure)


@pytest.mark.parametrize("ours", [[0.82, 0.63], [0.80, 0.801]])  # the second: a flat sweep, a narrow axis
def test_the_papers_curve_has_a_band_of_its_runs_spread_in_view(ours: list[float]) -> None:
    figure, ax = plt.subplots()
    ax.plot([0.05, 0.4], ours)
    draw_paper_curves(ax, [PaperCurve("kw_percent_on", "paper", {0.05: 94.9, 0.4: 94.0}, runs=10,
                                      spread={0.05: 0.2, 0.4: 1.0})])
    twin = figure.axes[1]
    (band,) = twin.collections
    vertices = band.get_paths()[0].vertices
    assert vertices[:, 1].min() == pytest.approx(93.0) and vertices[:, 1].max() == pytest.approx(95.1)
    bottom, top = twin.get_ylim()
    assert bottom <= 93.0 and top >= 95.1  # the whole band in view
    assert "n = 10" in twin.get_lines()[0].get_label()
    plt.close(figure)


def test_the_legend_sits_clear_of_both_axes_lines_and_above_them() -> None:
    figure, ax = plt.subplots()
    x = [0.01, 0.05, 0.1, 0.2, 0.4, 0.99]
    # ours rises through the upper right, where the paper's flat curve alone would leave room
    ax.plot(x, [0.60, 0.65, 0.70, 0.75, 0.80, 0.85], label="ours")
    ax.set_xscale("log")
    ax.legend()
    draw_paper_curves(ax, [PaperCurve("kw_percent_on", "paper", dict.fromkeys(x, 75.0))])
    twin = figure.axes[1]
    assert ax.get_legend() is None and twin.get_legend() is not None  # drawn last: no line over it
    figure.canvas.draw()
    box = twin.get_legend().get_window_extent()
    for line in (*ax.get_lines(), *twin.get_lines()):
        xy = line.get_transform().transform(line.get_xydata())
        assert not any(box.contains(px, py) for px, py in xy), line.get_label()
    assert [t.get_text() for t in twin.get_legend().get_texts()] == ["ours", "paper (%, n = 8, right axis)"]
    plt.close(figure)


def test_a_legend_with_no_clear_place_inside_goes_below_the_axes(tmp_path) -> None:
    figure, ax = plt.subplots(figsize=(4, 3))
    figure.suptitle("a title, kept in the file")
    x = [2, 5, 10, 25, 50]
    # ours falls from corner to corner, the paper's curves cross it: every corner holds a point
    ax.plot(x, [0.84, 0.83, 0.81, 0.76, 0.72], label="ours, a long label as reports write them")
    ax.plot(x, [0.72, 0.74, 0.78, 0.82, 0.84], label="the other model, as long")
    paper = {2: 97.5, 5: 96.5, 10: 94.6, 25: 91.3, 50: 86.3}
    draw_paper_curves(ax, [PaperCurve("num_tasks", "paper", paper)])
    twin = figure.axes[1]
    figure.canvas.draw()
    legend = twin.get_legend().get_window_extent()
    assert legend.y1 < ax.xaxis.get_tightbbox().y0  # under the axis and its label: hides nothing
    assert not twin.get_legend().get_in_layout()  # the panel keeps its size
    # the saved file holds the title, the axes and the legend below them, with savefig's padding
    inches = Bbox.union([figure.get_tightbbox(),  # the title and axes, in inches
                         legend.transformed(figure.dpi_scale_trans.inverted())])
    (png, _) = save(figure, tmp_path / "saved")
    assert plt.imread(png).shape[0] == pytest.approx((inches.height + 0.2) * figure.dpi, abs=2)


def test_one_papers_point_in_view_gets_its_spread_as_a_bar() -> None:
    figure, ax = plt.subplots()
    ax.plot([8, 12], [0.81, 0.82])
    draw_paper_curves(ax, [PaperCurve("num_segments", "paper", {2: 93.6, 10: 94.5, 30: 95.0}, runs=10,
                                      spread={2: 0.4, 10: 0.4, 30: 0.3})])
    (bar,) = figure.axes[1].collections
    assert bar.get_segments()[0][:, 1].tolist() == pytest.approx([94.1, 94.9])
    plt.close(figure)


def test_a_published_spread_covers_every_point() -> None:
    with pytest.raises(ValueError, match="a value per point"):
        PaperCurve("kw_percent_on", "paper", {0.05: 94.9, 0.1: 94.3}, runs=10, spread={0.05: 0.2, 0.15: 0.3})


def test_a_heat_map_of_many_tasks_labels_every_nth_task() -> None:
    tasks = [f"task {t}" for t in range(50)]
    figure = subnetwork_figure({"tasks": tasks, "layers": [
        {"overlap": np.eye(50).tolist(), "units": 8, "winners_per_input": 2, "mean_overlap": 0.0}]}, "t")
    ax = figure.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [f"task {t}" for t in range(0, 50, 5)]  # readable, and still the right tasks
    assert [t.get_text() for t in ax.get_yticklabels()] == labels
    plt.close(figure)
