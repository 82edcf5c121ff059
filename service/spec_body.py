"""The request body of a submission: a sweep spec as JSON or YAML data, parsed safely (no YAML
tags or aliases, no code, no pickles) and validated into :class:`SweepSpec`."""

from __future__ import annotations

import json
import math
from typing import Any

import yaml
from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from sweeps.errors import error_location
from sweeps.spec import SweepSpec

JSON_TYPES = ("application/json", "")
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
MAX_DEPTH = 32
"""Deepest nesting of objects/lists a body may have (a spec needs 4)."""
MAX_INT_DIGITS = 19
"""Longest integer literal accepted (a spec's integers fit in 64 bits)."""
MAX_INT = 2**63 - 1


class _PlainYamlLoader(yaml.SafeLoader):
    """Safe YAML without aliases (so a small body cannot expand into a huge document)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "YAML aliases are not accepted", event.start_mark)
        return super().compose_node(parent, index)


def _error(msg: str, loc: tuple = ("body",), kind: str = "value_error") -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": loc, "msg": msg}])


class _BodyTooComplex(ValueError):
    """Nesting or a number beyond what a spec can need."""


def _bounded_int(text: str) -> int:
    digits = text.lstrip("-+")
    if len(digits) > MAX_INT_DIGITS:
        raise _BodyTooComplex(f"an integer of {len(digits)} digits; at most {MAX_INT_DIGITS} are accepted")
    return int(text)


def _no_constant(name: str) -> float:
    raise _BodyTooComplex(f"{name} is not a number a spec accepts")


def _nesting_depth(raw: bytes) -> int:
    """The deepest bracket nesting of a JSON/YAML flow text, ignoring quoted strings (a cheap
    scan before any recursive parser runs)."""
    depth = deepest = 0
    quote = None
    escaped = False
    for char in raw.decode("utf-8", errors="replace"):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _check_text(text: str, loc: tuple) -> None:
    """Refuse text that no store or answer can hold: a lone surrogate (a JSON ``\\udc80`` escape
    is not Unicode text, so it cannot be encoded as UTF-8) or a NUL character (PostgreSQL's text
    and JSON types refuse it)."""
    where = error_location(loc, "body")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise _error(f"{where}: the text holds a lone surrogate ({text[err.start]!r}), which is not "
                     "valid Unicode; send the character itself or a valid surrogate pair",
                     ("body", *loc)) from None
    if "\x00" in text:
        raise _error(f"{where}: the text holds a NUL character, which is not accepted", ("body", *loc))


def _check_shape(data: Any, loc: tuple = (), depth: int = 0) -> None:
    """Refuse data nested deeper than :data:`MAX_DEPTH` or holding an integer beyond 64 bits or
    a non-finite float (block-style YAML nests by indentation, so the scan cannot see it)."""
    if depth > MAX_DEPTH:
        raise _error(f"the body nests deeper than {MAX_DEPTH} levels", ("body", *loc[:MAX_DEPTH]))
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):
                raise _error(f"{key!r}: object keys must be strings", ("body", *loc))
            _check_text(key, loc)
            _check_shape(value, (*loc, key), depth + 1)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _check_shape(value, (*loc, index), depth + 1)
    elif isinstance(data, str):
        _check_text(data, loc)
    elif isinstance(data, bool) or data is None:
        return
    elif isinstance(data, int):
        if abs(data) > MAX_INT:
            raise _error(f"{error_location(loc, 'body')}: integer beyond 64 bits", ("body", *loc))
    elif isinstance(data, float):
        if not math.isfinite(data):
            raise _error(f"{error_location(loc, 'body')}: numbers must be finite", ("body", *loc))
    else:  # dates and other YAML scalars a spec never holds
        raise _error(f"{error_location(loc, 'body')}: unsupported value of type {type(data).__name__}",
                     ("body", *loc))


def parse_body(raw: bytes, content_type: str) -> Any:
    """The body as data, by content type; 415 for other types, 422 for unparsable text or for
    nesting, integers or numbers beyond what a spec can hold."""
    media = content_type.split(";")[0].strip().lower()
    is_yaml = media in YAML_TYPES
    if not is_yaml and not (media in JSON_TYPES or media.endswith("+json")):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            f"send the spec as application/json or application/yaml, not {media!r}")
    if _nesting_depth(raw) > MAX_DEPTH:
        raise _error(f"the body nests deeper than {MAX_DEPTH} levels", kind="parse_error")
    try:
        if is_yaml:
            data = yaml.load(raw.decode("utf-8"), Loader=_PlainYamlLoader)
        else:
            data = json.loads(raw, parse_int=_bounded_int, parse_constant=_no_constant)
    except _BodyTooComplex as err:
        raise _error(f"the body is not accepted: {err}", kind="parse_error") from None
    except (json.JSONDecodeError, UnicodeDecodeError, yaml.YAMLError) as err:
        kind = "YAML" if is_yaml else "JSON"
        raise _error(f"the body is not valid {kind}: {_one_line(err)}", kind="parse_error") from None
    except (RecursionError, ValueError, OverflowError) as err:  # deep block YAML, huge numbers
        raise _error(f"the body is not accepted: {_one_line(err)}", kind="parse_error") from None
    _check_shape(data)
    return data


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:300]


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
    except (TypeError, ValueError, ArithmeticError, RecursionError) as err:
        # a validator tripped over a value of an unexpected shape: still the client's input
        raise _error(f"spec: {_one_line(err)}") from None


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
