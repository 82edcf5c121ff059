"""Service settings from ``DLAB_*`` environment variables (pydantic-settings), on top of the
sweep settings (``DLAB_HOME``, ``MLFLOW_TRACKING_URI``, ``RAY_ADDRESS``)."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from sweeps.settings import Settings

TOKEN_FILE = "api-token"


class ServiceSettings(Settings):
    """Everything the API process reads from its environment."""

    database_url: str | None = Field(
        None, description="SQLAlchemy URL for sweep records (default: SQLite file under home)")
    api_tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated bearer tokens; empty: a local token is generated under home")
    ray_dashboard_url: str | None = Field(
        None, description="Ray Jobs endpoint of the cluster (default: the embedded local head's)")
    driver_python: str = Field(sys.executable, description="python that runs sweep drivers on the head")
    driver_home: str | None = Field(
        None, description="DLAB_HOME for drivers on the head (default: this service's home)")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=100_000,
                                description="largest request body (the spec goes on the driver command line)")
    max_header_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024,
                                  description="largest request line plus headers (431 beyond)")
    max_headers: int = Field(100, ge=10, le=10_000, description="most request headers (431 beyond)")
    header_timeout_s: float = Field(10.0, gt=0, le=600,
                                    description="seconds a request's headers may take to arrive (408)")
    body_timeout_s: float = Field(30.0, gt=0, le=3600,
                                  description="seconds a request's body may take after its headers (408)")
    max_connections: int = Field(256, ge=8, le=100_000,
                                 description="open connections and running requests at once (503 beyond)")
    max_trials_per_sweep: int = Field(512, ge=1)
    max_active_sweeps: int = Field(4, ge=1, description="queued + running sweeps at once")
    max_running_sweeps: int | None = Field(
        None, ge=1, description="sweeps whose drivers run at once; later ones wait queued and start "
                                "in submission order as running ones end (one sweep at a time keeps "
                                "each sweep's cores its own); unset: every sweep starts at once")
    poll_interval_s: float = Field(1.0, gt=0, description="how often running sweeps are refreshed")
    local_ray_cpus: int | None = Field(None, ge=1, description="CPUs of the embedded Ray head")
    max_driver_restarts: int = Field(
        2, ge=0, le=20, description="restarts of a sweep driver that died, from Tune's saved state")
    max_cluster_resumes: int = Field(
        50, ge=0, le=1000, description="resumes of a sweep whose driver a new Ray cluster no longer "
                                       "knows (the machine or the head stopped), from Tune's saved state")
    max_trial_cost: float = Field(
        1e16, gt=0, description="largest estimated cost of one trial (parameters x samples seen, "
                                "or parameters x env steps; see sweeps.cost)")
    max_sweep_cost: float = Field(
        1e17, gt=0, description="largest estimated cost of a whole sweep (sum over its trials)")

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return [token.strip() for token in value.split(",") if token.strip()]
        return value

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.root / 'service.db'}"

    @property
    def token_path(self) -> Path:
        return self.root / TOKEN_FILE

    @property
    def embedded_ray(self) -> bool:
        """True when the service runs its own local Ray head (no cluster configured)."""
        return not self.ray_address and not self.ray_dashboard_url

    def tokens(self) -> list[str]:
        """Accepted bearer tokens: the configured ones, else a local token (made once, mode 600)."""
        if self.api_tokens:
            return self.api_tokens
        path = self.token_path
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32))
        return [path.read_text().strip()]
