"""Keeping sweep records true to the cluster, in the background: each queued/running sweep's
driver state from Ray Jobs and its trials from MLflow are copied into the record (the API serves
records only, never Ray or MLflow on a read); a dead driver is restarted from Tune's saved state
(bounded); an ended sweep is settled (every open MLflow run closed); and cancellation."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.cluster import ClusterUnavailable
from service.db import SweepRow, utcnow
from service.drivers import DriverState, SweepDrivers
from service.errors import SweepConflict
from service.mlflow_view import find_parent_run, settle_runs, trial_infos
from service.records import get_row
from service.schemas import TrialInfo
from service.settings import ServiceSettings
from sweeps import mlflow_tags as tags
from sweeps.status import ACTIVE_SWEEP_STATUSES, DRIVER_EXIT_CODES

log = logging.getLogger("dlab.service")
SUBMIT_GRACE_S = 120.0
CANCEL_WAIT_S = 60.0
MAX_ERROR_CHARS = 300
RUN_END_OF_SWEEP = {"cancelled": "KILLED", "failed": "FAILED", "succeeded": "KILLED"}
"""How a trial run still open when its sweep ended is closed."""
PARENT_END_OF_SWEEP = {"cancelled": "KILLED", "failed": "FAILED", "succeeded": "FINISHED"}

_ADDRESS = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", re.IGNORECASE)
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[\w.@+-]+){2,}/?")
_EXIT_CODE = re.compile(r"exit code (-?\d+)")
_BOILERPLATE = ("Job entrypoint command failed", "last available logs", "---")


def public_error(text: str) -> str:
    """One short line for the API: no paths (file names only), no addresses."""
    line = " ".join(text.split())
    line = _ADDRESS.sub("<address>", line)
    line = _PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], line)
    return line if len(line) <= MAX_ERROR_CHARS else line[:MAX_ERROR_CHARS - 1] + "…"


def driver_cause(message: str) -> str:
    """The real cause in a Ray job's failure message: the last line its driver printed (the
    driver ends with one line naming the cause), else Ray's own summary."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    printed = [line for line in lines if not line.startswith(_BOILERPLATE)]
    return (printed or lines or ["the driver failed"])[-1]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone


