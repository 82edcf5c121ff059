"""How long an active sweep has left, estimated from its own trials' pace.

Each trial reports the fraction of its run it has done (``progress``) and its training time so
far (the workload's ``time_metric``). A running trial's remaining time is its own rate applied to
what it has left. A trial not started yet is priced by its size where the sweep's plan knows it:
a grid sweep's queued trials each take their work (:func:`sweeps.cost.trial_work`: samples
trained on, every epoch of every task; env steps) at the seconds per unit of work the sweep's
trials have taken so far (ended ones as they took, running ones as projected): at equal epochs,
a 2-task trial queued behind 100-task ones is priced as one fiftieth of them. Where the plan does
not know (a search draws its trials; ASHA may stop them early), a queued trial counts as the
sweep's mean trial so far. Queued trials start as the running ones end, in the order Tune starts
them, as many at once as run now. A rough estimate, and said to be one: it assumes the work's
pace holds across settings (a dense network and a dendritic one, 1% and 99% of the units on).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Mapping, Sequence
from statistics import fmean
from typing import Any, TypeVar

from service.schemas import TrialInfo
from sweeps.cost import config_work, planned_work
from sweeps.spec import SweepSpec
from sweeps.trainable import PROGRESS

logger = logging.getLogger(__name__)
T = TypeVar("T")


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


def estimated_time_left_s(trials: list[TrialInfo], pending: int, time_metric: str | None,
                          work: Mapping[str, float] | None = None,
                          queued: Sequence[float] | None = None) -> float | None:
    """Seconds until the sweep's last trial ends, or None while nothing has measured a pace
    (no trial running with a report, or a workload that reports no training time). ``work``:
    each started trial's work, by trial id; ``queued``: the work of each trial not started, in
    the order they start (both from the plan, where it knows them)."""
    running = [trial for trial in trials if trial.status == "running"]
    if time_metric is None or not running:
        return None
    totals = {trial.trial_id: total for trial in trials
              if (total := _projected_total_s(trial, time_metric)) is not None}
    if not totals:
        return None
    typical = fmean(totals.values())
    work = work or {}
    measured = [(totals[t], work[t]) for t in totals if work.get(t, 0) > 0]
    rate = sum(s for s, _ in measured) / sum(w for _, w in measured) if measured else None

    def length(trial_work: float | None) -> float:
        """A trial's whole training time by its work, or the mean trial's without a rate."""
        return typical if rate is None or trial_work is None else rate * trial_work

    slots = [max(totals.get(trial.trial_id, length(work.get(trial.trial_id)))
                 - trial.metrics.get(time_metric, 0.0), 0.0) for trial in running]
    heapq.heapify(slots)
    queue = list(queued or [])[:pending]
    for trial_work in [*queue, *[None] * (pending - len(queue))]:
        heapq.heappush(slots, heapq.heappop(slots) + length(trial_work))
    return max(slots)


def _unless_failing(work: Callable[[], T], what: str) -> T | None:
    """``work()``, or None (logged) if it raises: a stored spec or a trial's config that no
    longer resolves (a benchmark or field since removed)."""
    try:
        return work()
    except Exception:
        logger.warning("no time-left estimate from %s", what, exc_info=True)
        return None


class SweepWork:
    """One sweep's trials' work, each worked out once: the plan's from its stored spec, and each
    started trial's from the config it reports; unknown (None) where either no longer resolves,
    as the estimate is never a reason for a read to fail. Not thread-safe: its owner serialises
    calls."""

    def __init__(self, spec: dict[str, Any], benchmark: str) -> None:
        self.planned = _unless_failing(lambda: planned_work(SweepSpec.stored(spec)), "its spec")
        self._benchmark = benchmark
        self._started: dict[str, float | None] = {}

    def started(self, trials: list[TrialInfo]) -> dict[str, float]:
        """Each started trial's work by trial id (those that have reported their config):
        :func:`estimated_time_left_s`'s ``work``."""
        for trial in trials:
            if trial.config and trial.trial_id not in self._started:
                self._started[trial.trial_id] = _unless_failing(
                    lambda trial=trial: config_work(self._benchmark, trial.config), f"trial {trial.trial_id}")
        return {trial.trial_id: w for trial in trials if (w := self._started.get(trial.trial_id)) is not None}

    def queued(self, pending: int) -> list[float] | None:
        """The work of the ``pending`` trials not started yet: the plan's last ones, as Tune
        starts a grid's trials in the plan's order (None where the plan does not know them)."""
        if self.planned is None:
            return None
        return self.planned[len(self.planned) - pending:] if 0 < pending <= len(self.planned) else []
