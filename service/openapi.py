"""The service's OpenAPI 3.1 document, made acceptable to third-party tools (validators, client
generators, fuzzers): every schema under ``components/schemas`` (no ``$defs`` left that only
resolve inside their own schema), a server-sent event stream described with 3.1 keywords, every
error status with its body schema, and the shipped example specs as request body examples."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import compile_path

from service.schemas import ErrorMessage, SweepEvent, ValidationErrors

EXAMPLES_DIR = Path(str(files("sweeps") / "examples"))
COMPONENTS_REF = "#/components/schemas/"

ERROR_DESCRIPTIONS: dict[int, str] = {
    401: "missing or invalid bearer token (send `Authorization: Bearer <token>`)",
    404: "no such sweep (or no such figure of it)",
    409: "the request clashes with the sweep's state (already ended; no results yet) "
         "or with an earlier request (an Idempotency-Key reused for another spec)",
    413: "request body larger than the service accepts (DLAB_MAX_BODY_BYTES)",
    415: "the body is neither application/json nor application/yaml",
    422: "invalid request: each error names the field (`loc`) and what is wrong with it (`msg`)",
    429: "too many sweeps queued or running (DLAB_MAX_ACTIVE_SWEEPS); retry after `Retry-After` seconds",
    503: "Ray or MLflow cannot be reached right now",
}

SWEEP_LINKS: dict[str, dict[str, Any]] = {
    name: {"operationId": op, "parameters": {"sweep_id": "$response.body#/id"}, "description": text}
    for name, op, text in (("GetSweep", "get_sweep", "the sweep's status and detail"),
                           ("GetTrials", "get_trials", "its trials"),
                           ("GetReport", "get_report", "its report (409 until it has results)"),
                           ("CancelSweep", "cancel_sweep", "cancel it"))
}
"""OpenAPI links from a submission's answer to the operations on the sweep it made (what
stateful fuzzers and generated clients follow)."""


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for the given error statuses, each with its body schema."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = {"model": ValidationErrors if code == 422 else ErrorMessage,
                     "description": ERROR_DESCRIPTIONS[code]}
        if code == 429:
            out[code]["headers"] = {"Retry-After": {"description": "seconds to wait before retrying",
                                                    "schema": {"type": "integer"}}}
        if code == 401:
            out[code]["headers"] = {"WWW-Authenticate": {"description": "`Bearer`",
                                                         "schema": {"type": "string"}}}
    return out


def operation_id(route: APIRoute) -> str:
    """Operation ids are the route functions' names (``submit_sweep``, ``get_report``...)."""
    return route.name


def example_specs(directory: Path = EXAMPLES_DIR) -> dict[str, dict[str, Any]]:
    """The shipped example specs as OpenAPI examples, keyed by file stem."""
    examples = {}
    for path in sorted(directory.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        examples[path.stem] = {"summary": spec.get("description") or spec["name"], "value": spec}
    return examples


def _rewrite_refs(node: Any) -> Any:
    """``#/$defs/X`` -> ``#/components/schemas/X`` everywhere under ``node`` (``$ref`` and
    discriminator mappings)."""
    if isinstance(node, dict):
        return {key: _rewrite_refs(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(value) for value in node]
    if isinstance(node, str) and node.startswith("#/$defs/"):
        return COMPONENTS_REF + node.removeprefix("#/$defs/")
    return node


def _register(components: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    if components.setdefault(name, schema) != schema:
        raise ValueError(f"two different schemas are named {name!r} in the OpenAPI document")


def _hoist(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """Move an inline model schema (and its ``$defs``) into components; return a ``$ref`` to it."""
    if "$ref" in schema:
        return schema
    schema = dict(schema)
    for name, definition in schema.pop("$defs", {}).items():
        _register(components, name, definition)
    if "title" not in schema:
        return schema
    _register(components, schema["title"], schema)
    return {"$ref": COMPONENTS_REF + schema["title"]}


def _fix_operation(operation: dict[str, Any], components: dict[str, Any]) -> None:
    body = operation.get("requestBody", {}).get("content", {})
    for media in body.values():
        if "schema" in media:
            media["schema"] = _hoist(media["schema"], components)
    for code, response in operation.get("responses", {}).items():
        content = response.get("content", {})
        stream = content.get("text/event-stream")
        if stream is None:
            continue
        if int(code) >= 400:  # errors are JSON, whatever the route's success media type
            content.setdefault("application/json", content.pop("text/event-stream"))
        elif "itemSchema" in stream:  # OpenAPI 3.2's keyword; 3.1 tools read `schema` as each event's
            del stream["itemSchema"]
            _register(components, SweepEvent.__name__, SweepEvent.model_json_schema())
            stream["schema"] = {"$ref": COMPONENTS_REF + SweepEvent.__name__}


def _add_examples(doc: dict[str, Any]) -> None:
    submit = doc["paths"].get("/api/v1/sweeps", {}).get("post")
    if submit is None:
        return
    examples = example_specs()
    for media in submit["requestBody"]["content"].values():
        media["examples"] = examples


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The document ``/openapi.json`` serves (built once, then cached on the app)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, openapi_version=app.openapi_version,
                      description=app.description, routes=app.routes)
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for path_item in doc["paths"].values():
        for operation in path_item.values():
            _fix_operation(operation, components)
    doc = _rewrite_refs(doc)
    _add_examples(doc)
    app.openapi_schema = doc
    return doc


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the document lists for a concrete request path (HEAD wherever GET is), for
    a 405's ``Allow`` header."""
    methods: set[str] = set()
    for template, item in build_openapi(app)["paths"].items():
        if compile_path(template)[0].match(path):
            methods.update(method.upper() for method in item)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Serve :func:`build_openapi`'s document at ``/openapi.json``."""
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
