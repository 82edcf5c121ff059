"""The sweep lifecycle behind the API: submit (limits, idempotency), follow the driver on Ray and
the trials in MLflow, cancel, report. Every method is synchronous and opens its own DB session."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.cluster import ClusterUnavailable, SweepDrivers
from service.db import ACTIVE_STATUSES, Heartbeat, SweepRow, utcnow
from service.mlflow_view import best_trial, count_trials, find_parent_run, mark_cancelled, trial_infos
from service.schemas import Links, Readiness, ReadyCheck, SweepDetail, TrialInfo
from service.settings import ServiceSettings
from sweeps.report import SweepReport, build_report
from sweeps.spec import SweepSpec

log = logging.getLogger("dlab.service")
API_PREFIX = "/api/v1"
ERROR_TAIL_CHARS = 4000
SUBMIT_GRACE_S = 120.0


class SweepNotFound(LookupError):
    pass


class SweepConflict(RuntimeError):
    """The request clashes with the sweep's state or an earlier request (HTTP 409)."""


class LimitExceeded(RuntimeError):
    """A configured limit refuses the request (HTTP 429)."""


class SpecRejected(ValueError):
    """The spec is valid but this service will not run it (HTTP 422, FastAPI's error shape)."""

    def __init__(self, errors: list[dict]) -> None:
        super().__init__("; ".join(e["msg"] for e in errors))
        self.errors = errors


def links(sweep_id: str, settings: ServiceSettings, experiment_id: str | None = None,
          run_id: str | None = None) -> Links:
    """The sweep's API routes, and its MLflow UI pages when MLflow is a tracking server."""
    base = f"{API_PREFIX}/sweeps/{sweep_id}"
    ui = settings.tracking_uri.rstrip("/") if settings.tracking_server else None
    return Links(self=base, trials=f"{base}/trials", events=f"{base}/events", report=f"{base}/report",
                 cancel=f"{base}/cancel",
                 mlflow_experiment=f"{ui}/#/experiments/{experiment_id}" if ui and experiment_id else None,
                 mlflow_run=f"{ui}/#/experiments/{experiment_id}/runs/{run_id}" if ui and run_id else None)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone


