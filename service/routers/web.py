"""The web page at ``/`` (static files from :mod:`service.web`, assets under ``/ui``) and Swagger
UI at ``/docs`` with its assets served from the installed ``fastapi-offline`` package, so neither
loads anything from another host. No token is needed for these files: the page asks for one and
sends it as the bearer header on its API calls."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(str(files("service") / "web"))
SWAGGER_DIR = Path(str(files("fastapi_offline") / "static"))
"""Swagger UI 5's bundle and stylesheet as ``fastapi-offline`` ships them."""
UI_PREFIX = "/ui"
SWAGGER_PREFIX = f"{UI_PREFIX}/swagger"

router = APIRouter(include_in_schema=False)
router.mount(SWAGGER_PREFIX, StaticFiles(directory=SWAGGER_DIR), name="swagger-assets")
router.mount(UI_PREFIX, StaticFiles(directory=WEB_DIR), name="ui")


@router.get("/")
async def page() -> FileResponse:
    """The single-page app: sign in, sweeps, a sweep's live progress, submit."""
    return FileResponse(WEB_DIR / "index.html", media_type="text/html")


@router.get("/docs")
async def swagger_ui() -> FileResponse:
    """Swagger UI for ``/openapi.json`` (its start-up script is a file, as the CSP asks)."""
    return FileResponse(WEB_DIR / "docs.html", media_type="text/html")
