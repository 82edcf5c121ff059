"""The docs site: ``mkdocs build --strict`` passes (every link, anchor and nav entry checked),
the generated references name every spec and config field, every ``dlab`` command and option and
every API operation, the reproduction table is the bench's, and the README stays a front door
(at most 200 lines, links only to files and docs pages that exist, every tour command valid)."""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from bench import bench_paper_table
from dlab.cli import build_parser
from service.app import create_app
from service.settings import ServiceSettings
from sweeps.benchmarks import BENCHMARKS
from sweeps.spec import Resources, SweepSpec
from workers.continual import ContinualConfig
from workers.metaworld.config import MTSACConfig

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text()


def ids(text: str) -> set[str]:
    return {html.unescape(value) for value in re.findall(r'\bid="([^"]+)"', text)}


def text_of(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


@pytest.mark.parametrize(("name", "model"), [("reference/sweep-spec", SweepSpec),
                                             ("reference/continual-config", ContinualConfig),
                                             ("reference/mtsac-config", MTSACConfig)])
def test_schema_reference_names_every_field(site, name, model: type[BaseModel]):
    found = ids(page(site, name))
    missing = [field for field in model.model_fields if f"properties/{field}" not in found]
    assert not missing, f"{name} lacks {missing}"


def test_spec_reference_has_nested_models_benchmarks_and_examples(site):
    markup = page(site, "reference/sweep-spec")
    found, text = ids(markup), text_of(markup)
    assert {f"%24defs/Resources/properties/{f}" for f in Resources.model_fields} <= found
    assert not [name for name in BENCHMARKS if name not in text]
    examples = sorted(p.name for p in (ROOT / "sweeps" / "examples").glob("*.yaml"))
    assert examples and not [name for name in examples if f"sweeps/examples/{name}" not in text]


def walk(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from walk(child)


def test_cli_reference_has_every_command_and_option(site):
    text = text_of(page(site, "reference/cli"))
    sections = dict(re.findall(r"¶?\n*(dlab[a-z0-9 -]*)¶\n(.*?)(?=\ndlab[a-z0-9 -]*¶|\Z)", text, re.S))
    commands = list(walk(build_parser()))
    assert len(commands) > 10
    for parser in commands:
        assert parser.prog in sections, f"no section for {parser.prog}"
        options = [opt for action in parser._actions for opt in action.option_strings]
        missing = [opt for opt in options if opt not in sections[parser.prog]]
        assert not missing, f"{parser.prog}: {missing} not in its section"


def test_api_reference_has_every_operation_and_the_document(site, tmp_path):
    doc = json.loads(json.dumps(create_app(ServiceSettings(
        home=tmp_path, ray_dashboard_url="http://127.0.0.1:9")).openapi()))
    text = text_of(page(site, "reference/api"))
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert f"{method.upper()} {path}" in text and operation["operationId"] in text
    assert json.loads((site / "reference" / "openapi.json").read_text()) == doc


def test_settings_reference_and_test_markers(site):
    text = text_of(page(site, "reference/settings"))
    assert not [f for f in ServiceSettings.model_fields
                if f"DLAB_{f.upper()}" not in text and f.upper() not in text]
    development = page(site, "development")
    assert "dlab:test-markers" not in development
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert markers
    for line in markers:
        name, _, what = line.partition(":")
        row = f"{name.strip()}\n{what.strip().replace('`', '')}"  # a table row, as text
        assert row in text_of(development), f"marker {name!r} is not in the development page"


def test_site_loads_nothing_from_other_hosts(site):
    for path in site.rglob("*.html"):
        markup = path.read_text()
        assert not re.findall(r'<(?:script|img)[^>]*\ssrc="(?:https?:)?//', markup), path
        assert not re.findall(r'<link[^>]*\shref="(?:https?:)?//', markup), path


def marked(text: str) -> str:
    start, end = bench_paper_table.MARKERS
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def test_reproduction_page_holds_the_benchs_table():
    out = bench_paper_table.DEFAULT_OUT
    runs = json.loads(out.read_text())["runs"]
    expected = bench_paper_table.table(runs, 10, bench_paper_table.progress_dir(out))
    assert marked(bench_paper_table.DOCS_PAGE.read_text()) == expected


def test_bench_writes_the_table_between_the_markers_only(tmp_path):
    copy = tmp_path / "page.md"
    copy.write_text(bench_paper_table.DOCS_PAGE.read_text())
    bench_paper_table.write_table(copy, "| new | table |")
    before, after = bench_paper_table.DOCS_PAGE.read_text(), copy.read_text()
    assert marked(after) == "| new | table |"
    start, end = bench_paper_table.MARKERS
    assert after.split(start)[0] == before.split(start)[0]
    assert after.split(end)[1] == before.split(end)[1]


def test_readme_is_a_front_door_linking_to_pages_that_exist(site):
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    links = [link for link in LINK.findall(text) if not link.startswith(("http://", "https://"))]
    assert any(link.startswith("docs/") and link.endswith(".md") for link in links)
    for link in links:
        target = link.split("#", 1)[0]
        assert (ROOT / target).is_file(), f"README links to {link}, which does not exist"
        if target.startswith("docs/") and target.endswith(".md"):
            built = site / Path(target).relative_to("docs").with_suffix("") / "index.html"
            assert built.is_file(), f"README links to {link}, not a page of the site"


def tour_commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    lines = [line.split(" #")[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line and not line.startswith("#")]


def test_every_readme_command_is_valid_as_written():
    commands = tour_commands()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.M))
    assert {"make", ".venv/bin/dlab"} <= {argv[0] for argv in commands}
    for argv in commands:
        if argv[0] == "make":
            assert set(argv[1:]) <= targets, f"{argv}: no such Makefile target"
        elif argv[0] == ".venv/bin/dlab":
            build_parser().parse_args(argv[1:])  # exits 2 on an unknown command, flag or value
            for word in argv[1:]:
                if word.endswith((".yaml", ".json")) and word.startswith("sweeps/"):
                    assert (ROOT / word).is_file(), f"{argv}: {word} does not exist"
        else:
            assert argv[0] == ".venv/bin/mlflow", f"{argv}: not a command this test knows"
