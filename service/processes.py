"""Waiting on processes this service (or a test) started: a wait that also watches the process
and fails at once, with its exit code and the last lines of its log, when it has exited."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

LOG_TAIL_LINES = 20


class ProcessExited(RuntimeError):
    """A process that was waited on exited before the condition held."""


def log_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' when there is none)."""
    if path is None or not path.is_file():
        return ""
    with path.open("rb") as log:
        log.seek(0, 2)
        log.seek(max(0, log.tell() - 64 * 1024))
        text = log.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Watched:
    """A started process to watch during a wait: its name for messages, and its log file."""

    name: str
    process: subprocess.Popen
    log: Path | None = None

    def check(self) -> None:
        """:class:`ProcessExited` naming the process, its exit code and its log's last lines
        if it has exited; nothing while it runs."""
        code = self.process.poll()
        if code is None:
            return
        tail = log_tail(self.log)
        where = f"; last lines of {self.log}:\n{tail}" if tail else (
            f"; its log {self.log} is empty" if self.log else "")
        raise ProcessExited(f"{self.name} (pid {self.process.pid}) exited with code {code}{where}")
