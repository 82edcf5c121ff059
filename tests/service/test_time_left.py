"""The time an active sweep has left, from its trials' pace (trials as the service reads them
from MLflow: status, training time so far, fraction done)."""

from __future__ import annotations

import pytest

from service.schemas import TrialInfo
from service.time_left import estimated_time_left_s


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
