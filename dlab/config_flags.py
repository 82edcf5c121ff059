"""argparse flags built from a pydantic config model, so each trial command and its config share one
schema."""

from __future__ import annotations

import argparse
import json
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from sweeps.errors import field_messages


def _scalar_type(annotation: Any) -> tuple[Any, bool]:
    """The element type of a field annotation and whether it is a list."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _scalar_type(args[0])
    if origin is list:
        return _scalar_type(typing.get_args(annotation)[0])[0], True
    if origin is typing.Literal:
        return str, False
    if origin is typing.Annotated:
        return _scalar_type(typing.get_args(annotation)[0])
    return annotation, False


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple):
        return " ".join(_shown(v) for v in value)
    return str(getattr(value, "value", value))


def field_help(name: str, field: FieldInfo) -> str:
    """A flag's help: the field's description (units included there) and its default, once:
    ``(required)`` without one, nothing added where the description already states it."""
    text = field.description or name.replace("_", " ")
    if field.is_required():
        return f"{text} (required)"
    if "default" in text.lower():
        return text
    return f"{text} (default: {_shown(field.get_default(call_default_factory=True))})"


def add_model_arguments(parser: argparse.ArgumentParser, model: type[BaseModel],
                        aliases: dict[str, list[str]] | None = None) -> None:
    """Add one ``--field-name`` flag (plus any ``aliases``) per model field; unset flags keep the
    model's defaults."""
    for name, field in model.model_fields.items():
        flags = ["--" + name.replace("_", "-"), *(aliases or {}).get(name, [])]
        kind, is_list = _scalar_type(field.annotation)
        help_text = field_help(name, field)
        if kind is bool:
            parser.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
            continue
        choices = _literal_choices(field.annotation)
        parser.add_argument(*flags, dest=name, type=kind, nargs="+" if is_list else None, default=None,
                            choices=choices, help=help_text)


def _literal_choices(annotation: Any) -> list[str] | None:
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if typing.get_origin(arg) is typing.Literal:
                return list(typing.get_args(arg))
    return None


def model_from_args(model: type[BaseModel], args: argparse.Namespace) -> BaseModel:
    """Instantiate ``model`` from the flags that were given."""
    values = {name: getattr(args, name) for name in model.model_fields
              if getattr(args, name, None) is not None}
    return model(**values)


def format_validation_error(error: ValidationError) -> str:
    """One line per invalid field: ``field: message``."""
    return "invalid configuration:\n" + "\n".join(f"  {line}" for line in field_messages(error, "config"))


def add_trial_arguments(parser: argparse.ArgumentParser, model: type[BaseModel],
                        aliases: dict[str, list[str]] | None = None) -> None:
    """The flags every single-trial command shares: the config model's, ``--json`` and ``--quiet``."""
    add_model_arguments(parser, model, aliases)
    parser.add_argument("--json", type=Path, help="write the results as JSON to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-report lines")


def config_from_args(model: type[BaseModel], args: argparse.Namespace, console) -> BaseModel | None:
    """The validated config, or ``None`` after printing one line per invalid field."""
    try:
        return model_from_args(model, args)
    except ValidationError as err:
        console.print(f"[red]{format_validation_error(err)}[/red]")
        return None


def write_json(path: Path | None, payload: Any, console) -> None:
    """Write ``payload`` to ``path`` (if given) and say where."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2))
        console.print(f"results written to {path}")
