"""Declarative sweeps: a pydantic spec, run by Ray Tune, tracked in MLflow, summarised in reports."""

import os

# Nothing of the project's calls home: MLflow's usage telemetry (which also writes an id under
# ~/.config/mlflow) is off unless the environment turns it on; Ray's usage stats are off where
# Ray is started (sweeps.runner, service.cluster).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
