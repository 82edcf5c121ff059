"""A small httpx client for the dendrite-lab REST API (what ``dlab submit|list|status|watch|
cancel|report`` use)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field, TypeAdapter, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.settings import TOKEN_FILE

YAML_SUFFIXES = (".yaml", ".yml")


class ClientSettings(BaseSettings):
    """Where the service is and the token to use: ``DLAB_URL``, ``DLAB_API_TOKEN`` (else the
    local token the embedded service wrote under ``DLAB_HOME``)."""

    model_config = SettingsConfigDict(env_prefix="DLAB_", extra="ignore")

    url: str = "http://127.0.0.1:8000"
    api_token: str | None = None
    timeout_s: float = Field(60.0, gt=0, description="seconds to wait for an answer (DLAB_TIMEOUT_S)")
    home: Path = Field(Path(".dlab"))

    def token(self) -> str | None:
        if self.api_token:
            return self.api_token
        path = self.home.expanduser() / TOKEN_FILE
        return path.read_text().strip() if path.exists() else None


class ClientError(RuntimeError):
    """The client could not get a usable answer from the service; ``str()`` is one line naming
    the URL."""


class ServiceUnreachable(ClientError):
    """Nothing answers at the URL (connection refused, unknown host, network down)."""


class ServiceTimeout(ClientError):
    """The service did not answer in time."""


class BadAnswer(ClientError):
    """The answer is not the API's JSON (another server at that URL, a proxy's error page)."""


class ApiError(ClientError):
    """A non-2xx answer from the service, with its status code and ``detail``."""

    def __init__(self, status_code: int, detail: Any, url: str = "") -> None:
        self.status_code = status_code
        self.detail = detail
        self.url = url
        where = f" from {url}" if url else ""
        super().__init__(f"HTTP {status_code}{where}: {detail}")


class TokenRefused(ApiError):
    """401/403: no token, or one the service does not accept."""


@dataclass(frozen=True)
class Operation:
    """One documented API operation: its ``operationId``, method, path template and the model
    its success body parses into (``module:Name``, imported on first use)."""

    operation_id: str
    method: str
    path: str
    model: str | None
    many: bool = False
    status: int | None = None
    """the success status whose body ``model`` describes (default: the operation's first 2xx)"""

    def parse(self, data: Any) -> Any:
        """Validate ``data`` against the response model (raises pydantic's ValidationError)."""
        if self.model is None:
            return data
        module, name = self.model.split(":")
        model = getattr(importlib.import_module(module), name)
        TypeAdapter(list[model] if self.many else model).validate_python(data)
        return data


OPERATIONS: dict[str, Operation] = {
    "submit": Operation("submit_sweep", "POST", "/api/v1/sweeps", "service.schemas:SweepCreated"),
    "dry_run": Operation("submit_sweep", "POST", "/api/v1/sweeps", "service.schemas:DryRun", status=200),
    "list": Operation("list_sweeps", "GET", "/api/v1/sweeps", "service.schemas:SweepPage"),
    "status": Operation("get_sweep", "GET", "/api/v1/sweeps/{sweep_id}", "service.schemas:SweepDetail"),
    "trials": Operation("get_trials", "GET", "/api/v1/sweeps/{sweep_id}/trials", "service.schemas:TrialInfo",
                        many=True),
    "events": Operation("watch_sweep", "GET", "/api/v1/sweeps/{sweep_id}/events", None),
    "report": Operation("get_report", "GET", "/api/v1/sweeps/{sweep_id}/report",
                        "service.routers.sweeps:ReportOut"),
    "figure": Operation("get_figure", "GET", "/api/v1/sweeps/{sweep_id}/report/{figure}.png", None),
    "report_file": Operation("get_report_file", "GET", "/api/v1/sweeps/{sweep_id}/report/files/{name}", None),
    "cancel": Operation("cancel_sweep", "POST", "/api/v1/sweeps/{sweep_id}/cancel",
                        "service.schemas:SweepDetail"),
    "healthz": Operation("healthz", "GET", "/healthz", None),
    "readyz": Operation("readyz", "GET", "/readyz", "service.schemas:Readiness"),
}
"""The client's methods and the documented operations they call (a test checks both agree)."""


class DlabClient:
    """Calls the service's routes with a bearer token. Every failure is a :class:`ClientError`
    whose message is one line naming the URL."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout_s: float | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        settings = ClientSettings()
        self.url = (url or settings.url).rstrip("/")
        self.timeout_s = timeout_s or settings.timeout_s
        token = token or settings.token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout_s,
                                 transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> DlabClient:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _send(self, method: str, path: str, stream: bool = False, **kwargs) -> httpx.Response:
        """The response, or a :class:`ClientError` naming the URL for transport failures."""
        where = f"{self.url}{path}"
        try:
            request = self.http.build_request(method, path, **kwargs)
            return self.http.send(request, stream=stream)
        except httpx.TimeoutException:
            raise ServiceTimeout(f"the service at {where} did not answer within {self.timeout_s:g} s "
                                 "(raise it with --timeout or DLAB_TIMEOUT_S)") from None
        except httpx.TransportError as err:
            reason = str(err).strip() or type(err).__name__
            raise ServiceUnreachable(f"cannot reach the service at {where} ({reason}); start one with "
                                     "`dlab serve` or point --url / DLAB_URL at one") from None

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_error:
            where = str(response.request.url)
            try:
                detail = response.json()["detail"]
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                raise self._bad_answer(response, "an error without the API's JSON body") from None
            error = TokenRefused if response.status_code in (401, 403) else ApiError
            raise error(response.status_code, detail, where)
        return response

    @staticmethod
    def _bad_answer(response: httpx.Response, what: str) -> BadAnswer:
        media = response.headers.get("content-type", "no content type").split(";")[0]
        return BadAnswer(f"{response.request.url} answered HTTP {response.status_code} with {what} "
                         f"({media}); is --url / DLAB_URL a dendrite-lab service?")

    def _call(self, name: str, path_args: dict[str, str] | None = None, **kwargs) -> Any:
        """Call the operation behind client method ``name`` and parse its JSON answer."""
        operation = OPERATIONS[name]
        path = operation.path.format(**(path_args or {}))
        response = self._check(self._send(operation.method, path, **kwargs))
        try:
            return operation.parse(response.json())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self._bad_answer(response, "a body that is not JSON") from None
        except ValidationError:
            raise self._bad_answer(response, f"JSON that is not a {operation.model}") from None

    def submit(self, spec: dict[str, Any] | str | Path, idempotency_key: str | None = None) -> dict:
        """Submit a spec given as a dict or as a YAML/JSON file."""
        body = self._spec_body(spec)
        if idempotency_key:
            body["headers"] = {**body.get("headers", {}), "Idempotency-Key": idempotency_key}
        return self._call("submit", **body)

    @staticmethod
    def _spec_body(spec: dict[str, Any] | str | Path) -> dict[str, Any]:
        """httpx arguments sending ``spec``: JSON for a dict, a file's bytes with its media type."""
        if isinstance(spec, dict):
            return {"json": spec}
        path = Path(spec)
        media = "application/yaml" if path.suffix in YAML_SUFFIXES else "application/json"
        return {"content": path.read_bytes(), "headers": {"Content-Type": media}}

    def dry_run(self, spec: dict[str, Any] | str | Path) -> dict:
        """Check a spec without submitting it: its resolved trials and cost against the budgets."""
        return self._call("dry_run", params={"dry_run": "true"}, **self._spec_body(spec))

    def list(self, status: str | None = None, offset: int = 0, limit: int = 50) -> dict:
        params = {"offset": offset, "limit": limit, **({"status": status} if status else {})}
        return self._call("list", params=params)

    def status(self, sweep_id: str) -> dict:
        return self._call("status", {"sweep_id": sweep_id})

    def trials(self, sweep_id: str) -> list[dict]:
        return self._call("trials", {"sweep_id": sweep_id})

    def cancel(self, sweep_id: str) -> dict:
        return self._call("cancel", {"sweep_id": sweep_id})

    def report(self, sweep_id: str) -> dict:
        return self._call("report", {"sweep_id": sweep_id})

    def readyz(self) -> dict:
        """The readiness checks (``ready`` is False with HTTP 503 when one fails)."""
        response = self._send("GET", OPERATIONS["readyz"].path)
        if response.status_code not in (200, 503):
            self._check(response)
        try:
            return OPERATIONS["readyz"].parse(response.json())
        except (json.JSONDecodeError, UnicodeDecodeError, ValidationError):
            raise self._bad_answer(response, "a body that is not the readiness JSON") from None

    def healthz(self) -> dict:
        return self._call("healthz")

    def figure(self, url_path: str) -> bytes:
        """A figure by the URL path the report lists (``figure_urls``)."""
        return self._check(self._send("GET", url_path)).content

    def report_file(self, sweep_id: str, name: str) -> bytes:
        """One file of a sweep's report by its name (the report's ``file_urls`` list them)."""
        path = OPERATIONS["report_file"].path.format(sweep_id=sweep_id, name=name)
        return self._check(self._send("GET", path)).content

    def events(self, sweep_id: str) -> Iterator[tuple[str, Any]]:
        """(event, data) pairs from the sweep's server-sent event stream, until it ends."""
        path = OPERATIONS["events"].path.format(sweep_id=sweep_id)
        timeout = httpx.Timeout(self.timeout_s, read=None)  # the stream may be quiet for long
        response = self._send("GET", path, stream=True, timeout=timeout)
        try:
            if response.is_error:
                response.read()
                self._check(response)
            event, data = "message", []
            for line in response.iter_lines():
                if not line:
                    if data:
                        try:
                            yield event, json.loads("\n".join(data))
                        except json.JSONDecodeError:
                            raise self._bad_answer(response, "an event stream without JSON data") from None
                    event, data = "message", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
        except httpx.TransportError as err:
            raise ServiceUnreachable(f"lost the event stream of {self.url}{path} ({err})") from None
        finally:
            response.close()
