"""Live progress of a sweep as server-sent events, derived by comparing successive snapshots of
the sweep record and its trial runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi.concurrency import run_in_threadpool
from fastapi.sse import ServerSentEvent

from service.schemas import SweepDetail, TrialInfo
from service.services import Services
from sweeps.status import ACTIVE_SWEEP_STATUSES, TERMINAL_TRIAL_STATUSES


def _snapshot(services: Services, sweep_id: str) -> tuple[SweepDetail, list[TrialInfo]]:
    row = services.reconciler.current(sweep_id)
    trials = services.reconciler.trials(row)
    return services.records.detail(row, trials), trials


def trial_events(before: dict[str, TrialInfo], trials: list[TrialInfo]) -> list[tuple[str, dict]]:
    """(event, payload) for what changed between two snapshots of the trials."""
    events = []
    for trial in trials:
        old = before.get(trial.trial_id)
        payload = trial.model_dump(mode="json")
        if old is None:
            events.append(("trial_started", payload))
        if trial.metrics and (old is None or trial.metrics != old.metrics):
            events.append(("trial_reported", payload))
        if trial.status in TERMINAL_TRIAL_STATUSES and (old is None or old.status != trial.status):
            events.append(("trial_finished", payload))
    return events


async def sweep_events(services: Services, sweep_id: str, poll_s: float) -> AsyncIterator[ServerSentEvent]:
    """Events until the sweep ends: ``sweep_status``, ``trial_started``, ``trial_reported``,
    ``trial_finished`` and a final ``sweep_finished`` carrying the sweep's detail."""
    seen: dict[str, TrialInfo] = {}
    status, sequence, restarts = None, 0, 0
    while True:
        detail, trials = await run_in_threadpool(_snapshot, services, sweep_id)
        changes = trial_events(seen, trials)
        if detail.status != status:
            status = detail.status
            changes.insert(0, ("sweep_status", {"id": sweep_id, "status": status,
                                                "trials": detail.trials.model_dump()}))
        if detail.driver_restarts > restarts:
            restarts = detail.driver_restarts
            changes.insert(0, ("driver_restarted", {"id": sweep_id, "driver_restarts": restarts}))
        for event, payload in changes:
            sequence += 1
            yield ServerSentEvent(event=event, data=payload, id=str(sequence))
        seen = {t.trial_id: t for t in trials}
        if detail.status not in ACTIVE_SWEEP_STATUSES:
            sequence += 1
            yield ServerSentEvent(event="sweep_finished", data=detail.model_dump(mode="json"),
                                  id=str(sequence))
            return
        await asyncio.sleep(poll_s)
