"""The picture of a search, without Ray: trials as MLflow holds them (rows in any order, one
stopped early, one failed) rebuilt into a study; each trial's values on its own parameter axis of
the parallel coordinates, the running best in trial order, importances, the Pareto front."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection

from sweeps.cost import estimate
from sweeps.plan import SweepPlan
from sweeps.report import best_trial, summarise
from sweeps.search_report import draw_search, study_of, summarise_search
from sweeps.spec import SweepSpec

SPACE = {"kw_percent_on": {"type": "loguniform", "low": 0.01, "high": 0.5},
         "num_segments": {"type": "randint", "low": 1, "high": 11},
         "weight_sparsity": {"type": "uniform", "low": 0.0, "high": 0.9}}


def _plan(**changes) -> SweepPlan:
    return SweepPlan.resolve(SweepSpec.model_validate({
        "name": "tpe", "benchmark": "permuted_digits", "params": {"num_tasks": 5},
        "search_space": SPACE, "search_alg": "optuna", "search_seed": 1, "num_samples": 6,
        **changes}), "tpe-test")


# trial index -> (kw_percent_on, num_segments, weight_sparsity, mean_accuracy, status, stopped_at)
TRIALS = {
    0: (0.02, 3, 0.10, 0.50, "FINISHED", None),
    1: (0.40, 9, 0.80, 0.97, "FINISHED", 1),  # its one-task accuracy: no full result
    2: (0.05, 1, 0.30, 0.60, "FINISHED", None),
    3: (0.20, 7, 0.60, 0.90, "FINISHED", None),
    4: (0.10, 5, 0.45, None, "FAILED", None),
    5: (0.30, 10, 0.20, 0.80, "FINISHED", None),
    6: (0.03, 2, 0.70, 0.85, "FINISHED", 3),
}


def _table(trials: dict = TRIALS, order=(5, 3, 0, 6, 1, 4, 2)) -> pd.DataFrame:
    rows = []
    for index in order:  # MLflow answers runs in its own order
        kw, segments, sparsity, accuracy, status, stopped = trials[index]
        rows.append({"kw_percent_on": kw, "num_segments": segments, "weight_sparsity": sparsity,
                     "run_id": f"r{index}", "run_name": f"trial {index}", "status": status,
                     "mean_accuracy": accuracy, "forgetting": None if accuracy is None else 1 - accuracy,
                     "trial_index": index, "stopped_at": stopped})
    return pd.DataFrame(rows).astype({"trial_index": "Int64", "stopped_at": "Int64"})


def test_summary_counts_stopped_trials_and_keeps_the_running_best_in_trial_order() -> None:
    plan = _plan()
    summary = summarise_search(study_of(_table(), plan), plan)
    assert (summary.trials_complete, summary.trials_stopped) == (4, 2)
    assert summary.stopped_at == {"1": 1, "3": 1}
    # full-budget trials in trial order: 0: 0.5, 2: 0.6, 3: 0.9, 5: 0.8
    assert [(p.index, p.value, p.best) for p in summary.history] == [
        (0, 0.5, 0.5), (2, 0.6, 0.6), (3, 0.9, 0.9), (5, 0.8, 0.9)]
    assert [t.index for t in summary.best] == [3, 5, 2, 0]  # the stopped 0.97 is no result
    assert summary.best[0].params == {"kw_percent_on": 0.2, "num_segments": 7, "weight_sparsity": 0.6}
    minimised = _plan(mode="min")
    summary = summarise_search(study_of(_table(), minimised), minimised)
    assert [p.best for p in summary.history] == [0.5, 0.5, 0.5, 0.5]


def test_a_trial_stopped_early_is_neither_a_result_nor_the_best() -> None:
    table = _table()
    assert best_trial(table, "mean_accuracy", "max").run_id == "r3"  # not r1's one-task 0.97
    summary = summarise(table, [], "mean_accuracy")
    assert summary["count"].tolist() == [4] and summary["mean_accuracy_mean"].tolist() == [
        pytest.approx((0.5 + 0.6 + 0.9 + 0.8) / 4)]


def _parallel_values(figure) -> tuple[list[str], list[dict[str, float]]]:
    """Each drawn trial's value on each axis, read back from the figure: the objective on the
    first axis, each parameter scaled into the objective's range on its own axis."""
    ax = figure.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    twins = [a for a in figure.axes[1:] if a.get_xaxis().get_visible() is False]
    obj_low, obj_high = ax.get_ylim()
    drawn = []
    for segment in lines.get_segments():
        values = {labels[0]: segment[0][1]}
        for axis, (twin, label) in enumerate(zip(twins, labels[1:], strict=True), start=1):
            low, high = twin.get_ylim()
            log = twin.get_yscale() == "log"
            low, high = (math.log10(low), math.log10(high)) if log else (low, high)
            value = low + (segment[axis][1] - obj_low) / (obj_high - obj_low) * (high - low)
            values[label] = 10 ** value if log else value
        drawn.append(values)
    return labels, drawn


