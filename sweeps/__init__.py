"""Declarative sweeps: a pydantic spec, run by Ray Tune, tracked in MLflow, summarised in reports."""
