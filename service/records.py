"""Reading sweep records: look-ups, listings and the detail view (records are kept current by
:mod:`service.reconciler`; trials come from its cache)."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, load_only, sessionmaker

from service.db import SweepRow
from service.errors import SweepNotFound
from service.links import links, public_tracking_uri
from service.mlflow_view import best_trial, count_trials
from service.schemas import SweepDetail, SweepPage, SweepSummary, TrialInfo
from service.settings import ServiceSettings
from service.time_left import SweepWork, estimated_time_left_s
from sweeps.benchmarks import get_benchmark


def encodable(value: Any) -> Any:
    """``value`` with any text UTF-8 cannot encode (a lone surrogate, stored before submissions
    refused it) shown as its escape, so no stored record can make a read fail."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {encodable(k): encodable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [encodable(v) for v in value]
    return value


def get_row(session: Session, sweep_id: str) -> SweepRow:
    """The sweep's record, or :class:`SweepNotFound`."""
    row = session.get(SweepRow, sweep_id)
    if row is None:
        raise SweepNotFound(f"no sweep {sweep_id!r}")
    return row


SUMMARY_COLUMNS = (SweepRow.id, SweepRow.name, SweepRow.benchmark, SweepRow.status,
                   SweepRow.expected_trials, SweepRow.created_at, SweepRow.started_at,
                   SweepRow.finished_at)
"""What a listing reads (not the spec or the trials)."""


MAX_CACHED_DETAILS = 1024
MAX_CACHED_PAGES = 32
"""Rendered reads kept (oldest dropped first): bounded, whatever ids and pages clients ask for."""


def _bounded_put(cache: dict, key: Any, value: Any, size: int) -> None:
    cache.pop(key, None)
    cache[key] = value
    while len(cache) > size:
        del cache[next(iter(cache))]


