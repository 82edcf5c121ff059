"""``/api/v1/sweeps``: submit, list, inspect, watch, report on and cancel sweeps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse
from pydantic import Field

from service.deps import ServicesDep, Settings, require_token
from service.events import sweep_events
from service.links import links
from service.openapi import SWEEP_LINKS, error_responses
from service.readiness import require_stores
from service.schemas import DEFAULT_PAGE_LIMIT, DryRun, SweepCreated, SweepDetail, SweepPage, TrialInfo
from service.spec_body import REQUEST_BODY_DOC, spec_from_request
from sweeps.report import SweepReport
from sweeps.status import SweepStatus

router = APIRouter(prefix="/sweeps", tags=["sweeps"], dependencies=[Depends(require_token)],
                   responses=error_responses(401, 422))
PER_SWEEP_ERRORS = error_responses(404, 503)
REPORT_ERRORS = error_responses(404, 409, 503)


MAX_OFFSET = 1_000_000_000
"""Largest listing offset (beyond it the database's integer would overflow)."""


async def existing_sweep(sweep_id: str, services: ServicesDep) -> str:
    """The id of a recorded sweep, else 404 (a dependency, so it answers before a stream starts)."""
    if services.records.cached_detail(sweep_id) is None:
        await run_in_threadpool(services.records.get, sweep_id)
    return sweep_id


class ReportOut(SweepReport):
    """The report plus URLs of its figures and of all its files on this service."""

    figure_urls: list[str]
    file_urls: dict[str, str] = Field(
        description="every file of the report (tables, summaries, figures as PNG and SVG) by name: "
                    "its URL on this service")


REPORT_MEDIA_TYPES = {".csv": "text/csv", ".json": "application/json", ".png": "image/png",
                      ".svg": "image/svg+xml"}


# response_model=None: the documented body differs by status (201: SweepCreated; 200: a replay or a dry run)
@router.post("", status_code=status.HTTP_201_CREATED, response_model=None,
             openapi_extra=REQUEST_BODY_DOC,
             responses={200: {"model": SweepCreated | DryRun,
                              "description": "an Idempotency-Key replay: the sweep submitted before; "
                                             "or, with dry_run=true, the resolved trials and cost "
                                             "estimate (nothing is started)"},
                        201: {"model": SweepCreated, "links": SWEEP_LINKS,
                              "description": "submitted: the sweep is queued and its driver starts on Ray",
                              "headers": {"Location": {"description": "the sweep's URL",
                                                       "schema": {"type": "string"}}}},
                        **error_responses(409, 413, 415, 422, 429, 503)})
async def submit_sweep(request: Request, response: Response, services: ServicesDep,
                       idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
                       dry_run: Annotated[bool, Query(description="check the spec and answer its "
                                                      "trials and cost estimate; start nothing")] = False,
                       ) -> SweepCreated | DryRun:
    """Submit a sweep spec (JSON, or YAML with its content type); its driver starts on Ray."""
    spec = await spec_from_request(request)
    if dry_run:
        cost = await run_in_threadpool(services.submissions.check, spec)
        response.status_code = status.HTTP_200_OK
        return DryRun(name=spec.name, benchmark=spec.benchmark, expected_trials=cost.expected_trials,
                      trials=cost.trials, max_trial_cost=cost.max_trial_cost, total_cost=cost.total_cost,
                      trial_budget=services.settings.max_trial_cost,
                      sweep_budget=services.settings.max_sweep_cost, early_stopping=cost.early_stopping)
    await run_in_threadpool(require_stores, services)
    row, created = await run_in_threadpool(services.submissions.submit, spec, idempotency_key)
    if not created:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    sweep_links = links(row.id, services.settings)
    response.headers["Location"] = sweep_links.self
    return SweepCreated(id=row.id, status=row.status, links=sweep_links)


@router.get("", response_model=SweepPage)
async def list_sweeps(services: ServicesDep,
                      status_filter: Annotated[SweepStatus | None, Query(alias="status")] = None,
                      offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                      limit: Annotated[int, Query(ge=1, le=200)] = DEFAULT_PAGE_LIMIT) -> Response:
    """Sweeps, newest first, optionally filtered by status (from the service's records, at most one
    reconciler poll interval old; a kept page answers without a database query)."""
    body = services.records.cached_page(status_filter, offset, limit)
    if body is None:
        body = await run_in_threadpool(services.records.page_json, status_filter, offset, limit)
    return Response(body, media_type="application/json")


@router.get("/{sweep_id}", response_model=SweepDetail, responses=PER_SWEEP_ERRORS)
async def get_sweep(sweep_id: str, services: ServicesDep) -> Response:
    """Status, trial counts, best trial so far, MLflow ids and links (from the service's records,
    which the background reconciler keeps current, at most one poll interval old; no Ray, MLflow
    or database call on a read)."""
    body = services.records.cached_detail(sweep_id)
    if body is None:
        body = await run_in_threadpool(services.records.detail_json, sweep_id)
    return Response(body, media_type="application/json")


@router.get("/{sweep_id}/trials", response_model=list[TrialInfo], responses=PER_SWEEP_ERRORS)
def get_trials(sweep_id: str, services: ServicesDep) -> list[TrialInfo]:
    """Each trial's config, status and latest metrics."""
    return services.reconciler.trials(services.reconciler.current(sweep_id))


@router.get("/{sweep_id}/events", response_class=EventSourceResponse, responses=PER_SWEEP_ERRORS)
async def watch_sweep(sweep_id: Annotated[str, Depends(existing_sweep)], services: ServicesDep,
                      settings: Settings):
    """Server-sent events until the sweep ends: sweep_status, trial_started, trial_reported,
    trial_finished, sweep_finished."""
    async for event in sweep_events(services, sweep_id, settings.poll_interval_s):
        yield event


@router.get("/{sweep_id}/report", response_model=ReportOut, responses=REPORT_ERRORS)
def get_report(sweep_id: str, services: ServicesDep) -> ReportOut:
    """The results table (mean and std over seeds per searched setting) and figure URLs."""
    report = services.reports.report(services.reconciler.current(sweep_id))
    urls = [f"/api/v1/sweeps/{sweep_id}/report/{Path(f).stem}.png" for f in report.figures]
    files = {name: f"/api/v1/sweeps/{sweep_id}/report/files/{name}" for name in report.files()}
    return ReportOut(**report.model_dump(), figure_urls=urls, file_urls=files)


@router.get("/{sweep_id}/report/{figure}.png", response_class=Response,
            responses={200: {"content": {"image/png": {"schema": {"type": "string",
                                                                   "contentMediaType": "image/png"}}}},
                       **REPORT_ERRORS})
def get_figure(sweep_id: str, figure: str, services: ServicesDep) -> Response:
    """A paper-style figure, e.g. ``mean_accuracy_vs_num_segments.png``."""
    content = services.reports.figure(services.reconciler.current(sweep_id), figure)
    return Response(content, media_type="image/png")


@router.get("/{sweep_id}/report/files/{name}", response_class=Response,
            responses={200: {"content": {media: {"schema": {"type": "string"}}
                                         for media in REPORT_MEDIA_TYPES.values()}},
                       **REPORT_ERRORS})
def get_report_file(sweep_id: str, name: str, services: ServicesDep) -> Response:
    """One file of the report, as its ``file_urls`` list them: ``results.csv``, ``results.json``,
    ``trials.csv``, ``subnetworks.json``, ``search.json``, each figure's ``.png`` and ``.svg``."""
    content = services.reports.file(services.reconciler.current(sweep_id), name)
    return Response(content, media_type=REPORT_MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream"))


@router.post("/{sweep_id}/cancel", response_model=SweepDetail,
             responses={**PER_SWEEP_ERRORS, **error_responses(409)})
def cancel_sweep(sweep_id: str, services: ServicesDep) -> SweepDetail:
    """Stop the sweep's Ray work; trials finished so far stay in MLflow."""
    row = services.reconciler.cancel(sweep_id)
    return services.records.detail(row, services.reconciler.trials(row))