def _from_epoch(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


class Reconciler:
    """Refreshes records from Ray and MLflow (the service's background loop) and reads them."""

    def __init__(self, settings: ServiceSettings, sessions: sessionmaker, drivers: SweepDrivers,
                 mlflow: MlflowClient, on_change: Callable[[str], None] = lambda _sweep_id: None,
                 start_held: Callable[[], list[str]] = list) -> None:
        self.settings = settings
        self.on_change = on_change
        self.start_held = start_held
        """Starts held sweeps while running slots are free (:meth:`Submissions.start_held`)."""
        """Called with a sweep's id after its record was written, in this thread (renders the API's
        reads of it again, so a read never waits on Ray, MLflow or the database)."""
        self.sessions = sessions
        self.drivers = drivers
        self.mlflow = mlflow
        self.nodes: list[dict[str, float]] | None = None
        """Each alive Ray node's resources as last read (None: not read yet)."""

    # -- reads: the record only ----------------------------------------------------------------
    def current(self, sweep_id: str) -> SweepRow:
        """The sweep's record as last reconciled (no Ray or MLflow call)."""
        with self.sessions() as session:
            return get_row(session, sweep_id)

    @staticmethod
    def trials(row: SweepRow) -> list[TrialInfo]:
        """The sweep's trials as last read from MLflow by the reconciler."""
        return [TrialInfo.model_validate(trial) for trial in row.trials or ()]

    # -- the background loop ---------------------------------------------------------------------
    def reconcile(self) -> int:
        """Bring every queued/running record up to date and settle ended ones not yet settled;
        returns how many are still active."""
        try:
            nodes = [node for node in self.drivers.node_resources() if node.get("CPU")]
            # no node with CPUs listed yet (a head still registering its raylet): unknown, not empty
            self.nodes = nodes or None
        except ClusterUnavailable as err:
            log.warning("cannot read the Ray cluster's resources: %s", err)
        with self.sessions() as session:
            rows = list(session.scalars(select(SweepRow).where(or_(
                SweepRow.status.in_(ACTIVE_SWEEP_STATUSES), SweepRow.settled.is_not(True)))))
            for row in rows:
                try:
                    self.refresh(session, row)
                except Exception:  # one bad record must not stop the others
                    log.exception("reconciling sweep %s failed", row.id)
                    session.rollback()
            active = sum(row.active for row in rows)
        for sweep_id in self.start_held():  # the running slots that ended sweeps freed
            log.info("sweep %s: a running slot is free; its driver started", sweep_id)
        return active

    def refresh(self, session: Session, row: SweepRow) -> None:
        """Update one record from its driver's state and its MLflow runs; settle it if it ended."""
        if row.active:
            self._follow_driver(row)
        try:
            if row.parent_run_id is None and row.driver_submitted:
                parent = find_parent_run(self.mlflow, row.benchmark, row.id)
                if parent is not None:
                    row.experiment_id, row.parent_run_id = parent.info.experiment_id, parent.info.run_id
            if not row.active and not row.settled:
                self._settle(row)
            if row.parent_run_id is not None:
                row.trials = [t.model_dump(mode="json") for t in
                              trial_infos(self.mlflow, row.experiment_id, row.parent_run_id)]
        except MlflowException as err:
            log.warning("cannot read MLflow for sweep %s: %s", row.id, err)
        session.commit()
        self.on_change(row.id)

    def _follow_driver(self, row: SweepRow) -> None:
        if row.held:  # waiting for a running slot: no driver yet
            if row.cancel_requested:
                row.end("cancelled")
            return
        if not row.driver_submitted:
            if (utcnow() - _aware(row.created_at)).total_seconds() > SUBMIT_GRACE_S:
                if row.cancel_requested:
                    row.end("cancelled")
                else:
                    self._fail(row, "the service stopped before the sweep's driver was submitted")
            return  # the submission is still in flight in another request
        try:
            state = self.drivers.state(row.job_id)
        except ClusterUnavailable as err:
            log.warning("cannot refresh sweep %s: %s", row.id, err)
            return
        if state is None:  # a new cluster (the machine stopped, the head was restarted)
            if row.cancel_requested:
                row.end("cancelled")
            elif row.cluster_resumes < self.settings.max_cluster_resumes:
                self._restart(row, "the Ray cluster no longer knows its driver (the cluster was "
                                   "restarted)", cluster_lost=True)
            else:
                self._fail(row, f"the Ray cluster lost this sweep's driver {row.cluster_resumes + 1} "
                                "times (was the cluster restarted?)")
            return
        row.started_at = row.started_at or _from_epoch(state.start_time)
        if row.cancel_requested and state.status in ("PENDING", "RUNNING"):
            self.drivers.stop(row.job_id)  # a cancel whose stop was lost (the API died after it)
        if row.cancel_requested and state.status == "FAILED":
            row.end("cancelled", at=_from_epoch(state.end_time))
            return
        if state.status == "FAILED" and self._restartable(state):
            if row.driver_restarts - row.cluster_resumes < self.settings.max_driver_restarts:
                self._restart(row, self._death(state))
                return
            self._fail(row, f"the sweep's driver died {row.driver_restarts + 1} times; last: "
                            f"{self._death(state)} "
                            f"(driver log: ray job logs {row.job_id})", _from_epoch(state.end_time))
            return
        self._apply_driver_state(row, state)

    @staticmethod
    def _restartable(state: DriverState) -> bool:
        """A driver that died (killed, lost its node) rather than one that reported a failed
        sweep or a bad plan: those would fail the same way again."""
        code = _EXIT_CODE.search(state.message)
        final = (DRIVER_EXIT_CODES["failed"], DRIVER_EXIT_CODES["bad_input"])
        return code is None or int(code.group(1)) not in final

    @staticmethod
    def _death(state: DriverState) -> str:
        code = _EXIT_CODE.search(state.message)
        return f"the driver exited with code {code.group(1)}" if code else "the driver's process was lost"

    def _restart(self, row: SweepRow, why: str, cluster_lost: bool = False) -> None:
        """Start a new driver that resumes the sweep from Tune's saved state under DLAB_HOME:
        finished trials are kept, interrupted ones continue from their last checkpoint, and
        MLflow runs are found again by trial id (no step logged twice). The sweep's events show
        it as ``driver_restarted``."""
        attempt = row.driver_restarts + 1
        job_id = f"{row.id}--restart-{attempt}"
        log.warning("sweep %s: driver %s: %s; restarting it from Tune's saved state (restart %d)",
                    row.id, row.job_id, why, attempt)
        plan = json.dumps({"sweep_id": row.id, "spec": row.spec})
        try:
            self.drivers.submit_plan(row.id, plan, job_id=job_id, resume=True)
        except ClusterUnavailable as err:
            log.warning("cannot restart the driver of sweep %s: %s", row.id, err)
            return
        row.driver_job_id, row.driver_restarts = job_id, attempt
        row.cluster_resumes += int(cluster_lost)
        row.status = "running"

    @staticmethod
    def _fail(row: SweepRow, error: str, at: datetime | None = None) -> None:
        """Fail the sweep with ``error`` as the API may show it (no paths or addresses)."""
        row.end("failed", public_error(error), at)

    def _apply_driver_state(self, row: SweepRow, state: DriverState) -> None:
        if state.status == "PENDING":
            row.status = "queued" if row.driver_restarts == 0 else "running"
        elif state.status == "RUNNING":
            row.status = "running"
        elif state.status == "STOPPED":
            row.status = "cancelled"
        elif state.status == "SUCCEEDED":
            outcome, error = self._parent_outcome(row)
            row.status = "succeeded" if outcome == "succeeded" else "failed"
            if row.status == "failed":
                row.error = public_error(error or f"the sweep ended {outcome}")
        else:
            row.status = "failed"
            row.error = public_error(f"{driver_cause(state.message)} (driver log: ray job logs {row.job_id})")
        if not row.active:
            row.finished_at = _from_epoch(state.end_time) or utcnow()

    def _parent_outcome(self, row: SweepRow) -> tuple[str, str | None]:
        if row.parent_run_id is None:
            return "unknown", None
        run_tags = self.mlflow.get_run(row.parent_run_id).data.tags
        return run_tags.get(tags.STATUS, "unknown"), run_tags.get(tags.ERROR)

    def _settle(self, row: SweepRow) -> None:
        """Close every MLflow run the ended sweep left open (cancelled: KILLED; failed: FAILED)."""
        if row.parent_run_id is not None:
            settle_runs(self.mlflow, row.experiment_id, row.parent_run_id, row.status,
                        RUN_END_OF_SWEEP[row.status], PARENT_END_OF_SWEEP[row.status])
        row.settled = True

    # -- cancellation ----------------------------------------------------------------------------
    def cancel(self, sweep_id: str) -> SweepRow:
        """Stop a sweep's driver (its running trials with it); finished trials stay in MLflow.
        The cancel is recorded first, so it wins whatever moment it arrives: a submission still
        in flight (driver not yet marked submitted) sees it and never starts the driver, or stops
        the one it just started; the answer then comes at once, ``cancel_requested`` true."""
        with self.sessions() as session:
            row = get_row(session, sweep_id)
            self.refresh(session, row)
            if not row.active:
                raise SweepConflict(f"sweep {sweep_id} already ended ({row.status})")
            session.execute(update(SweepRow).where(SweepRow.id == sweep_id).values(cancel_requested=True),
                            execution_options={"synchronize_session": False})
            session.commit()
            session.refresh(row)
            self.on_change(row.id)
            if row.held:  # never started: nothing to stop
                row.end("cancelled")
                session.commit()
                self.on_change(row.id)
            if not row.driver_submitted:
                return row
            self.drivers.stop(row.job_id)
            deadline = time.monotonic() + CANCEL_WAIT_S
            while row.active and time.monotonic() < deadline:
                time.sleep(0.5)
                self.refresh(session, row)
            return row
