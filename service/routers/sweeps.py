"""``/api/v1/sweeps``: submit, list, inspect, watch, report on and cancel sweeps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from fastapi.sse import EventSourceResponse

from service.deps import ServicesDep, Settings, require_token
from service.events import sweep_events
from service.links import links
from service.schemas import SweepCreated, SweepDetail, SweepPage, SweepSummary, TrialInfo
from service.spec_body import REQUEST_BODY_DOC, spec_from_request
from sweeps.report import SweepReport
from sweeps.status import SweepStatus

router = APIRouter(prefix="/sweeps", tags=["sweeps"], dependencies=[Depends(require_token)])


class ReportOut(SweepReport):
    """The report plus URLs of its figures on this service."""

    figure_urls: list[str]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SweepCreated,
             openapi_extra=REQUEST_BODY_DOC,
             responses={200: {"description": "an Idempotency-Key replay: the sweep submitted before"},
                        409: {"description": "Idempotency-Key reused with a different spec"},
                        413: {"description": "body too large"}, 415: {"description": "not JSON/YAML"},
                        422: {"description": "invalid spec"}, 429: {"description": "too many active sweeps"}})
async def submit_sweep(request: Request, response: Response, services: ServicesDep,
                       idempotency_key: Annotated[str | None, Header(max_length=255)] = None) -> SweepCreated:
    """Submit a sweep spec (JSON, or YAML with its content type); its driver starts on Ray."""
    spec = await spec_from_request(request)
    row, created = await run_in_threadpool(services.submissions.submit, spec, idempotency_key)
    if not created:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    sweep_links = links(row.id, services.settings)
    response.headers["Location"] = sweep_links.self
    return SweepCreated(id=row.id, status=row.status, links=sweep_links)


@router.get("", response_model=SweepPage)
def list_sweeps(services: ServicesDep,
                status_filter: Annotated[SweepStatus | None, Query(alias="status")] = None,
                offset: Annotated[int, Query(ge=0)] = 0,
                limit: Annotated[int, Query(ge=1, le=200)] = 50) -> SweepPage:
    """Sweeps, newest first, optionally filtered by status."""
    rows, total = services.records.list(status_filter, offset, limit)
    return SweepPage(items=[SweepSummary.model_validate(row, from_attributes=True) for row in rows],
                     total=total, offset=offset, limit=limit)


@router.get("/{sweep_id}", response_model=SweepDetail)
def get_sweep(sweep_id: str, services: ServicesDep) -> SweepDetail:
    """Status, trial counts, best trial so far, MLflow ids and links."""
    row = services.reconciler.current(sweep_id)
    return services.records.detail(row, services.reconciler.trials(row))


@router.get("/{sweep_id}/trials", response_model=list[TrialInfo])
def get_trials(sweep_id: str, services: ServicesDep) -> list[TrialInfo]:
    """Each trial's config, status and latest metrics."""
    return services.reconciler.trials(services.reconciler.current(sweep_id))


@router.get("/{sweep_id}/events", response_class=EventSourceResponse)
async def watch_sweep(sweep_id: str, services: ServicesDep, settings: Settings):
    """Server-sent events until the sweep ends: sweep_status, trial_started, trial_reported,
    trial_finished, sweep_finished."""
    await run_in_threadpool(services.records.get, sweep_id)  # 404 before the stream starts
    async for event in sweep_events(services, sweep_id, settings.poll_interval_s):
        yield event


@router.get("/{sweep_id}/report", response_model=ReportOut)
def get_report(sweep_id: str, services: ServicesDep) -> ReportOut:
    """The results table (mean and std over seeds per searched setting) and figure URLs."""
    report = services.reports.report(services.reconciler.current(sweep_id))
    urls = [f"/api/v1/sweeps/{sweep_id}/report/{Path(f).stem}.png" for f in report.figures]
    return ReportOut(**report.model_dump(), figure_urls=urls)


@router.get("/{sweep_id}/report/{figure}.png", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}}}})
def get_figure(sweep_id: str, figure: str, services: ServicesDep) -> FileResponse:
    """A paper-style figure, e.g. ``mean_accuracy_vs_num_segments.png``."""
    path = services.reports.figure(services.reconciler.current(sweep_id), figure)
    return FileResponse(path, media_type="image/png")


@router.post("/{sweep_id}/cancel", response_model=SweepDetail,
             responses={409: {"description": "already ended"}})
def cancel_sweep(sweep_id: str, services: ServicesDep) -> SweepDetail:
    """Stop the sweep's Ray work; trials finished so far stay in MLflow."""
    row = services.reconciler.cancel(sweep_id)
    return services.records.detail(row, services.reconciler.trials(row))
