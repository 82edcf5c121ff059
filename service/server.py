"""Serving the API with uvicorn (``python -m service`` and ``dlab serve``)."""

from __future__ import annotations

import uvicorn

from service.app import create_app
from service.settings import ServiceSettings


def serve(settings: ServiceSettings | None = None) -> None:
    """Serve the API on the settings' host and port until interrupted (starting the embedded Ray
    head if no cluster is configured)."""
    settings = settings or ServiceSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
