"""The FastAPI application: routers, limits, error mapping, and a lifespan that connects to Ray
(starting the embedded head if no cluster is configured) and keeps sweep records reconciled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from mlflow.exceptions import MlflowException
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.cached_reads import CachedReads
from service.cluster import ClusterUnavailable, ensure_local_head
from service.db import make_engine, make_sessionmaker
from service.errors import LimitExceeded, SpecRejected, SweepConflict, SweepNotFound
from service.limits import BodySizeLimit
from service.links import API_PREFIX
from service.openapi import allowed_methods, operation_id
from service.openapi import install as install_openapi
from service.readiness import StoresDown
from service.reconciler import Reconciler
from service.routers import health, sweeps, web
from service.schemas import DEFAULT_PAGE_LIMIT
from service.security_headers import SecurityHeaders
from service.server_errors import ServerErrors
from service.services import Services
from service.settings import ServiceSettings
from sweeps.tracking import project_version

log = logging.getLogger("dlab.service")


async def _reconcile_forever(reconciler: Reconciler, interval_s: float) -> None:
    while True:
        try:
            await run_in_threadpool(reconciler.reconcile)
        except Exception:  # keep reconciling; one bad poll must not stop the loop
            log.exception("reconciling sweeps failed")
        await asyncio.sleep(interval_s)


def _error_handlers(app: FastAPI) -> None:
    def handler(code: int, headers: dict[str, str] | None = None):
        async def respond(_request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)
        return respond

    def unavailable(what: str):
        async def respond(request: Request, exc: Exception) -> JSONResponse:
            # addresses and paths stay in the server log, not in the answer
            log.warning("%s %s: %s unavailable: %s", request.method, request.url.path, what, exc)
            return JSONResponse({"detail": f"{what} is unreachable right now; retry later"},
                                status_code=503, headers={"Retry-After": "30"})
        return respond

    app.add_exception_handler(SweepNotFound, handler(404))
    app.add_exception_handler(SweepConflict, handler(409))
    app.add_exception_handler(LimitExceeded, handler(429, {"Retry-After": "30"}))
    app.add_exception_handler(ClusterUnavailable, unavailable("the Ray cluster"))
    app.add_exception_handler(MlflowException, unavailable("the MLflow tracking store"))

    async def stores_down(_request: Request, exc: StoresDown) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})

    app.add_exception_handler(StoresDown, stores_down)

    async def rejected(_request: Request, exc: SpecRejected) -> JSONResponse:
        return JSONResponse({"detail": exc.errors}, status_code=422)

    app.add_exception_handler(SpecRejected, rejected)

    async def method_not_allowed(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's Allow lists only the first route matching the path: list every documented one
        allowed = allowed_methods(app, request.url.path)
        return JSONResponse({"detail": exc.detail}, status_code=405,
                            headers={**(exc.headers or {}), "Allow": ", ".join(allowed)})

    app.add_exception_handler(405, method_not_allowed)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The service app; ``settings`` default to the environment."""
    settings = settings or ServiceSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.embedded_ray:
            head = await run_in_threadpool(ensure_local_head, settings)
            log.info("embedded Ray head at %s (jobs %s)", head.gcs_address, head.dashboard_url)
        engine = make_engine(settings.database)
        services = Services.build(settings, make_sessionmaker(engine))
        app.state.settings = settings
        app.state.tokens = settings.tokens()
        app.state.services = services
        await run_in_threadpool(services.reconciler.reconcile)
        # the default listing page kept from the start: the first clients polling the listing
        # at once then find it rendered instead of each rendering it
        await run_in_threadpool(services.records.page_json, None, 0, DEFAULT_PAGE_LIMIT)
        task = asyncio.create_task(_reconcile_forever(services.reconciler, settings.poll_interval_s))
        try:
            yield
        finally:
            task.cancel()
            engine.dispose()

    app = FastAPI(title="dendrite-lab", version=project_version(), lifespan=lifespan,
                  description="Submit, watch and report Active Dendrites sweeps (Ray Tune + MLflow).",
                  generate_unique_id_function=operation_id,
                  docs_url=None, redoc_url=None)  # /docs: service.routers.web, no CDN
    app.include_router(health.router)
    app.include_router(sweeps.router, prefix=API_PREFIX)
    app.include_router(web.router)
    _error_handlers(app)
    install_openapi(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(CachedReads)  # inside ServerErrors: a crash here still answers a plain 500
    app.add_middleware(ServerErrors)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, a 500 or a middleware's own too
    return app
