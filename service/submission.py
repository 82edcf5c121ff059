"""Accepting a sweep: the per-sweep trial limit, the active-sweep limit, idempotency keys, the
record, and the driver started on Ray."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.cluster import ClusterUnavailable
from service.db import SweepRow
from service.drivers import SweepDrivers
from service.errors import LimitExceeded, SpecRejected, SweepConflict
from service.settings import ServiceSettings
from sweeps.checks import Problem, data_problems, memory_problems, resource_problems
from sweeps.cost import SweepEstimate, estimate
from sweeps.errors import field_messages
from sweeps.plan import SweepPlan
from sweeps.spec import SweepSpec
from sweeps.status import ACTIVE_SWEEP_STATUSES


def _problem(loc: tuple[str, ...], msg: str) -> dict:
    return {"type": "value_error", "loc": ["body", *loc], "msg": msg}


def _describe(config: dict) -> str:
    text = ", ".join(f"{k}={v}" for k, v in config.items() if not isinstance(v, dict))
    return text or "the fixed params"


class Submissions:
    """Records and starts sweeps; the active-sweep count and the insert happen under one lock, so
    the limit is exact within this process."""

    def __init__(self, settings: ServiceSettings, sessions: sessionmaker, drivers: SweepDrivers,
                 cluster_nodes: Callable[[], list[dict[str, float]] | None] = lambda: None,
                 on_change: Callable[[str], None] = lambda _sweep_id: None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.drivers = drivers
        self.cluster_nodes = cluster_nodes
        self.on_change = on_change
        """Each Ray node's resources as the reconciler last read them (None: unknown yet)."""
        self._lock = threading.Lock()

    def check(self, spec: SweepSpec) -> SweepEstimate:
        """Everything that can be checked before a sweep starts, beyond the spec's own validation:
        the trial limit, the cost budgets, the cluster's resources (as the reconciler last read
        them) and, where the drivers share this machine, the dataset files. Returns the cost
        estimate; :class:`SpecRejected` (422) names each field that fails."""
        settings = self.settings
        if spec.expected_trials > settings.max_trials_per_sweep:
            raise SpecRejected([_problem(("num_samples",),
                f"num_samples: with the grid, the sweep would run {spec.expected_trials} trials; "
                f"this service allows at most {settings.max_trials_per_sweep} per sweep "
                "(DLAB_MAX_TRIALS_PER_SWEEP)")])
        cost = estimate(spec)
        problems: list[Problem] = []
        if cost.max_trial_cost > settings.max_trial_cost:
            worst = max(cost.trials, key=lambda t: t.cost)
            problems.append((("params",),
                f"params: one trial ({_describe(worst.config)}) is estimated at {cost.max_trial_cost:.3g} "
                f"parameter-sample passes, over this service's per-trial budget of "
                f"{settings.max_trial_cost:.3g} (DLAB_MAX_TRIAL_COST); reduce its sizes (hidden_sizes, "
                "num_segments, epochs, num_tasks, total_steps)"))
        if cost.total_cost > settings.max_sweep_cost:
            problems.append((("search_space",),
                f"search_space: the sweep's {cost.expected_trials} trials are estimated at "
                f"{cost.total_cost:.3g} parameter-sample passes, over this service's per-sweep budget "
                f"of {settings.max_sweep_cost:.3g} (DLAB_MAX_SWEEP_COST); search fewer or smaller settings"))
        nodes = self.cluster_nodes()
        if nodes is not None:
            problems += resource_problems(spec, nodes)
        problems += memory_problems(spec, nodes or [], cost.max_trial_memory_mb)
        if settings.embedded_ray:  # the drivers share this machine's files
            problems += data_problems(spec)
        if problems:
            raise SpecRejected([_problem(loc, msg) for loc, msg in problems])
        return cost

    def submit(self, spec: SweepSpec, idempotency_key: str | None = None) -> tuple[SweepRow, bool]:
        """Record and start a sweep; a repeated ``idempotency_key`` returns the first sweep
        (``created`` is then False)."""
        self.check(spec)
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
                           metric=plan.metric, mode=plan.mode, held=not self._slot_free(session))
            session.add(row)
            try:
                session.commit()
                self.on_change(row.id)
            except IntegrityError:  # a concurrent request with the same key won the race
                session.rollback()
                existing = self._by_key(session, idempotency_key or "", spec)
                if existing is None:
                    raise
                return existing, False
            if row.held:  # started by start_held once a running sweep ends
                return row, True
            return self._start_driver(session, row, plan), True

    def _slot_free(self, session: Session) -> bool:
        """Whether one more sweep's driver may run now (``max_running_sweeps``)."""
        limit = self.settings.max_running_sweeps
        if limit is None:
            return True
        running = session.scalar(select(func.count()).select_from(SweepRow).where(
            SweepRow.status.in_(ACTIVE_SWEEP_STATUSES), SweepRow.held.is_not(True)))
        return running < limit

    def start_held(self) -> list[str]:
        """Start the drivers of held sweeps, oldest first, while running slots are free; returns
        their ids. A sweep whose driver cannot be started now (Ray unreachable) stays held; one whose
        spec this version refuses (held across an upgrade) fails, naming the fields, and the next
        one starts."""
        started: list[str] = []
        with self._lock, self.sessions() as session:
            waiting = session.scalars(select(SweepRow).where(
                SweepRow.held.is_(True), SweepRow.status.in_(ACTIVE_SWEEP_STATUSES))
                .order_by(SweepRow.created_at))
            for row in list(waiting):
                if not self._slot_free(session):
                    break
                try:
                    plan = SweepPlan(sweep_id=row.id, spec=SweepSpec.model_validate(row.spec))
                except ValidationError as err:  # held under older rules: fail it, start the next
                    row.end("failed", "its spec no longer passes this version's checks: "
                                      + "; ".join(field_messages(err)))
                    session.commit()
                    self.on_change(row.id)
                    continue
                row.held = False
                session.commit()
                if self._start_driver(session, row, plan, hold_if_unreachable=True).held:
                    break  # Ray cannot take it now: the next round tries again
                started.append(row.id)
        return started

    def _start_driver(self, session: Session, row: SweepRow, plan: SweepPlan,
                      hold_if_unreachable: bool = False) -> SweepRow:
        """Start the recorded sweep's driver unless a cancel came first. A cancel may arrive at
        any moment (it sets ``cancel_requested``): checked before the driver is submitted, and
        after, by a conditional update that marks the driver submitted only if no cancel is
        recorded; if one is, the just-started driver is stopped (a cancel that finds the driver
        already marked submitted stops it itself). An unreachable Ray fails the sweep, or, with
        ``hold_if_unreachable`` (a sweep that waited for its slot), holds it again."""
        session.refresh(row)
        if row.cancel_requested:
            row.end("cancelled")
            row.settled = True
            session.commit()
            self.on_change(row.id)
            return row
        try:
            self.drivers.submit(plan)
        except ClusterUnavailable:
            if hold_if_unreachable:
                row.held = True
                session.commit()
                return row
            row.end("failed", "could not start the driver: the Ray cluster is unreachable")
            session.commit()
            self.on_change(row.id)
            raise
        submitted = update(SweepRow).where(SweepRow.id == row.id).values(driver_submitted=True)
        # no in-memory synchronisation: this session's copy of cancel_requested may be stale
        no_sync = {"synchronize_session": False}
        marked = session.execute(submitted.where(SweepRow.cancel_requested.is_not(True)),
                                 execution_options=no_sync)
        session.commit()
        if marked.rowcount == 0:  # the cancel came while the driver was being submitted
            self.drivers.stop(row.job_id)
            session.execute(submitted, execution_options=no_sync)
            session.commit()
        session.refresh(row)
        self.on_change(row.id)
        return row

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
