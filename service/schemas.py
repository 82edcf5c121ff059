"""Response bodies of the REST API (the request body is :class:`sweeps.spec.SweepSpec` itself)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from sweeps.status import SweepStatus, TrialStatus


class TrialCounts(BaseModel):
    pending: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0


class BestTrial(BaseModel):
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
    """A sweep in a listing."""

    id: str
    name: str
    benchmark: str
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
    """Everything known about one sweep."""

    metric: str
    mode: str
    trials: TrialCounts
    best: BestTrial | None = None
    error: str | None = None
    mlflow_tracking_uri: str
    mlflow_experiment_id: str | None = None
    mlflow_parent_run_id: str | None = None
    spec: dict[str, Any]
    links: Links


class SweepCreated(BaseModel):
    id: str
    status: SweepStatus
    links: Links


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
