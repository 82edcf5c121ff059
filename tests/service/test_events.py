"""Server-sent events derived from successive snapshots of a sweep's trials."""

from __future__ import annotations

from service.events import trial_events
from service.schemas import TrialInfo


def test_trial_events_from_snapshots():
    def trial(status, metrics):
        return TrialInfo(trial_id="t1", run_id="r1", status=status, config={}, metrics=metrics)

    assert [e for e, _ in trial_events({}, [trial("running", {})])] == ["trial_started"]
    before = {"t1": trial("running", {"mean_accuracy": 0.5})}
    assert trial_events(before, [trial("running", {"mean_accuracy": 0.5})]) == []
    assert [e for e, _ in trial_events(before, [trial("running", {"mean_accuracy": 0.6})])] == \
        ["trial_reported"]
    assert [e for e, _ in trial_events(before, [trial("done", {"mean_accuracy": 0.7})])] == \
        ["trial_reported", "trial_finished"]
