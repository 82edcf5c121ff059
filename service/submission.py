"""Accepting a sweep: the per-sweep trial limit, the active-sweep limit, idempotency keys, the
record, and the driver started on Ray."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.cluster import ClusterUnavailable
from service.db import SweepRow, utcnow
from service.drivers import SweepDrivers
from service.errors import LimitExceeded, SpecRejected, SweepConflict
from service.settings import ServiceSettings
from sweeps.plan import SweepPlan
from sweeps.spec import SweepSpec
from sweeps.status import ACTIVE_SWEEP_STATUSES


class Submissions:
    """Records and starts sweeps; the active-sweep count and the insert happen under one lock, so
    the limit is exact within this process."""

    def __init__(self, settings: ServiceSettings, sessions: sessionmaker, drivers: SweepDrivers) -> None:
        self.settings = settings
        self.sessions = sessions
        self.drivers = drivers
        self._lock = threading.Lock()

    def submit(self, spec: SweepSpec, idempotency_key: str | None = None) -> tuple[SweepRow, bool]:
        """Record and start a sweep; a repeated ``idempotency_key`` returns the first sweep
        (``created`` is then False)."""
        if spec.expected_trials > self.settings.max_trials_per_sweep:
            raise SpecRejected([{
                "type": "value_error", "loc": ["body", "num_samples"],
                "msg": f"num_samples: with the grid, the sweep would run {spec.expected_trials} trials; "
                       f"this service allows at most {self.settings.max_trials_per_sweep} per sweep "
                       "(DLAB_MAX_TRIALS_PER_SWEEP)",
            }])
        with self._lock, self.sessions() as session:
            if idempotency_key:
                existing = self._by_key(session, idempotency_key, spec)
                if existing is not None:
                    return existing, False
            active = session.scalar(select(func.count()).select_from(SweepRow)
                                    .where(SweepRow.status.in_(ACTIVE_SWEEP_STATUSES)))
            if active >= self.settings.max_active_sweeps:
                raise LimitExceeded(f"{active} sweeps are queued or running; this service runs at most "
                                    f"{self.settings.max_active_sweeps} at once (DLAB_MAX_ACTIVE_SWEEPS)")
            plan = SweepPlan.resolve(spec, self._new_id(session, spec.name))
            row = SweepRow(id=plan.sweep_id, name=spec.name, benchmark=spec.benchmark, status="queued",
                           spec=spec.model_dump(mode="json"), spec_hash=spec.spec_hash(),
                           idempotency_key=idempotency_key, expected_trials=plan.expected_trials,
                           metric=plan.metric, mode=plan.mode)
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
                self.drivers.submit(plan)
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
