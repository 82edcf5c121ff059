"""The rich console every ``dlab`` command prints with: the terminal's width on a terminal; when
piped or captured (CI logs, ``make demo | tee``) wide and without soft wrapping, so paths and
table rows are never folded at 80 columns."""

from __future__ import annotations

from rich.console import Console

PIPED_WIDTH = 200


def make_console(stderr: bool = False) -> Console:
    """A console for a command's output (``stderr``: for its error messages)."""
    console = Console(stderr=stderr)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, width=PIPED_WIDTH, soft_wrap=True)
