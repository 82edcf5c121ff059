"""A crash inside a route answers a plain 500 that closes the connection properly and carries no
traceback, path or address (the server log has them)."""

from __future__ import annotations

import asyncio
import logging

import anyio
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from service.limits import BodySizeLimit
from service.server_errors import ServerErrors


def test_an_unhandled_error_is_a_clean_500_with_connection_close():
    app = FastAPI()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret /etc/dlab/path at 10.0.0.1")

    app.add_middleware(ServerErrors)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["connection"] == "close"
    assert "secret" not in response.text and "Traceback" not in response.text


def _stack() -> FastAPI:
    """A route that reads its body and one that fails mid-stream, behind the service's two
    middlewares in the order :func:`service.app.create_app` adds them."""
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> int:
        return len(await request.body())

    @app.get("/half")
    def half() -> StreamingResponse:
        def chunks():
            yield b"partial"
            raise RuntimeError("after the start")
        return StreamingResponse(chunks())

    @app.get("/left/{mixed}")
    def left(mixed: bool) -> StreamingResponse:
        """What a stream's task group raises when its client leaves mid-stream (FastAPI's
        server-sent events run the generator in one); with another error beside it if mixed."""
        def chunks():
            yield b"partial"
            errors = [anyio.BrokenResourceError(), anyio.ClosedResourceError()]
            raise ExceptionGroup("tasks", errors + [RuntimeError("a bug")] * mixed)
        return StreamingResponse(chunks())

    app.add_middleware(BodySizeLimit, max_bytes=1024)
    app.add_middleware(ServerErrors)
    return app


async def _call(app: FastAPI, method: str, path: str, chunks: list[bytes]) -> list[dict]:
    """The app called directly (no Content-Length: the body streams in ``chunks``); what it sent."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"test")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80), "state": {}}
    pending = [{"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
               for i, chunk in enumerate(chunks)]
    sent: list[dict] = []

    async def receive() -> dict:
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def test_a_streamed_body_past_the_limit_is_one_413_and_a_crash_mid_response_is_not_answered_twice():
    app = _stack()
    sent = asyncio.run(_call(app, "POST", "/echo", [b"x" * 600, b"x" * 600]))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [413]
    assert asyncio.run(_call(app, "POST", "/echo", [b"x" * 600]))[0]["status"] == 200
    sent = []
    with pytest.raises(RuntimeError):  # uvicorn closes the connection: no second start
        sent = asyncio.run(_call(app, "GET", "/half", [b""]))
    assert [m for m in sent if m["type"] == "http.response.start" and m["status"] == 500] == []


def test_a_client_gone_inside_an_exception_group_is_one_info_line_and_a_bug_beside_it_is_not(caplog):
    app = _stack()
    caplog.set_level(logging.INFO, logger="dlab.service")
    asyncio.run(_call(app, "GET", "/left/false", [b""]))
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "client closed the connection" in caplog.records[0].getMessage()
    assert not caplog.records[0].exc_info
    caplog.clear()
    with pytest.raises(ExceptionGroup):
        asyncio.run(_call(app, "GET", "/left/true", [b""]))
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
