"""The one formatter of pydantic validation errors: ``field.path: message`` per problem."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError


def error_location(loc: Sequence[str | int], default: str = "spec") -> str:
    """A pydantic error location as a dotted field path."""
    return ".".join(str(part) for part in loc) or default


def field_messages(error: ValidationError, default: str = "spec") -> list[str]:
    """One ``field.path: message`` line per problem."""
    return [f"{error_location(item['loc'], default)}: {item['msg']}" for item in error.errors()]