def test_each_trial_lands_on_its_own_parameter_axes_with_log_axes_where_the_space_is_log() -> None:
    plan = _plan()
    study = study_of(_table(), plan)
    figures = draw_search(study, summarise_search(study, plan), plan, {"mean_accuracy": "accuracy"})
    assert set(figures) == {"search_parallel_coordinates", "search_history", "search_importances",
                            "search_slices"}
    parallel = figures["search_parallel_coordinates"]
    labels, drawn = _parallel_values(parallel)
    assert labels == ["accuracy", "kw_percent_on", "num_segments", "weight_sparsity"]
    twins = [a for a in parallel.axes[1:] if a.get_xaxis().get_visible() is False]
    assert [a.get_yscale() for a in twins] == ["log", "linear", "linear"]
    expected = {accuracy: (kw, segments, sparsity) for kw, segments, sparsity, accuracy, status, stopped
                in TRIALS.values() if status == "FINISHED" and stopped is None}
    assert sorted(round(d["accuracy"], 6) for d in drawn) == sorted(expected)
    for values in drawn:
        kw, segments, sparsity = expected[round(values["accuracy"], 6)]
        assert values["kw_percent_on"] == pytest.approx(kw, rel=1e-6)
        assert values["num_segments"] == pytest.approx(segments, abs=1e-6)
        assert values["weight_sparsity"] == pytest.approx(sparsity, abs=1e-6)
    slices = [a for a in figures["search_slices"].axes if a.get_xlabel()]  # (the colour bar has none)
    assert [a.get_xlabel() for a in slices] == ["kw_percent_on", "num_segments", "weight_sparsity"]
    assert [a.get_xscale() for a in slices] == ["log", "linear", "linear"]
    for column, panel in enumerate(slices):  # each full-budget trial at (its value, its accuracy)
        points = sorted((round(float(x), 6), round(float(y), 6))
                        for c in panel.collections for x, y in c.get_offsets())
        assert points == sorted((round(v[column], 6), round(a, 6)) for a, v in expected.items())
    history = figures["search_history"].axes[0]
    (best,) = [line for line in history.get_lines() if line.get_label() == "Best Value"]
    # by trial index: the stopped (1, 6) and the failed (4) trials carry the best on
    assert list(best.get_xdata()) == list(range(7))
    assert list(best.get_ydata()) == pytest.approx([0.5, 0.5, 0.6, 0.9, 0.9, 0.9, 0.9])
    for figure in figures.values():
        plt.close(figure)


def test_importances_single_out_the_parameter_the_metric_follows() -> None:
    rng = np.random.default_rng(0)
    trials = {i: (float(rng.uniform(0.01, 0.5)), int(segments), float(rng.uniform(0, 0.9)),
                  0.5 + 0.04 * int(segments), "FINISHED", None)
              for i, segments in enumerate(rng.integers(1, 11, size=16))}
    plan = _plan(num_samples=16)
    summary = summarise_search(study_of(_table(trials, order=sorted(trials)), plan), plan)
    found = summary.importances["mean_accuracy"]
    assert set(found) == {"kw_percent_on", "num_segments", "weight_sparsity"}
    assert sum(found.values()) == pytest.approx(1.0)
    assert max(found, key=found.get) == "num_segments" and found["num_segments"] > 0.8