def _from_epoch(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


class SweepManager:
    """Sweeps as records in the database, drivers on Ray and runs in MLflow."""

    def __init__(self, settings: ServiceSettings, sessions: sessionmaker, drivers: SweepDrivers) -> None:
        self.settings = settings
        self.sessions = sessions
        self.drivers = drivers
        self.mlflow = MlflowClient(settings.tracking_uri)
        self._report_lock = threading.Lock()  # matplotlib's pyplot is not thread-safe
        self._submit_lock = threading.Lock()  # the active-sweep count and the insert, atomically
        self._refreshed: dict[str, float] = {}  # sweep id -> monotonic time of the last refresh
        # short-lived MLflow reads: sweep id -> (read at, sweep status then, trials)
        self._trials: dict[str, tuple[float, str, list[TrialInfo]]] = {}

    # -- submission ------------------------------------------------------------------------
    def submit(self, spec: SweepSpec, idempotency_key: str | None = None) -> tuple[SweepRow, bool]:
        """Record and start a sweep; a repeated ``idempotency_key`` returns the first sweep."""
        if spec.expected_trials > self.settings.max_trials_per_sweep:
            raise SpecRejected([{
                "type": "value_error", "loc": ["body", "num_samples"],
                "msg": f"num_samples: with the grid, the sweep would run {spec.expected_trials} trials; this "
                       f"service allows at most "
                       f"{self.settings.max_trials_per_sweep} per sweep (DLAB_MAX_TRIALS_PER_SWEEP)",
            }])
        with self._submit_lock, self.sessions() as session:
            if idempotency_key:
                existing = self._by_key(session, idempotency_key, spec)
                if existing is not None:
                    return existing, False
            active = session.scalar(select(func.count()).select_from(SweepRow)
                                    .where(SweepRow.status.in_(ACTIVE_STATUSES)))
            if active >= self.settings.max_active_sweeps:
                raise LimitExceeded(f"{active} sweeps are queued or running; this service runs at most "
                                    f"{self.settings.max_active_sweeps} at once (DLAB_MAX_ACTIVE_SWEEPS)")
            row = SweepRow(id=self._new_id(session, spec.name), name=spec.name, benchmark=spec.benchmark,
                           status="queued", spec=spec.model_dump(mode="json"), spec_hash=spec.spec_hash(),
                           idempotency_key=idempotency_key, expected_trials=spec.expected_trials,
                           metric=spec.resolved_metric, mode=spec.mode)
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # a concurrent request with the same key won the race
                session.rollback()
                existing = self._by_key(session, idempotency_key or "", spec)
                if existing is None:
                    raise
                return existing, False
            try:
                self.drivers.submit(row.id, row.spec)
            except ClusterUnavailable as err:
                row.status, row.finished_at = "failed", utcnow()
                row.error = f"could not start the driver: {err}"
                session.commit()
                raise
            row.driver_submitted = True
            session.commit()
            return row, True

    @staticmethod
    def _by_key(session: Session, key: str, spec: SweepSpec) -> SweepRow | None:
        existing = session.scalar(select(SweepRow).where(SweepRow.idempotency_key == key))
        if existing is not None and existing.spec_hash != spec.spec_hash():
            raise SweepConflict(f"Idempotency-Key {key!r} was already used for a different spec "
                                f"(sweep {existing.id})")
        return existing

    @staticmethod
    def _new_id(session: Session, name: str) -> str:
        while True:
            candidate = f"{name[:60]}-{uuid.uuid4().hex[:8]}"
            if session.get(SweepRow, candidate) is None:
                return candidate

    # -- reading ---------------------------------------------------------------------------
    def list(self, status: str | None, offset: int, limit: int) -> tuple[list[SweepRow], int]:
        with self.sessions() as session:
            query = select(SweepRow)
            if status:
                query = query.where(SweepRow.status == status)
            total = session.scalar(select(func.count()).select_from(query.subquery()))
            rows = session.scalars(query.order_by(SweepRow.created_at.desc()).offset(offset).limit(limit))
            return list(rows), total

    @staticmethod
    def _row(session: Session, sweep_id: str) -> SweepRow:
        row = session.get(SweepRow, sweep_id)
        if row is None:
            raise SweepNotFound(f"no sweep {sweep_id!r}")
        return row

    def get(self, sweep_id: str, refresh: bool = True) -> SweepRow:
        with self.sessions() as session:
            row = self._row(session, sweep_id)
            if refresh and row.active and self._stale(self._refreshed.get(row.id)):
                self._refresh(session, row)
            return row

    def _stale(self, since: float | None) -> bool:
        return since is None or time.monotonic() - since >= self.settings.poll_interval_s

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

    def detail(self, row: SweepRow, trials: list[TrialInfo] | None = None) -> SweepDetail:
        trials = self.trials(row) if trials is None else trials
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

    # -- following the driver ----------------------------------------------------------------
    def reconcile(self) -> int:
        """Bring every queued/running record up to date; returns how many are still active."""
        with self.sessions() as session:
            rows = list(session.scalars(select(SweepRow).where(SweepRow.status.in_(ACTIVE_STATUSES))))
            for row in rows:
                self._refresh(session, row)
            return sum(row.active for row in rows)

    def _refresh(self, session: Session, row: SweepRow) -> None:
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

    def _apply_driver_state(self, row: SweepRow, state) -> None:
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
        return self.mlflow.get_run(row.parent_run_id).data.tags.get("dlab.status", "unknown")

    # -- cancel and report ---------------------------------------------------------------------
    def cancel(self, sweep_id: str) -> SweepRow:
        """Stop a sweep's driver (its running trials with it); finished trials stay in MLflow."""
        with self.sessions() as session:
            row = self._row(session, sweep_id)
            self._refresh(session, row)
            if not row.active:
                raise SweepConflict(f"sweep {sweep_id} already ended ({row.status})")
            self.drivers.stop(sweep_id)
            deadline = time.monotonic() + 30
            while row.active and time.monotonic() < deadline:
                time.sleep(0.5)
                self._refresh(session, row)
            return row

    def report(self, row: SweepRow) -> SweepReport:
        """The results table (mean/std over seeds) and figures, rebuilt from MLflow."""
        if row.parent_run_id is None:
            raise SweepConflict(f"sweep {row.id} has not started yet; there are no results")
        out_dir = self.settings.reports / row.id
        cached = out_dir / "report.json"
        if not row.active and cached.exists():
            return SweepReport.model_validate_json(cached.read_text())
        searched = list(row.spec["search_space"])  # the spec was validated when it was submitted
        with self._report_lock:
            report = build_report(self.mlflow, row.experiment_id, row.parent_run_id, row.id,
                                  searched, row.metric, out_dir, log_to_mlflow=False)
        if not row.active:
            cached.write_text(report.model_dump_json(indent=2))
        return report

    def figure(self, row: SweepRow, name: str) -> Path:
        """A report figure by its file stem, e.g. ``mean_accuracy_vs_num_segments``."""
        figures = {Path(f).stem: Path(f) for f in self.report(row).figures}
        if name not in figures:
            raise SweepNotFound(f"sweep {row.id} has no figure {name!r}; it has {sorted(figures)}")
        return figures[name]

    # -- health ----------------------------------------------------------------------------
    def readiness(self) -> Readiness:
        checks: dict[str, ReadyCheck] = {}
        try:
            self.drivers.ping()
            checks["ray"] = ReadyCheck(ok=True, detail=self.drivers.dashboard_url)
        except ClusterUnavailable as err:
            checks["ray"] = ReadyCheck(ok=False, detail=str(err))
        try:
            self.mlflow.search_experiments(max_results=1)
            checks["mlflow"] = ReadyCheck(ok=True, detail=self.settings.tracking_uri)
        except (MlflowException, OSError) as err:
            checks["mlflow"] = ReadyCheck(ok=False, detail=f"{self.settings.tracking_uri}: {err}")
        try:
            with self.sessions() as session:
                session.merge(Heartbeat(id=1, at=utcnow()))
                session.commit()
            checks["database"] = ReadyCheck(ok=True, detail="writable")
        except SQLAlchemyError as err:
            checks["database"] = ReadyCheck(ok=False, detail=str(err).splitlines()[0])
        return Readiness(ready=all(c.ok for c in checks.values()), checks=checks)
