"""``dlab demo``: the embedded default end to end, through the REST API."""

from __future__ import annotations

import argparse
from pathlib import Path

import sweeps

DEMO_SPEC = Path(sweeps.__file__).resolve().parent / "examples" / "demo.yaml"


def run_demo(_args: argparse.Namespace) -> int:
    """Start the local stack (Ray head, MLflow on SQLite, the API), submit the demo sweep, follow
    it live, print the report, stop the stack."""
    from dlab.service_commands import console, print_report, watch_sweep
    from service.client import DlabClient
    from service.local_stack import LocalStack
    from sweeps.settings import Settings
    from sweeps.tracking import mlflow_ui_url

    settings = Settings()
    console.print("starting the embedded stack (Ray head, MLflow on SQLite, API) ...")
    with LocalStack(settings.root) as stack:
        token = stack.api.token()
        console.print(f"API on {stack.api.url} (docs {stack.api.url}/docs); local token: {token}")
        with DlabClient(stack.api.url, token) as client:
            created = client.submit(DEMO_SPEC)
            console.print(f"submitted {DEMO_SPEC.name} as sweep {created['id']}")
            code = watch_sweep(client, created["id"])
            if code == 0:  # figures saved under DLAB_HOME: they outlive the API stopped below
                print_report(client, created["id"], settings.root / "figures" / created["id"])
            experiment_id = client.status(created["id"]).get("mlflow_experiment_id")
        console.print("stopping the embedded stack ...")
    page = mlflow_ui_url("http://127.0.0.1:5000", experiment_id) if experiment_id else "http://127.0.0.1:5000"
    console.print(f"\nMLflow UI on this store: .venv/bin/mlflow ui --backend-store-uri "
                  f"{settings.tracking_uri} --port 5000   (then open {page})")
    console.print("The same sweep on the web page: .venv/bin/dlab serve, then open http://127.0.0.1:8000/ "
                  "and sign in with the token above")
    return code
