"""URLs of a sweep: its API routes and, where MLflow is a tracking server, its MLflow UI pages
(in the UI's runs view, ``?workflowType=machine_learning``)."""

from __future__ import annotations

from service.schemas import Links
from service.settings import ServiceSettings
from sweeps.tracking import mlflow_ui_url

API_PREFIX = "/api/v1"


def links(sweep_id: str, settings: ServiceSettings, experiment_id: str | None = None,
          run_id: str | None = None) -> Links:
    """The sweep's API routes, and its MLflow UI pages when MLflow is a tracking server."""
    base = f"{API_PREFIX}/sweeps/{sweep_id}"
    ui = settings.tracking_uri.rstrip("/") if settings.tracking_server else None
    return Links(self=base, trials=f"{base}/trials", events=f"{base}/events", report=f"{base}/report",
                 cancel=f"{base}/cancel",
                 mlflow_experiment=mlflow_ui_url(ui, experiment_id) if ui and experiment_id else None,
                 mlflow_run=mlflow_ui_url(ui, experiment_id, run_id) if ui and experiment_id and run_id
                 else None)
