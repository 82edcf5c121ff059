"""Serving the API with uvicorn (``python -m service`` and ``dlab serve``)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from service.app import create_app
from service.http_limits import ConnectionLimits, bounded_protocol
from service.settings import ServiceSettings


def server_config(settings: ServiceSettings, app: FastAPI | None = None, **overrides) -> uvicorn.Config:
    """uvicorn's configuration for the API: httptools' parser with this service's connection
    limits (header size and count, header and body timeouts; :mod:`service.http_limits`), at most
    ``max_connections`` at once, uvloop's event loop."""
    limits = ConnectionLimits(max_header_bytes=settings.max_header_bytes, max_headers=settings.max_headers,
                              header_timeout_s=settings.header_timeout_s,
                              body_timeout_s=settings.body_timeout_s)
    options = {"host": settings.host, "port": settings.port, "log_level": "info",
               "http": bounded_protocol(limits), "limit_concurrency": settings.max_connections,
               "timeout_keep_alive": 5, **overrides}
    return uvicorn.Config(app or create_app(settings), **options)


def serve(settings: ServiceSettings | None = None) -> None:
    """Serve the API on the settings' host and port until interrupted (starting the embedded Ray
    head if no cluster is configured). One process: the background reconciler and the rendered
    reads it keeps current live in it (more workers would each poll Ray and MLflow and write the
    same records)."""
    settings = settings or ServiceSettings()
    uvicorn.Server(server_config(settings)).run()
