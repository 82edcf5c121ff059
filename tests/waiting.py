"""Polling helper shared by the tests that drive real processes."""

from __future__ import annotations

import time


def wait_for(predicate, timeout_s: float = 300.0, what: str = "condition", interval_s: float = 0.5):
    """``predicate()``'s first truthy value, polled every ``interval_s``; TimeoutError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise TimeoutError(f"timed out waiting for {what}")
