"""Settings from environment variables, with local defaults (Ray on this machine, MLflow on SQLite)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where sweeps keep their state and which Ray / MLflow they use."""

    model_config = SettingsConfigDict(env_prefix="DLAB_", extra="ignore")

    home: Path = Field(Path(".dlab"), description="project data dir: MLflow store, Ray results, reports")
    mlflow_tracking_uri: str | None = Field(
        None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "DLAB_MLFLOW_TRACKING_URI"),
        description="MLflow tracking URI (default: SQLite file under home)",
    )
    ray_address: str | None = Field(
        None, validation_alias=AliasChoices("RAY_ADDRESS", "DLAB_RAY_ADDRESS"),
        description="Ray cluster address (default: start a local Ray)",
    )
    ray_connect_wait_s: float = Field(
        30.0, gt=0, description="seconds to wait for the Ray cluster at ray_address to answer (a head "
                                "still starting) before the sweep is refused; Ray itself would wait forever")

    @cached_property
    def root(self) -> Path:
        path = self.home.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def tracking_server(self) -> bool:
        """True when MLflow is a tracking server (it then stores the artifacts itself)."""
        return self.tracking_uri.startswith(("http://", "https://"))

    @property
    def artifact_root(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def ray_results(self) -> Path:
        return self.root / "ray_results"

    @property
    def reports(self) -> Path:
        return self.root / "reports"