class SweepRecords:
    """Queries over the sweep table, and the API's rendered reads of it: a sweep's detail and
    listing pages as JSON bytes. A writer (submission, reconciler, cancel) calls :meth:`changed`
    after its commit, which renders the sweep's detail again, in the writer's thread, and, if the
    sweep's listing fields moved, every kept listing page; so a read on the request path is a
    dictionary look-up, with no database access, and sees every write made before it answered.
    Renders and stores go one at a time (a lock): a render sees every commit before it, so the
    last stored body is never older than the last write."""

    def __init__(self, settings: ServiceSettings, sessions: sessionmaker) -> None:
        self.settings = settings
        self.sessions = sessions
        self._details: dict[str, bytes] = {}
        self._summaries: dict[str, bytes] = {}
        self._pages: dict[tuple[str | None, int, int], bytes] = {}
        self._work: dict[str, SweepWork] = {}
        self._work_lock = threading.Lock()  # (detail() also runs outside _lock)
        self._lock = threading.Lock()

    def changed(self, sweep_id: str) -> None:
        """After a write to the sweep's record: render its detail again, and the kept listing
        pages if its listing fields changed (nothing else when the write changed nothing)."""
        with self._lock:
            try:
                row = self.get(sweep_id)
            except SweepNotFound:
                self._details.pop(sweep_id, None)
                with self._work_lock:
                    self._work.pop(sweep_id, None)
                self._summaries.pop(sweep_id, None)
                self._pages.clear()
                return
            _bounded_put(self._details, sweep_id, self._render_detail(row), MAX_CACHED_DETAILS)
            summary = SweepSummary.model_validate(row, from_attributes=True).model_dump_json().encode()
            if self._summaries.get(sweep_id) == summary:
                return
            _bounded_put(self._summaries, sweep_id, summary, MAX_CACHED_DETAILS)
            for key in list(self._pages):
                self._pages[key] = self._render_page(*key)

    def cached_detail(self, sweep_id: str) -> bytes | None:
        """The sweep's rendered detail if it is kept (no database access)."""
        return self._details.get(sweep_id)

    def cached_page(self, status: str | None, offset: int, limit: int) -> bytes | None:
        """A rendered listing page if it is kept (no database access)."""
        return self._pages.get((status, offset, limit))

    def detail_json(self, sweep_id: str) -> bytes:
        """The sweep's :meth:`detail` as JSON (rendered on a first read; kept current by
        :meth:`changed`)."""
        with self._lock:
            cached = self._details.get(sweep_id)
            if cached is None:
                cached = self._render_detail(self.get(sweep_id))
                _bounded_put(self._details, sweep_id, cached, MAX_CACHED_DETAILS)
            return cached

    def page_json(self, status: str | None, offset: int, limit: int) -> bytes:
        """A listing page (:class:`SweepPage`) as JSON (rendered on a first read; kept current by
        :meth:`changed`)."""
        key = (status, offset, limit)
        with self._lock:
            cached = self._pages.get(key)
            if cached is None:
                cached = self._render_page(*key)
                _bounded_put(self._pages, key, cached, MAX_CACHED_PAGES)
            return cached

    def _render_detail(self, row: SweepRow) -> bytes:
        trials = [TrialInfo.model_validate(t) for t in row.trials or ()]
        return self.detail(row, trials).model_dump_json().encode()

    def _render_page(self, status: str | None, offset: int, limit: int) -> bytes:
        rows, total = self.list(status, offset, limit)
        page = SweepPage(items=[SweepSummary.model_validate(row, from_attributes=True) for row in rows],
                         total=total, offset=offset, limit=limit)
        return page.model_dump_json().encode()

    def get(self, sweep_id: str) -> SweepRow:
        with self.sessions() as session:
            return get_row(session, sweep_id)

    def list(self, status: str | None, offset: int, limit: int) -> tuple[list[SweepRow], int]:
        """A page of sweeps, newest first, and how many match in all."""
        with self.sessions() as session:
            query = select(SweepRow).options(load_only(*SUMMARY_COLUMNS))
            if status:
                query = query.where(SweepRow.status == status)
            total = session.scalar(select(func.count()).select_from(query.subquery()))
            rows = session.scalars(query.order_by(SweepRow.created_at.desc()).offset(offset).limit(limit))
            return list(rows), total

    def _time_left(self, row: SweepRow, trials: list[TrialInfo], pending: int) -> float | None:
        """The active sweep's estimated time left (:mod:`service.time_left`)."""
        time_metric = get_benchmark(row.benchmark).workload.time_metric
        with self._work_lock:
            work = self._work.get(row.id) or SweepWork(row.spec, row.benchmark)
            _bounded_put(self._work, row.id, work, MAX_CACHED_DETAILS)
            started, queued = work.started(trials), work.queued(pending)
        return estimated_time_left_s(trials, pending, time_metric, started, queued)

    def detail(self, row: SweepRow, trials: list[TrialInfo]) -> SweepDetail:
        """Everything known about one sweep, for the API."""
        counts = count_trials(trials, row.expected_trials, ended=not row.active)
        left = None
        if row.active:  # (an ended sweep's benchmark is not looked up: it may be gone since)
            left = self._time_left(row, trials, counts.pending)
        return SweepDetail(
            id=encodable(row.id), name=encodable(row.name), benchmark=row.benchmark, status=row.status,
            expected_trials=row.expected_trials, created_at=row.created_at, started_at=row.started_at,
            finished_at=row.finished_at, metric=row.metric, mode=row.mode, trials=counts,
            estimated_time_left_s=None if left is None else round(left),
            best=best_trial(trials, row.metric, row.mode), error=encodable(row.error),
            mlflow_tracking_uri=public_tracking_uri(self.settings), mlflow_experiment_id=row.experiment_id,
            mlflow_parent_run_id=row.parent_run_id, spec=encodable(row.spec),
            links=links(row.id, self.settings, row.experiment_id, row.parent_run_id),
            driver_restarts=row.driver_restarts or 0, cancel_requested=bool(row.cancel_requested),
            waiting_for_slot=bool(row.held),
        )
