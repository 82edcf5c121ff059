"""MLflow writes that outlast a short store outage: a client whose calls are retried with
backoff, for a bounded time, when the store is temporarily unavailable (a locked or unwritable
SQLite file, a tracking server that does not answer), then fail with the real cause in one line."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

log = logging.getLogger("dlab.tracking")
RETRY_ENV = "DLAB_TRACKING_RETRY_S"
DEFAULT_RETRY_S = 180.0
FIRST_WAIT_S, MAX_WAIT_S = 0.5, 10.0


class TrackingUnavailable(RuntimeError):
    """The MLflow store stayed unavailable for the whole retry budget."""


def root_cause(err: BaseException) -> str:
    """The innermost cause of ``err`` as ``Type: first line`` (e.g. ``sqlite3.OperationalError:
    disk I/O error``), not a wrapper's boilerplate."""
    seen, inner = set(), err
    while id(inner) not in seen:
        seen.add(id(inner))
        nested = inner.__cause__ or inner.__context__ or getattr(inner, "orig", None)
        if not isinstance(nested, BaseException):
            break
        inner = nested
    kind = type(inner)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    return f"{name}: {lines[0]}" if lines else name


def transient(err: BaseException) -> bool:
    """True for a store outage worth waiting out, not for a request the store refuses."""
    if isinstance(err, MlflowException):
        return err.error_code in ("TEMPORARILY_UNAVAILABLE", "RESOURCE_EXHAUSTED")
    return isinstance(err, OSError)


def retry_budget_s() -> float:
    return float(os.environ.get(RETRY_ENV, DEFAULT_RETRY_S))


class RetryingMlflowClient:
    """An :class:`MlflowClient` whose every call is retried while :func:`transient` errors last,
    with exponential backoff, for at most ``budget_s`` seconds (``DLAB_TRACKING_RETRY_S``)."""

    def __init__(self, tracking_uri: str, budget_s: float | None = None) -> None:
        self._client = MlflowClient(tracking_uri)
        self._budget_s = retry_budget_s() if budget_s is None else budget_s

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def call(*args, **kwargs):
            deadline, wait = time.monotonic() + self._budget_s, FIRST_WAIT_S
            while True:
                try:
                    return method(*args, **kwargs)
                except Exception as err:
                    if not transient(err):
                        raise
                    if time.monotonic() + wait > deadline:
                        raise TrackingUnavailable(
                            f"the MLflow tracking store stayed unavailable for {self._budget_s:.0f} s "
                            f"({name}): {root_cause(err)}") from err
                    log.warning("MLflow %s failed (%s); retrying in %.1f s", name, root_cause(err), wait)
                    time.sleep(wait)
                    wait = min(wait * 2, MAX_WAIT_S)

        return call
