"""The request body of a submission: a sweep spec as JSON or YAML data, parsed safely (no YAML
tags or aliases, no code, no pickles) and validated into :class:`SweepSpec`."""

from __future__ import annotations

import json
from typing import Any

import yaml
from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from sweeps.errors import error_location
from sweeps.spec import SweepSpec

JSON_TYPES = ("application/json", "")
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


class _PlainYamlLoader(yaml.SafeLoader):
    """Safe YAML without aliases (so a small body cannot expand into a huge document)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "YAML aliases are not accepted", event.start_mark)
        return super().compose_node(parent, index)


def _error(msg: str, loc: tuple = ("body",), kind: str = "value_error") -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": loc, "msg": msg}])


def parse_body(raw: bytes, content_type: str) -> Any:
    """The body as data, by content type; 415 for other types, 422 for unparsable text."""
    media = content_type.split(";")[0].strip().lower()
    try:
        if media in YAML_TYPES:
            return yaml.load(raw.decode("utf-8"), Loader=_PlainYamlLoader)
        if media in JSON_TYPES or media.endswith("+json"):
            return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, yaml.YAMLError) as err:
        kind = "YAML" if media in YAML_TYPES else "JSON"
        raise _error(f"the body is not valid {kind}: {err}", kind="parse_error") from None
    raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                        f"send the spec as application/json or application/yaml, not {media!r}")


def validate_spec(data: Any) -> SweepSpec:
    """A :class:`SweepSpec`, or a 422 whose messages name the offending fields."""
    if not isinstance(data, dict):
        raise _error(f"a sweep spec must be a JSON/YAML object, got {type(data).__name__}")
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as err:
        errors = err.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"]),
              "msg": f"{error_location(e['loc'])}: {e['msg']}"} for e in errors]
        ) from None


async def spec_from_request(request: Request) -> SweepSpec:
    return validate_spec(parse_body(await request.body(), request.headers.get("content-type", "")))


REQUEST_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "a sweep spec (see sweeps/examples/*.yaml)",
        "content": {"application/json": {"schema": SweepSpec.model_json_schema()},
                    "application/yaml": {"schema": SweepSpec.model_json_schema()}},
    }
}
