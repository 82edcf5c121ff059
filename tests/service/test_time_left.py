"""The time an active sweep has left, from its trials' pace (trials as the service reads them
from MLflow: status, training time so far, fraction done)."""

from __future__ import annotations

import pytest

from service.schemas import TrialInfo
from service.time_left import SweepWork, estimated_time_left_s
from sweeps.spec import SweepSpec
from workers.continual.datasets import DATASET_SHAPES


def _trial(trial_id: str, status: str, seconds: float | None = None,
           progress: float | None = None) -> TrialInfo:
    metrics = {name: value for name, value in (("wall_time_s", seconds), ("progress", progress))
               if value is not None}
    return TrialInfo(trial_id=trial_id, run_id=trial_id, status=status, config={}, metrics=metrics)


def test_running_trials_finish_at_their_own_pace_and_queued_ones_start_as_slots_free():
    trials = [_trial("a", "running", 100, 0.5),   # 200 s in all: 100 left
              _trial("b", "running", 300, 0.75)]  # 400 s in all: 100 left
    # nothing queued: the later of the two
    assert estimated_time_left_s(trials, 0, "wall_time_s") == pytest.approx(100)
    # two queued, each as long as the mean trial (300 s), one after each running one
    assert estimated_time_left_s(trials, 2, "wall_time_s") == pytest.approx(400)
    # three queued on two slots: the third after one of the first two
    assert estimated_time_left_s(trials, 3, "wall_time_s") == pytest.approx(700)


def test_ended_trials_count_as_they_took_and_a_trial_without_a_report_as_the_mean():
    trials = [_trial("done", "done", 400, 1.0), _trial("failed", "failed", 50, 0.1),
              _trial("slow", "running", 50, 0.25),  # 200 s in all: 150 left
              _trial("new", "running")]             # no report yet: the mean, 300 s
    assert estimated_time_left_s(trials, 0, "wall_time_s") == pytest.approx(300)
    assert estimated_time_left_s(trials, 1, "wall_time_s") == pytest.approx(450)


def test_no_estimate_without_a_running_trial_a_pace_or_a_time_metric():
    assert estimated_time_left_s([_trial("done", "done", 400, 1.0)], 3, "wall_time_s") is None
    assert estimated_time_left_s([_trial("new", "running")], 3, "wall_time_s") is None
    assert estimated_time_left_s([_trial("a", "running", 100, 0.5)], 3, None) is None


def test_a_grid_sweeps_queued_trials_are_priced_by_their_work_at_the_sweeps_pace():
    trials = [_trial("a", "running", 100, 0.5),   # 200 s in all for 10 units of work
              _trial("b", "running", 300, 0.75)]  # 400 s in all for 20: 20 s a unit, both
    work = {"a": 10.0, "b": 20.0}
    # a 5-unit and a 1-unit trial queued: 100 s and 20 s after the running ones' 100 s left,
    # where the mean trial (300 s) would have said 400 s
    assert estimated_time_left_s(trials, 2, "wall_time_s", work, [5.0, 1.0]) == pytest.approx(200)
    assert estimated_time_left_s(trials, 2, "wall_time_s") == pytest.approx(400)
    # queued trials start in the plan's order: a long one listed last ends last, listed first sooner
    assert estimated_time_left_s(trials, 3, "wall_time_s", work, [1.0, 1.0, 50.0]) == pytest.approx(1120)
    assert estimated_time_left_s(trials, 3, "wall_time_s", work, [50.0, 1.0, 1.0]) == pytest.approx(1100)
    # more queued than the plan lists (a trial retried): the rest count as the mean trial
    assert estimated_time_left_s(trials, 2, "wall_time_s", work, [5.0]) == pytest.approx(400)
    # a running trial that has not reported (its config and work unknown) counts as the mean
    fresh = [*trials, _trial("c", "running")]
    assert estimated_time_left_s(fresh, 0, "wall_time_s", work) == pytest.approx(300)


def _task_count_spec(**extra) -> dict:
    return {"name": "tasks", "benchmark": "permuted_digits", "params": {"lr": 1e-3},
            "search_space": {"setting": {"type": "cases", "values": {
                "long": {"num_tasks": 6, "epochs": 3}, "short": {"num_tasks": 2, "epochs": 2}}},
                "seed": {"type": "grid", "values": [0, 1]}}, **extra}


DIGITS = DATASET_SHAPES["digits"][1]


def test_a_sweeps_work_comes_from_its_spec_and_its_trials_configs():
    work = SweepWork(_task_count_spec(), "permuted_digits")
    assert work.planned == [18 * DIGITS] * 2 + [4 * DIGITS] * 2  # tasks x epochs x samples
    # trials report their resolved config, case label beside the fields, with their first report
    started = [TrialInfo(trial_id="t0", run_id="r0", status="done", config={
                   "setting": "long", "num_tasks": 6, "epochs": 3, "seed": 0, "dataset": "digits"}),
               TrialInfo(trial_id="t1", run_id="r1", status="running", config={})]  # none yet
    assert work.started(started) == {"t0": 18 * DIGITS}
    # the queued trials are the plan's last ones (Tune starts a grid's trials in order)
    assert work.queued(2) == [4 * DIGITS] * 2 and work.queued(0) == []


def test_the_plan_is_in_the_order_tune_starts_the_trials():
    """Tune's variant generator varies the alphabetically first dimension fastest and runs the
    whole grid once per sample (as the density sweep ran: kw_percent_on before seed)."""
    spec = {"name": "order", "benchmark": "permuted_digits", "num_samples": 2,
            "search_space": {"epochs": {"type": "grid", "values": [1, 3]},  # listed first,
                             "num_tasks": {"type": "grid", "values": [4, 2]}}}  # varies slowest
    tasks_x_epochs = [4 * 1, 4 * 3, 2 * 1, 2 * 3]
    assert SweepWork(spec, "permuted_digits").planned == [DIGITS * w for w in tasks_x_epochs * 2]


def test_work_is_unknown_for_a_search_or_a_spec_or_config_that_no_longer_resolves():
    # a search's trials are drawn, and ASHA may stop them: their sizes are not known
    search = _task_count_spec(params={}, num_samples=4, search_space={
        "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}})
    asha = _task_count_spec(scheduler="asha")
    for spec in search, asha:
        assert SweepSpec.model_validate(spec)  # valid: its plan is unknown, not refused
        assert SweepWork(spec, "permuted_digits").planned is None
    # records outlive code: a stored spec or trial config that fails gives no work, not an error
    assert SweepWork({"name": "gone", "benchmark": "no_such"}, "permuted_digits").planned is None
    odd = TrialInfo(trial_id="t", run_id="r", status="running", config={"variant": ["x"], "num_tasks": 2})
    assert SweepWork(_task_count_spec(), "permuted_digits").started([odd]) == {}
