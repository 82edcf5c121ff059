"""A client that closes an event stream is logged as what it is, one line, with no traceback:
the app served by a real uvicorn on 127.0.0.1 (no Ray: the reconciler's Ray calls fail and are
logged as such)."""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time

import httpx
import pytest

from service.db import SweepRow, make_engine, make_sessionmaker
from service.settings import ServiceSettings
from tests.service.served import settings_without_ray, uvicorn_in_thread
from tests.service.specs import spec


@pytest.fixture
def server(tmp_path):
    settings = settings_without_ray(tmp_path, poll_interval_s=0.2)
    with make_sessionmaker(make_engine(settings.database))() as session:
        session.add(SweepRow(id="s-1", name="s", benchmark="permuted_digits", status="running",
                             spec=spec("s"), spec_hash="h", expected_trials=2, metric="mean_accuracy",
                             mode="max", driver_submitted=True, trials=[]))
        session.commit()
    with uvicorn_in_thread(settings) as url:
        yield url, settings


def _busy_sweep(settings: ServiceSettings, stop: threading.Event) -> None:
    """New trial reports all the time, so the streams have events to send when clients leave."""
    sessions = make_sessionmaker(make_engine(settings.database))
    step = 0
    while not stop.is_set():
        step += 1
        with sessions() as session:
            session.get(SweepRow, "s-1").trials = [
                {"trial_id": f"t{i}", "run_id": f"r{i}", "status": "running", "config": {},
                 "metrics": {"mean_accuracy": step / 1e4}} for i in range(step % 5 + 1)]
            session.commit()
        time.sleep(0.05)


def test_a_closed_event_stream_is_one_log_line_without_a_traceback(server, caplog):
    server, settings = server
    caplog.set_level(logging.INFO)
    stop = threading.Event()
    writer = threading.Thread(target=_busy_sweep, args=(settings, stop))
    writer.start()
    try:
        _disconnect_clients(server)
    finally:
        stop.set()
        writer.join()
    tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def _disconnect_clients(server: str) -> None:
    for _ in range(3):
        with httpx.stream("GET", f"{server}/api/v1/sweeps/s-1/events",
                          headers={"Authorization": "Bearer t"}, timeout=10) as stream:
            assert stream.status_code == 200
            next(stream.iter_lines())  # the first event arrived; the client goes away
    for linger in (True, False):  # a reset (RST) and a plain close, from a raw socket
        with socket.create_connection(("127.0.0.1", int(server.rsplit(":", 1)[1]))) as raw:
            raw.sendall(b"GET /api/v1/sweeps/s-1/events HTTP/1.1\r\nHost: x\r\n"
                        b"Authorization: Bearer t\r\n\r\n")
            assert b"200" in raw.recv(4096)
            if linger:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    time.sleep(1.5)  # several polls of the stream after the client left
