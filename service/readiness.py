"""Readiness: Ray's Jobs endpoint answers, the MLflow store takes a write, the database takes a
write. Served by ``/readyz``, and checked before a submission is accepted (a sweep submitted
while a store is down would only fail later)."""

from __future__ import annotations

import logging

from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from service.cluster import ClusterUnavailable
from service.db import Heartbeat, utcnow
from service.schemas import Readiness, ReadyCheck
from service.services import Services
from sweeps.mlflow_retry import root_cause

log = logging.getLogger("dlab.service")
DEFAULT_EXPERIMENT_ID = "0"
PROBE_TAG = "dlab.readiness_probe"
"""The readiness probe writes this tag on MLflow's Default experiment (a write proves the store
takes them)."""


def readiness(services: Services) -> Readiness:
    """Ray's Jobs endpoint answers, MLflow and the database take a write. The details say
    only reachable or not: this route needs no token, so addresses, paths and errors go to the
    server log."""
    checks: dict[str, ReadyCheck] = {}
    try:
        services.drivers.ping()
        checks["ray"] = ReadyCheck(ok=True, detail="reachable")
    except ClusterUnavailable as err:
        log.warning("readiness: Ray unreachable: %s", err)
        checks["ray"] = ReadyCheck(ok=False, detail="unreachable")
    checks.update(store_checks(services))
    return Readiness(ready=all(c.ok for c in checks.values()), checks=checks)


def store_checks(services: Services) -> dict[str, ReadyCheck]:
    """The MLflow store and the service's database each take a write."""
    checks: dict[str, ReadyCheck] = {}
    try:
        # a write, not a read: a store that answers reads but takes no writes fails every sweep
        services.mlflow.set_experiment_tag(DEFAULT_EXPERIMENT_ID, PROBE_TAG, utcnow().isoformat())
        checks["mlflow"] = ReadyCheck(ok=True, detail="writable")
    except (MlflowException, OSError) as err:
        log.warning("readiness: MLflow %s takes no writes: %s", services.settings.tracking_uri,
                    root_cause(err))
        checks["mlflow"] = ReadyCheck(ok=False, detail="not writable")
    try:
        with services.sessions() as session:
            session.merge(Heartbeat(id=1, at=utcnow()))
            session.commit()
        checks["database"] = ReadyCheck(ok=True, detail="writable")
    except SQLAlchemyError as err:
        log.warning("readiness: database not writable: %s", err)
        checks["database"] = ReadyCheck(ok=False, detail="not writable")
    return checks


class StoresDown(RuntimeError):
    """A store a sweep needs takes no writes right now (a submission is refused with 503)."""


def require_stores(services: Services) -> None:
    """:class:`StoresDown` naming each store that :func:`store_checks` finds taking no writes
    (an unreachable Ray is answered 503 by the submission itself)."""
    down = [name for name, check in store_checks(services).items() if not check.ok]
    if down:
        names = {"mlflow": "the MLflow tracking store", "database": "the service's database"}
        raise StoresDown(" and ".join(names[name] for name in down) + " cannot take a sweep right now "
                         "(see /readyz); nothing was recorded, retry later")
