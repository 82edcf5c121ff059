"""Liveness and readiness probes (no auth, outside the versioned API)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from service.deps import ServicesDep
from service.readiness import readiness
from service.schemas import Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """Ray reachable, MLflow writable, database writable."""
    result = await run_in_threadpool(readiness, services)
    return JSONResponse(result.model_dump(), status_code=200 if result.ready else 503)
