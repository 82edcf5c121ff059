"""How long an active sweep has left, estimated from its own trials' pace.

Each trial reports the fraction of its run it has done (``progress``) and its training time so
far (the workload's ``time_metric``). A running trial's remaining time is its own rate applied to
what it has left; a trial not started yet is taken to last as long as the sweep's trials so far
on average (ended ones as they took, running ones as projected). Queued trials start as the
running ones end, as many at once as run now. A rough estimate, and said to be one: queued
trials that differ in size from those measured (more tasks, more epochs) move it.
"""

from __future__ import annotations

import heapq
from statistics import fmean

from service.schemas import TrialInfo
from sweeps.trainable import PROGRESS


def _projected_total_s(trial: TrialInfo, time_metric: str) -> float | None:
    """The trial's whole training time: as it took, if it ended; from its pace, if running."""
    seconds, progress = trial.metrics.get(time_metric), trial.metrics.get(PROGRESS)
    if seconds is None:
        return None
    if trial.status == "done":
        return seconds
    if trial.status == "running" and progress:
        return seconds / progress
    return None


def estimated_time_left_s(trials: list[TrialInfo], pending: int, time_metric: str | None) -> float | None:
    """Seconds until the sweep's last trial ends, or None while nothing has measured a pace
    (no trial running with a report, or a workload that reports no training time)."""
    running = [trial for trial in trials if trial.status == "running"]
    if time_metric is None or not running:
        return None
    totals = {trial.trial_id: total for trial in trials
              if (total := _projected_total_s(trial, time_metric)) is not None}
    if not totals:
        return None
    typical = fmean(totals.values())
    slots = [max(totals.get(trial.trial_id, typical) - trial.metrics.get(time_metric, 0.0), 0.0)
             for trial in running]
    heapq.heapify(slots)
    for _ in range(pending):
        heapq.heappush(slots, heapq.heappop(slots) + typical)
    return max(slots)
