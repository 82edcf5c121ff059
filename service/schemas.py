"""Response bodies of the REST API (the request body is :class:`sweeps.spec.SweepSpec` itself)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from sweeps.benchmarks import benchmark_enum
from sweeps.cost import EarlyStoppingEstimate, TrialEstimate
from sweeps.status import SweepStatus, TrialStatus


class ErrorMessage(BaseModel):
    """The body of every error response but 422: what went wrong, in one line."""

    detail: str


class FieldError(BaseModel):
    """One rejected input: where it is (``loc``, e.g. ``["body", "params", "num_tasks"]``), what is
    wrong with it (``msg``) and the error's type."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrors(BaseModel):
    """The body of a 422: every rejected input."""

    detail: list[FieldError]


SweepEventName = Literal["sweep_status", "driver_restarted", "trial_started", "trial_reported",
                         "trial_finished", "sweep_finished"]


class SweepEvent(BaseModel):
    """One server-sent event of a sweep's stream: ``sweep_status`` ({id, status, trials}),
    ``driver_restarted`` ({id, driver_restarts}), ``trial_started`` / ``trial_reported`` /
    ``trial_finished`` (a TrialInfo), and last ``sweep_finished`` (a SweepDetail)."""

    event: SweepEventName
    data: str = Field(description="the event's payload as one line of JSON",
                      json_schema_extra={"contentMediaType": "application/json"})
    id: str = Field(description="the event's sequence number in this stream")


class TrialCounts(BaseModel):
    pending: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    never_started: int = 0
    """Trials of an ended sweep that never started (0 while the sweep is active: those are pending)."""


class BestTrialSoFar(BaseModel):
    trial_id: str
    metric: str
    value: float
    config: dict[str, Any]


class Links(BaseModel):
    self: str
    trials: str
    events: str
    report: str
    cancel: str
    mlflow_experiment: str | None = None
    mlflow_run: str | None = None


class SweepSummary(BaseModel):
    """A sweep in a listing (its status as of the last reconciliation: at most one poll interval,
    ``DLAB_POLL_INTERVAL_S``, old)."""

    id: str
    name: str
    benchmark: str = Field(json_schema_extra=benchmark_enum)
    status: SweepStatus
    expected_trials: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @field_validator("created_at", "started_at", "finished_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # SQLite hands back naive datetimes; they were written in UTC
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class SweepDetail(SweepSummary):
    """Everything known about one sweep, from the service's records: the background reconciler
    copies the driver's state (Ray Jobs) and the trials (MLflow) into them every
    ``DLAB_POLL_INTERVAL_S`` (1 s by default), so ``status``, ``trials``, ``best``, ``error`` and
    the MLflow ids are at most one poll interval old; a read never waits on Ray or MLflow."""

    metric: str
    mode: Literal["max", "min"]
    trials: TrialCounts = Field(description="trials by status, as of the last reconciliation "
                                            "(at most one poll interval old)")
    estimated_time_left_s: int | None = Field(
        None, description="seconds until the sweep's last trial ends, estimated from its trials' "
                          "pace: each running trial's own rate; a grid sweep's queued trials by "
                          "their work (samples x epochs x tasks, env steps) at the seconds per unit "
                          "its trials took, a search's as long as its trials so far on average; "
                          "started in the plan's order as running ones end, as many at once as run "
                          "now (rough); null until a trial runs and after the sweep has ended")
    best: BestTrialSoFar | None = Field(
        None, description="the trial with the best latest value of `metric` so far, as of the "
                          "last reconciliation (at most one poll interval old); null before any report")
    error: str | None = None
    mlflow_tracking_uri: str | None = Field(
        None, description="the MLflow tracking server (no credentials); null when the service "
                          "keeps a local store, whose runs the report and trials routes serve")
    mlflow_experiment_id: str | None = None
    mlflow_parent_run_id: str | None = None
    spec: dict[str, Any]
    links: Links
    driver_restarts: int = Field(0, description="times the sweep's driver died and was restarted "
                                                "from Tune's saved state")
    cancel_requested: bool = Field(
        False, description="a cancel was accepted: the sweep ends `cancelled` (its driver is stopped, "
                           "or never started if the submission was still in flight)")
    waiting_for_slot: bool = Field(
        False, description="queued behind running sweeps (`DLAB_MAX_RUNNING_SWEEPS`): its driver "
                           "starts, in submission order, when one of them ends")


class SweepCreated(BaseModel):
    id: str
    status: SweepStatus
    links: Links


DEFAULT_PAGE_LIMIT = 50
"""Sweeps on a listing page when the client does not say."""


class SweepPage(BaseModel):
    items: list[SweepSummary]
    total: int
    offset: int
    limit: int


class TrialInfo(BaseModel):
    """One trial: its config, status and latest metrics (from its MLflow run)."""

    trial_id: str
    run_id: str
    status: TrialStatus
    config: dict[str, Any]
    metrics: dict[str, float] = Field(default_factory=dict)
    started_at: datetime | None = None
    ended_at: datetime | None = None


class ReadyCheck(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, ReadyCheck]


class DryRun(BaseModel):
    """What a submission with ``?dry_run=true`` answers: the sweep as it would run (each grid
    point, sampled dimensions as their distributions) and its estimated cost against this
    service's budgets (parameter-sample passes; see ``sweeps.cost``). Nothing is recorded or
    started."""

    dry_run: Literal[True] = True
    name: str
    benchmark: str
    expected_trials: int
    trials: list[TrialEstimate]
    max_trial_cost: float
    total_cost: float
    trial_budget: float
    sweep_budget: float
    early_stopping: EarlyStoppingEstimate | None = Field(
        None, description="scheduler asha: what early stopping would save as intended; total_cost "
                          "(every trial to its full budget) stays the bound the budgets are checked against")
