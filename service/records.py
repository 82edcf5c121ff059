"""Reading sweep records: look-ups, listings and the detail view (records are kept current by
:mod:`service.reconciler`; trials come from its cache)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.db import SweepRow
from service.errors import SweepNotFound
from service.links import links
from service.mlflow_view import best_trial, count_trials
from service.schemas import SweepDetail, TrialInfo
from service.settings import ServiceSettings


def get_row(session: Session, sweep_id: str) -> SweepRow:
    """The sweep's record, or :class:`SweepNotFound`."""
    row = session.get(SweepRow, sweep_id)
    if row is None:
        raise SweepNotFound(f"no sweep {sweep_id!r}")
    return row


class SweepRecords:
    """Queries over the sweep table."""

    def __init__(self, settings: ServiceSettings, sessions: sessionmaker) -> None:
        self.settings = settings
        self.sessions = sessions

    def get(self, sweep_id: str) -> SweepRow:
        with self.sessions() as session:
            return get_row(session, sweep_id)

    def list(self, status: str | None, offset: int, limit: int) -> tuple[list[SweepRow], int]:
        """A page of sweeps, newest first, and how many match in all."""
        with self.sessions() as session:
            query = select(SweepRow)
            if status:
                query = query.where(SweepRow.status == status)
            total = session.scalar(select(func.count()).select_from(query.subquery()))
            rows = session.scalars(query.order_by(SweepRow.created_at.desc()).offset(offset).limit(limit))
            return list(rows), total

    def detail(self, row: SweepRow, trials: list[TrialInfo]) -> SweepDetail:
        """Everything known about one sweep, for the API."""
        return SweepDetail(
            id=row.id, name=row.name, benchmark=row.benchmark, status=row.status,
            expected_trials=row.expected_trials, created_at=row.created_at, started_at=row.started_at,
            finished_at=row.finished_at, metric=row.metric, mode=row.mode,
            trials=count_trials(trials, row.expected_trials),
            best=best_trial(trials, row.metric, row.mode), error=row.error,
            mlflow_tracking_uri=self.settings.tracking_uri, mlflow_experiment_id=row.experiment_id,
            mlflow_parent_run_id=row.parent_run_id, spec=row.spec,
            links=links(row.id, self.settings, row.experiment_id, row.parent_run_id),
        )
