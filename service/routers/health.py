"""Liveness and readiness probes (no auth, outside the versioned API)."""

from __future__ import annotations

import logging

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
log = logging.getLogger("dlab.service")


def readiness(services: Services) -> Readiness:
    """Ray's Jobs endpoint answers, MLflow answers, the database takes a write. The details say
    only reachable or not: this route needs no token, so addresses, paths and errors go to the
    server log."""
    checks: dict[str, ReadyCheck] = {}
    try:
        services.drivers.ping()
        checks["ray"] = ReadyCheck(ok=True, detail="reachable")
    except ClusterUnavailable as err:
        log.warning("readiness: Ray unreachable: %s", err)
        checks["ray"] = ReadyCheck(ok=False, detail="unreachable")
    try:
        services.mlflow.search_experiments(max_results=1)
        checks["mlflow"] = ReadyCheck(ok=True, detail="reachable")
    except (MlflowException, OSError) as err:
        log.warning("readiness: MLflow %s unreachable: %s", services.settings.tracking_uri, err)
        checks["mlflow"] = ReadyCheck(ok=False, detail="unreachable")
    try:
        with services.sessions() as session:
            session.merge(Heartbeat(id=1, at=utcnow()))
            session.commit()
        checks["database"] = ReadyCheck(ok=True, detail="writable")
    except SQLAlchemyError as err:
        log.warning("readiness: database not writable: %s", err)
        checks["database"] = ReadyCheck(ok=False, detail="not writable")
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
