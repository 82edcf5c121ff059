"""Liveness and readiness probes (no auth, outside the versioned API)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from service.cluster import ClusterUnavailable
from service.db import Heartbeat, utcnow
from service.deps import ServicesDep
from service.schemas import Readiness, ReadyCheck
from service.services import Services

router = APIRouter(tags=["health"])


def readiness(services: Services) -> Readiness:
    """Ray's Jobs endpoint answers, MLflow answers, the database takes a write."""
    checks: dict[str, ReadyCheck] = {}
    try:
        services.drivers.ping()
        checks["ray"] = ReadyCheck(ok=True, detail=services.drivers.dashboard_url)
    except ClusterUnavailable as err:
        checks["ray"] = ReadyCheck(ok=False, detail=str(err))
    try:
        services.mlflow.search_experiments(max_results=1)
        checks["mlflow"] = ReadyCheck(ok=True, detail=services.settings.tracking_uri)
    except (MlflowException, OSError) as err:
        checks["mlflow"] = ReadyCheck(ok=False, detail=f"{services.settings.tracking_uri}: {err}")
    try:
        with services.sessions() as session:
            session.merge(Heartbeat(id=1, at=utcnow()))
            session.commit()
        checks["database"] = ReadyCheck(ok=True, detail="writable")
    except SQLAlchemyError as err:
        checks["database"] = ReadyCheck(ok=False, detail=str(err).splitlines()[0])
    return Readiness(ready=all(c.ok for c in checks.values()), checks=checks)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """Ray reachable, MLflow reachable, database writable."""
    result = await run_in_threadpool(readiness, services)
    return JSONResponse(result.model_dump(), status_code=200 if result.ready else 503)
