"""Polling helper shared by the tests that drive real processes."""

from __future__ import annotations

import time
from collections.abc import Iterable

from service.processes import Watched


def wait_for(predicate, timeout_s: float = 300.0, what: str = "condition", interval_s: float = 0.5,
             watch: Iterable[Watched] = ()):
    """``predicate()``'s first truthy value, polled every ``interval_s``; TimeoutError after
    ``timeout_s``. Each process in ``watch`` is checked before every poll: one that has exited
    fails the wait at once (:class:`service.processes.ProcessExited`, with its exit code and
    the last lines of its log), instead of waiting out the timeout on a dead process."""
    watched = list(watch)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process in watched:
            process.check()
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    for process in watched:
        process.check()
    raise TimeoutError(f"timed out waiting for {what}")
