"""The service's domain errors, each mapped to one HTTP status in :mod:`service.app`."""

from __future__ import annotations


class SweepNotFound(LookupError):
    """No sweep (or no such figure of it): HTTP 404."""


class SweepConflict(RuntimeError):
    """The request clashes with the sweep's state or an earlier request: HTTP 409."""


class LimitExceeded(RuntimeError):
    """A configured limit refuses the request: HTTP 429."""


class SpecRejected(ValueError):
    """The spec is valid but this service will not run it: HTTP 422, FastAPI's error shape."""

    def __init__(self, errors: list[dict]) -> None:
        super().__init__("; ".join(e["msg"] for e in errors))
        self.errors = errors
