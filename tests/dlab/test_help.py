"""Every flag and positional of every ``dlab`` command has help, with its default stated once."""

from __future__ import annotations

import argparse
import re

import pytest

from dlab.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, path: str = "dlab"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_argument_has_help_and_one_default() -> None:
    missing, doubled = [], []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction
                          | argparse._VersionAction):
                continue
            name = "/".join(action.option_strings) or action.dest
            if not action.help:
                missing.append(f"{path} {name}")
            elif "PydanticUndefined" in action.help or action.help.count("(default:") > 1:
                doubled.append(f"{path} {name}: {action.help}")
    assert not missing and not doubled, (missing, doubled)


@pytest.mark.parametrize("command", [[], ["sweep", "run"], ["submit"]])
def test_help_has_examples(command, capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    assert "examples:\n  dlab " in capsys.readouterr().out


def test_version(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--version"])
    assert re.fullmatch(r"dlab \S+\n", capsys.readouterr().out)
