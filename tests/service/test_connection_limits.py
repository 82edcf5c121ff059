"""Connection bounds of the served API (a real uvicorn on 127.0.0.1 as `dlab serve` configures
it): oversized or too many headers are refused with 431, requests whose headers or body arrive
too slowly with 408, before the app sees them; ordinary requests are untouched."""

from __future__ import annotations

import contextlib
import socket
import time

import httpx
import pytest

from tests.service.served import settings_without_ray, uvicorn_in_thread

TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = settings_without_ray(tmp_path_factory.mktemp("limits"), header_timeout_s=TIMEOUT_S,
                                    body_timeout_s=TIMEOUT_S, max_header_bytes=16 * 1024, max_headers=100)
    with uvicorn_in_thread(settings) as url:
        yield url


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    raw = socket.create_connection((host, int(port)), timeout=30)
    return raw


def _answer(raw: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := raw.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _send_quietly(raw: socket.socket, data: bytes) -> None:
    # the server refusing and closing while this is still sending is what is tested
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        raw.sendall(data)


def test_an_ordinary_request_is_served(server):
    assert httpx.get(f"{server}/healthz", headers={"X-Extra": "x" * 4000}).status_code == 200


def test_a_huge_header_is_refused_with_431(server):
    with _connect(server) as raw:
        big = b"a" * (4 * 1024 * 1024)
        _send_quietly(raw, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + big + b"\r\n\r\n")
        answer = _answer(raw)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"larger than 16384 bytes" in answer


def test_too_many_headers_are_refused_with_431(server):
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(10_000))
    with _connect(server) as raw:
        _send_quietly(raw, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        answer = _answer(raw)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"more than 100 request headers" in answer


def test_slow_headers_time_out_with_408(server):
    with _connect(server) as raw:
        started = time.monotonic()
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        answer = _answer(raw)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert TIMEOUT_S * 0.9 <= time.monotonic() - started < TIMEOUT_S + 10


def test_a_connection_that_sends_nothing_is_closed(server):
    with _connect(server) as raw:
        started = time.monotonic()
        answer = _answer(raw)
    assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - started < TIMEOUT_S + 10


def test_a_slow_body_times_out_with_408(server):
    with _connect(server) as raw:
        raw.sendall(b"POST /api/v1/sweeps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\"")
        answer = _answer(raw)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"body did not arrive in time" in answer


def test_a_long_response_outlives_the_timeouts(server):
    """The timeouts bound a request's arrival, not its answer: a slow client keeps reading."""
    with _connect(server) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(TIMEOUT_S * 2)
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
