"""The worker protocol: what every workload (continual learning, Meta-World RL) offers to the
layers above, so a sweep trainable, the CLI and the tests drive any workload the same way.

A workload is a config model plus ``train(config, report, resume_state, progress)``. Training
calls ``report(metrics, checkpoint)`` after each unit of work (a task, an evaluation): ``metrics``
is a flat dict of numbers (plus JSON-able artifacts named in :attr:`Workload.artifacts`), and
``checkpoint()`` returns the state that ``train(..., resume_state=state)`` continues from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

Metrics = dict[str, Any]
Checkpoint = Callable[[], dict[str, Any]]
ReportFn = Callable[[Metrics, Checkpoint], None]
ProgressFn = Callable[[int, int], None]
"""``progress(steps_done, total_steps)``: training steps just done, out of the run's total (for a
progress bar above)."""


class TrainFn(Protocol):
    def __call__(self, config: Any, report: ReportFn | None = None, resume_state: dict | None = None,
                 progress: ProgressFn | None = None) -> Any: ...


@dataclass(frozen=True)
class Workload:
    """A trainable workload and what the layers above need to know about it."""

    name: str
    config_model: type[BaseModel]
    train: TrainFn
    default_metric: str
    """The headline metric a sweep optimises unless its spec names another."""
    metric_names: frozenset[str]
    """Numeric metrics a report may carry (a sweep's metric must be one of them)."""
    step_metric: str
    """The reported counter that orders reports (MLflow's step)."""
    reports_per_run: Callable[[Any], int]
    """How many reports a run of ``config`` makes (a scheduler's iteration budget)."""
    step_range: Callable[[Any], tuple[int, int]]
    """``step_metric`` at the first and at the last report of a run of ``config``: an early-stopping
    scheduler's grace period and full budget, in the workload's own unit of progress."""
    artifacts: tuple[str, ...] = ()
    """Report entries that are JSON artifacts (saved as files), not metrics."""
    figure_axes: Mapping[str, str] = field(default_factory=dict)
    """Parameters a paper figure puts on its x axis, with the axis label."""
    metric_labels: Mapping[str, str] = field(default_factory=dict)
    """Human labels of the headline metrics (figure axes, tables)."""
    time_metric: str | None = None
    """The reported training time of a run so far, in seconds, kept across a resume (a sweep's
    efficiency sums it over trials)."""
    counters: frozenset[str] = frozenset()
    """Reported bookkeeping counters (e.g. the task index): not results, so tracking logs them
    neither as metrics nor as charts (``step_metric`` becomes MLflow's step)."""
