"""A small httpx client for the dendrite-lab REST API (what ``dlab submit|list|status|watch|
cancel|report`` use)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.settings import TOKEN_FILE

YAML_SUFFIXES = (".yaml", ".yml")


class ClientSettings(BaseSettings):
    """Where the service is and the token to use: ``DLAB_URL``, ``DLAB_API_TOKEN`` (else the
    local token the embedded service wrote under ``DLAB_HOME``)."""

    model_config = SettingsConfigDict(env_prefix="DLAB_", extra="ignore")

    url: str = "http://127.0.0.1:8000"
    api_token: str | None = None
    home: Path = Field(Path(".dlab"))

    def token(self) -> str | None:
        if self.api_token:
            return self.api_token
        path = self.home.expanduser() / TOKEN_FILE
        return path.read_text().strip() if path.exists() else None


class ApiError(RuntimeError):
    """A non-2xx answer from the service, with its status code and ``detail``."""

    def __init__(self, status_code: int, detail: Any) -> None:
        self.status_code = status_code
        self.detail = detail
        super().__init__(f"HTTP {status_code}: {detail}")


class DlabClient:
    """Calls the service's ``/api/v1`` routes with a bearer token."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout_s: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        settings = ClientSettings()
        self.url = (url or settings.url).rstrip("/")
        token = token or settings.token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> DlabClient:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_error:
            try:
                detail = response.json().get("detail", response.text)
            except (json.JSONDecodeError, AttributeError):
                detail = response.text
            raise ApiError(response.status_code, detail)
        return response

    def _json(self, method: str, path: str, **kwargs) -> Any:
        return self._check(self.http.request(method, f"/api/v1{path}", **kwargs)).json()

    def submit(self, spec: dict[str, Any] | str | Path, idempotency_key: str | None = None) -> dict:
        """Submit a spec given as a dict or as a YAML/JSON file."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if isinstance(spec, dict):
            return self._json("POST", "/sweeps", json=spec, headers=headers)
        path = Path(spec)
        media = "application/yaml" if path.suffix in YAML_SUFFIXES else "application/json"
        return self._json("POST", "/sweeps", content=path.read_bytes(),
                          headers={**headers, "Content-Type": media})

    def list(self, status: str | None = None, offset: int = 0, limit: int = 50) -> dict:
        params = {"offset": offset, "limit": limit, **({"status": status} if status else {})}
        return self._json("GET", "/sweeps", params=params)

    def status(self, sweep_id: str) -> dict:
        return self._json("GET", f"/sweeps/{sweep_id}")

    def trials(self, sweep_id: str) -> list[dict]:
        return self._json("GET", f"/sweeps/{sweep_id}/trials")

    def cancel(self, sweep_id: str) -> dict:
        return self._json("POST", f"/sweeps/{sweep_id}/cancel")

    def report(self, sweep_id: str) -> dict:
        return self._json("GET", f"/sweeps/{sweep_id}/report")

    def figure(self, url_path: str) -> bytes:
        return self._check(self.http.get(url_path)).content

    def events(self, sweep_id: str) -> Iterator[tuple[str, Any]]:
        """(event, data) pairs from the sweep's server-sent event stream, until it ends."""
        with self.http.stream("GET", f"/api/v1/sweeps/{sweep_id}/events", timeout=None) as response:
            if response.is_error:
                response.read()
                self._check(response)
            event, data = "message", []
            for line in response.iter_lines():
                if not line:
                    if data:
                        yield event, json.loads("\n".join(data))
                    event, data = "message", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
