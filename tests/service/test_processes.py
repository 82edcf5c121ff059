"""Waits on a started process fail at once when it exits, naming it, its exit code and its log."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from service.cluster import HeadExited, free_port, wait_for_jobs_endpoint
from service.processes import ProcessExited, Watched
from tests.waiting import wait_for


def _exits_at_once(tmp_path, code: int = 3) -> Watched:
    log = tmp_path / "boom.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c",
                                    f"print('line one'); print('the real cause'); raise SystemExit({code})"],
                                   stdout=out, stderr=subprocess.STDOUT)
    return Watched("the boom server", process, log)


def test_a_test_wait_fails_within_seconds_naming_the_dead_process_and_its_log(tmp_path):
    watched = _exits_at_once(tmp_path)
    started = time.monotonic()
    with pytest.raises(ProcessExited) as failure:
        wait_for(lambda: False, 600, "the boom server to answer", watch=[watched])
    assert time.monotonic() - started < 10  # not the 600 s timeout
    message = str(failure.value)
    assert "the boom server" in message and "exited with code 3" in message
    assert "boom.log" in message and "the real cause" in message


def test_the_jobs_endpoint_wait_fails_within_seconds_when_the_head_exits(tmp_path):
    watched = _exits_at_once(tmp_path, code=1)
    started = time.monotonic()
    with pytest.raises(HeadExited) as failure:
        wait_for_jobs_endpoint(f"http://127.0.0.1:{free_port()}", 600, watched)
    assert time.monotonic() - started < 20
    assert "exited with code 1" in str(failure.value) and "the real cause" in str(failure.value)


def test_a_wait_on_a_live_process_still_returns_the_condition(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert wait_for(lambda: 42, 5, watch=[Watched("sleeper", process)]) == 42
    finally:
        process.kill()
        process.wait()
