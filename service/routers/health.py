"""Liveness and readiness probes (no auth, outside the versioned API)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from service.deps import Manager
from service.schemas import Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(manager: Manager) -> JSONResponse:
    """Ray reachable, MLflow reachable, database writable."""
    readiness = await run_in_threadpool(manager.readiness)
    return JSONResponse(readiness.model_dump(), status_code=200 if readiness.ready else 503)
