"""Keeping sweep records true to the cluster: each queued/running sweep's driver state from Ray
Jobs, its parent run and trials from MLflow, and cancellation."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.cluster import ClusterUnavailable
from service.db import SweepRow, utcnow
from service.drivers import DriverState, SweepDrivers
from service.errors import SweepConflict
from service.mlflow_view import find_parent_run, mark_cancelled, trial_infos
from service.records import get_row
from service.schemas import TrialInfo
from service.settings import ServiceSettings
from sweeps import mlflow_tags as tags
from sweeps.status import ACTIVE_SWEEP_STATUSES

log = logging.getLogger("dlab.service")
ERROR_TAIL_CHARS = 4000
SUBMIT_GRACE_S = 120.0
CANCEL_WAIT_S = 30.0


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone


def _from_epoch(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


class Reconciler:
    """Refreshes records from Ray and MLflow (at most once per poll interval per sweep) and
    caches each sweep's trials between refreshes."""

    def __init__(self, settings: ServiceSettings, sessions: sessionmaker, drivers: SweepDrivers,
                 mlflow: MlflowClient) -> None:
        self.settings = settings
        self.sessions = sessions
        self.drivers = drivers
        self.mlflow = mlflow
        self._refreshed: dict[str, float] = {}  # sweep id -> monotonic time of the last refresh
        # short-lived MLflow reads: sweep id -> (read at, sweep status then, trials)
        self._trials: dict[str, tuple[float, str, list[TrialInfo]]] = {}

    def _stale(self, since: float | None) -> bool:
        return since is None or time.monotonic() - since >= self.settings.poll_interval_s

    def current(self, sweep_id: str) -> SweepRow:
        """The sweep's record, refreshed first if it is active and its last refresh is stale."""
        with self.sessions() as session:
            row = get_row(session, sweep_id)
            if row.active and self._stale(self._refreshed.get(row.id)):
                self.refresh(session, row)
            return row

    def trials(self, row: SweepRow) -> list[TrialInfo]:
        """The sweep's trials from MLflow, re-read once per poll interval and whenever the sweep's
        status changed since the last read (a cancel closes runs)."""
        if row.parent_run_id is None:
            return []
        read_at, status, trials = self._trials.get(row.id, (None, row.status, []))
        if self._stale(read_at) or status != row.status:
            trials = trial_infos(self.mlflow, row.experiment_id, row.parent_run_id)
            self._trials[row.id] = (time.monotonic(), row.status, trials)
        return trials

    def reconcile(self) -> int:
        """Bring every queued/running record up to date; returns how many are still active."""
        with self.sessions() as session:
            rows = list(session.scalars(select(SweepRow).where(SweepRow.status.in_(ACTIVE_SWEEP_STATUSES))))
            for row in rows:
                self.refresh(session, row)
            return sum(row.active for row in rows)

    def refresh(self, session: Session, row: SweepRow) -> None:
        """Update one record from its driver's state and its MLflow parent run."""
        self._refreshed[row.id] = time.monotonic()
        if not row.driver_submitted:
            if (utcnow() - _aware(row.created_at)).total_seconds() > SUBMIT_GRACE_S:
                row.status, row.finished_at = "failed", utcnow()
                row.error = "the service stopped before the sweep's driver was submitted"
                session.commit()
            return  # the submission is still in flight in another request
        try:
            state = self.drivers.state(row.id)
        except ClusterUnavailable as err:
            log.warning("cannot refresh sweep %s: %s", row.id, err)
            return
        try:
            if row.parent_run_id is None:
                parent = find_parent_run(self.mlflow, row.benchmark, row.id)
                if parent is not None:
                    row.experiment_id, row.parent_run_id = parent.info.experiment_id, parent.info.run_id
            if state is None:
                row.status, row.finished_at = "failed", utcnow()
                row.error = "the Ray cluster no longer knows this sweep's driver (was the cluster restarted?)"
            else:
                self._apply_driver_state(row, state)
        except MlflowException as err:
            log.warning("cannot read MLflow for sweep %s: %s", row.id, err)
        session.commit()

    def _apply_driver_state(self, row: SweepRow, state: DriverState) -> None:
        row.started_at = row.started_at or _from_epoch(state.start_time)
        if state.status == "PENDING":
            row.status = "queued"
        elif state.status == "RUNNING":
            row.status = "running"
        elif state.status == "STOPPED":
            row.status = "cancelled"
            if row.parent_run_id:  # close the open runs as they are now, not as last cached
                mark_cancelled(self.mlflow, row.parent_run_id,
                               trial_infos(self.mlflow, row.experiment_id, row.parent_run_id))
        elif state.status == "SUCCEEDED":
            outcome = self._parent_status(row)
            row.status = "succeeded" if outcome == "succeeded" else "failed"
            if row.status == "failed":
                row.error = f"the sweep ended {outcome}"
        else:
            row.status = "failed"
            row.error = (state.message or "the driver failed")[-ERROR_TAIL_CHARS:]
        if not row.active:
            row.finished_at = _from_epoch(state.end_time) or utcnow()

    def _parent_status(self, row: SweepRow) -> str:
        if row.parent_run_id is None:
            return "unknown"
        return self.mlflow.get_run(row.parent_run_id).data.tags.get(tags.STATUS, "unknown")

    def cancel(self, sweep_id: str) -> SweepRow:
        """Stop a sweep's driver (its running trials with it); finished trials stay in MLflow."""
        with self.sessions() as session:
            row = get_row(session, sweep_id)
            self.refresh(session, row)
            if not row.active:
                raise SweepConflict(f"sweep {sweep_id} already ended ({row.status})")
            self.drivers.stop(sweep_id)
            deadline = time.monotonic() + CANCEL_WAIT_S
            while row.active and time.monotonic() < deadline:
                time.sleep(0.5)
                self.refresh(session, row)
            return row
