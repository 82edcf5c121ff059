"""URLs of a sweep: its API routes and, where MLflow is a tracking server, its MLflow UI pages
(in the UI's runs view, ``?workflowType=machine_learning``)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from service.schemas import Links
from service.settings import ServiceSettings
from sweeps.tracking import mlflow_ui_url

API_PREFIX = "/api/v1"


def public_tracking_uri(settings: ServiceSettings) -> str | None:
    """The MLflow tracking server's URI without credentials, for clients; ``None`` when the
    service keeps a local store (its file path is the server's business)."""
    if not settings.tracking_server:
        return None
    parts = urlsplit(settings.tracking_uri)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def links(sweep_id: str, settings: ServiceSettings, experiment_id: str | None = None,
          run_id: str | None = None) -> Links:
    """The sweep's API routes, and its MLflow UI pages when MLflow is a tracking server."""
    base = f"{API_PREFIX}/sweeps/{sweep_id}"
    ui = public_tracking_uri(settings)
    return Links(self=base, trials=f"{base}/trials", events=f"{base}/events", report=f"{base}/report",
                 cancel=f"{base}/cancel",
                 mlflow_experiment=mlflow_ui_url(ui, experiment_id) if ui and experiment_id else None,
                 mlflow_run=mlflow_ui_url(ui, experiment_id, run_id) if ui and experiment_id and run_id
                 else None)
