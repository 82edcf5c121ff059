"""mkdocs hook: the reference pages, generated from the code at every build so they cannot drift.

- ``reference/sweep-spec.md`` and the workloads' config pages: the pydantic models' JSON schema
  (``SweepSpec``, ``ContinualConfig``, ``MTSACConfig``) rendered by jsonschema2md, and the
  benchmark registry and the example specs;
- ``reference/cli.md``: the help of every ``dlab`` argparse parser, walked from ``build_parser``;
- ``reference/api.md`` and ``reference/openapi.json``: the service's OpenAPI document;
- ``reference/settings.md``: the ``DLAB_*`` environment variables of ``ServiceSettings``;
- ``<!-- dlab:test-markers -->`` in a page: the pytest markers declared in pyproject.toml.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema2md
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from pydantic import AliasChoices, BaseModel

from dlab.cli import build_parser
from service.app import create_app
from service.openapi import EXAMPLES_DIR
from service.settings import ServiceSettings
from sweeps.benchmarks import BENCHMARKS
from sweeps.spec import SweepSpec, load_spec
from workers.continual import ContinualConfig
from workers.metaworld.config import MTSACConfig

ROOT = Path(__file__).resolve().parents[2]
MARKERS_PLACEHOLDER = "<!-- dlab:test-markers -->"
HELP_COLUMNS = "100"  # argparse wraps help text to $COLUMNS: a fixed width, the same on every machine


def schema_page(model: type[BaseModel], intro: str, appendix: str = "") -> str:
    """A page for one pydantic model: its JSON schema as Markdown (fields, types, bounds, defaults)."""
    lines = jsonschema2md.Parser(header_level=0).parse_schema(model.model_json_schema())
    title, body = lines[0], "".join(lines[1:])
    return f"{title}\n{intro}\n{body}\n{appendix}"


def benchmarks_table() -> str:
    """The registered benchmarks: name, workload, the parameters it fixes, what it is."""
    rows = ["| benchmark | workload | fixed parameters | what |", "| --- | --- | --- | --- |"]
    for name, bench in sorted(BENCHMARKS.items()):
        fixed = ", ".join(f"`{key}: {value}`" for key, value in bench.defaults.items())
        rows.append(f"| `{name}` | `{bench.workload_name}` | {fixed} | {bench.description} |")
    return "\n".join(rows)


def examples_table() -> str:
    """The shipped example specs (``sweeps/examples/*.yaml``), each loaded and validated."""
    rows = ["| spec | benchmark | searched | trials | what |", "| --- | --- | --- | --- | --- |"]
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        spec = load_spec(path)
        searched = ", ".join(f"`{name}`" for name in spec.search_space)
        rows.append(f"| `sweeps/examples/{path.name}` | `{spec.benchmark}` | {searched} | "
                    f"{spec.expected_trials} | {_cell(spec.description)} |")
    return "\n".join(rows)


def sweep_spec_page() -> str:
    intro = ("Generated at build time from `sweeps.spec.SweepSpec.model_json_schema()`, the model "
             "that `dlab sweep run`, `dlab submit` and `POST /api/v1/sweeps` validate a spec with. "
             "A spec's `params` and `search_space` names are fields of its benchmark's config "
             "model: [continual](continual-config.md) or [Meta-World](mtsac-config.md); the "
             "registered benchmarks and the shipped example specs are [below](#benchmarks).\n")
    appendix = ("## Benchmarks\n\n" + benchmarks_table() + "\n\n"
                "## Example specs\n\n" + examples_table() + "\n")
    return schema_page(SweepSpec, intro, appendix)


def config_page(model: type[BaseModel], what: str) -> str:
    intro = (f"Generated at build time from `{model.__module__}.{model.__name__}"
             f".model_json_schema()`: {what}. Every field is a `dlab run` flag "
             "(dashes for underscores), a sweep's `params` key or a `search_space` dimension.\n")
    return schema_page(model, intro)


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every parser below it, depth first, in the order they were added."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                yield from parsers(child)


@contextlib.contextmanager
def env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def cli_page() -> str:
    out = ["# CLI reference", "",
           "Generated at build time from the `dlab` argparse parsers (`dlab/cli.py`: "
           "`build_parser()`, every sub-command walked); the same text as `dlab ... --help`.", ""]
    with env("COLUMNS", HELP_COLUMNS):
        for parser in parsers(build_parser()):
            out += [f"## `{parser.prog}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def openapi_document() -> dict[str, Any]:
    """The service's OpenAPI document as served (an app built, not started: no Ray, no database)."""
    with tempfile.TemporaryDirectory() as home:
        app = create_app(ServiceSettings(home=home, ray_dashboard_url="http://127.0.0.1:9"))
        return json.loads(json.dumps(app.openapi()))


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def api_page(doc: dict[str, Any]) -> str:
    out = ["# API reference", "",
           f"{doc['info']['title']} {doc['info']['version']}, OpenAPI {doc['openapi']}. Generated "
           "at build time from `service.app.create_app().openapi()`; the whole document is "
           "[openapi.json](openapi.json) (a running service serves it at `/openapi.json` and "
           "browses it at `/docs`). Requests under `/api/v1` need `Authorization: Bearer <token>`.",
           ""]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            out += [f"## `{method.upper()} {path}`", "",
                    f"`{op['operationId']}`: {_cell(op.get('description') or op.get('summary'))}", ""]
            params = op.get("parameters", [])
            if params:
                out += ["| parameter | in | required | description |", "| --- | --- | --- | --- |"]
                out += [f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | "
                        f"{_cell(p.get('description'))} |" for p in params]
                out.append("")
            body = op.get("requestBody", {}).get("content", {})
            if body:
                out += ["Body: " + ", ".join(f"`{kind}`" for kind in body) + "", ""]
            out += ["| status | meaning |", "| --- | --- |"]
            out += [f"| {status} | {_cell(answer.get('description'))} |"
                    for status, answer in sorted(op["responses"].items())]
            out.append("")
    return "\n".join(out)


def env_names(name: str, field: Any, prefix: str) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [alias] if isinstance(alias, str) else [f"{prefix}{name}".upper()]


def _default(name: str, field: Any) -> str:
    if name == "driver_python":
        return "this interpreter"
    if field.default_factory is not None or field.default is None:
        return "unset"
    return f"`{field.default}`"


def settings_page() -> str:
    prefix = ServiceSettings.model_config.get("env_prefix", "")
    out = ["# Settings", "",
           "The environment variables the service and `dlab sweep` read, generated at build time "
           "from `service.settings.ServiceSettings` (pydantic-settings; `sweeps.settings.Settings` "
           "below it). Where two names are given, the first found wins.", "",
           "| variable | default | what |", "| --- | --- | --- |"]
    for name, field in ServiceSettings.model_fields.items():
        names = " / ".join(f"`{n}`" for n in env_names(name, field, prefix))
        out.append(f"| {names} | {_default(name, field)} | {_cell(field.description)} |")
    return "\n".join(out) + "\n"


def test_markers_table() -> str:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    rows = ["| marker | what |", "| --- | --- |"]
    for line in pyproject["tool"]["pytest"]["ini_options"]["markers"]:
        marker, _, what = line.partition(":")
        rows.append(f"| `{marker.strip()}` | {_cell(what)} |")
    return "\n".join(rows)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated reference pages to the site."""
    doc = openapi_document()
    pages = {
        "reference/sweep-spec.md": sweep_spec_page(),
        "reference/continual-config.md": config_page(
            ContinualConfig, "the continual-learning workload's settings (benchmarks `permuted_*`)"),
        "reference/mtsac-config.md": config_page(
            MTSACConfig, "the multi-task SAC workload's settings (benchmarks `metaworld_*`)"),
        "reference/cli.md": cli_page(),
        "reference/api.md": api_page(doc),
        "reference/openapi.json": json.dumps(doc, indent=1),
        "reference/settings.md": settings_page(),
    }
    for src_uri, content in pages.items():
        files.append(File.generated(config, src_uri, content=content))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Fill the generated tables a hand-written page asks for."""
    return markdown.replace(MARKERS_PLACEHOLDER, test_markers_table())