def test_a_multi_objective_search_reports_its_pareto_front() -> None:
    plan = _plan(objectives=[{"metric": "forgetting", "mode": "min"}])
    table = _table()
    table["forgetting"] = table["trial_index"].map({0: 0.05, 2: 0.30, 3: 0.20, 5: 0.10, 1: 0.0, 4: None,
                                                    6: 0.0})
    study = study_of(table, plan)
    summary = summarise_search(study, plan)
    # full-budget (accuracy max, forgetting min): 0 (0.5, 0.05), 2 (0.6, 0.3), 3 (0.9, 0.2),
    # 5 (0.8, 0.1): 2 is dominated by 3; the stopped trials take no part
    assert [t.index for t in summary.pareto_front] == [0, 3, 5]
    assert summary.pareto_front[1].values == {"mean_accuracy": 0.9, "forgetting": 0.2}
    figures = draw_search(study, summary, plan, {})
    assert "search_pareto" in figures
    for figure in figures.values():
        plt.close(figure)


def test_a_search_is_priced_at_num_samples_times_its_costliest_trial_and_asha_saving_apart() -> None:
    plan = _plan(num_samples=9, scheduler="asha", params={"num_tasks": 4})
    cost = estimate(plan.spec)
    assert cost.expected_trials == 9 and len(cost.trials) == 1
    assert cost.total_cost == pytest.approx(9 * cost.max_trial_cost)
    # the costliest draw: most segments (randint's high is exclusive: 10)
    biggest = estimate(SweepSpec.model_validate({
        "name": "one", "benchmark": "permuted_digits", "params": {"num_tasks": 4, "num_segments": 10,
                                                                   "kw_percent_on": 0.5,
                                                                   "weight_sparsity": 0.9}}))
    assert cost.max_trial_cost == pytest.approx(biggest.max_trial_cost)
    saving = cost.early_stopping
    assert saving.step_metric == "tasks_seen" and saving.rungs == [1, 3] and saving.full_budget == 4
    # all 9 trials reach task 1, 3 go on to task 3, 1 to task 4: (9 + 3 x 2 + 1 x 1) / (9 x 4)
    assert saving.expected_cost == pytest.approx(cost.total_cost * 16 / 36)
    assert estimate(_plan().spec).early_stopping is None


def test_a_wide_search_is_priced_at_its_costliest_draw_however_many_dimensions_it_has() -> None:
    # 8 sampled dimensions (256 combinations of their ends): the costliest draw (most epochs,
    # most segments, the widest context) is not among the first combinations in product order
    space = {"epochs": {"type": "randint", "low": 1, "high": 6},
             "lr": {"type": "loguniform", "low": 1e-4, "high": 3e-3},
             "kw_percent_on": {"type": "loguniform", "low": 0.01, "high": 0.5},
             "weight_sparsity": {"type": "uniform", "low": 0.0, "high": 0.95},
             "init": {"type": "choice", "values": ["modified", "project"]},
             "reset_optimizer": {"type": "choice", "values": [True, False]},
             "context_percent_on": {"type": "uniform", "low": 0.05, "high": 1.0},
             "num_segments": {"type": "randint", "low": 1, "high": 21}}
    cost = estimate(_plan(search_space=space, num_samples=30).spec)
    biggest = estimate(SweepSpec.model_validate({
        "name": "one", "benchmark": "permuted_digits",
        "params": {"num_tasks": 5, "epochs": 5, "num_segments": 20}}))
    assert cost.max_trial_cost == pytest.approx(biggest.max_trial_cost)
    assert cost.max_trial_memory_mb == pytest.approx(biggest.max_trial_memory_mb)
    assert cost.total_cost == pytest.approx(30 * biggest.max_trial_cost)
