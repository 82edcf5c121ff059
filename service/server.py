"""Serving the API with uvicorn (``python -m service`` and ``dlab serve``)."""

from __future__ import annotations

import uvicorn

from service.app import create_app
from service.settings import ServiceSettings


def serve(settings: ServiceSettings | None = None) -> None:
    """Serve the API on the settings' host and port until interrupted (starting the embedded Ray
    head if no cluster is configured). One process: the background reconciler and the rendered
    reads it keeps current live in it (more workers would each poll Ray and MLflow and write the
    same records). uvicorn takes httptools and uvloop, both dependencies, for its HTTP parser and
    event loop."""
    settings = settings or ServiceSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
