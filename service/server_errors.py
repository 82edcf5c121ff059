"""A pure ASGI middleware that turns any unhandled exception into a plain 500 that closes the
connection properly (``Connection: close``), logging the traceback on the server only."""

from __future__ import annotations

import json
import logging

import anyio
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from service.asgi import HttpMiddleware, TrackedSend, answer_json

log = logging.getLogger("dlab.service")
CLIENT_GONE = (ClientDisconnect, BrokenPipeError, ConnectionResetError, anyio.BrokenResourceError,
               anyio.ClosedResourceError, anyio.EndOfStream)
"""What a write to or read from a connection its client has closed raises: logged as one line."""
BODY = json.dumps({"detail": "internal error; the server log has the details"}).encode()


def client_gone(err: BaseException) -> bool:
    """Whether ``err`` only says the client left: one of :data:`CLIENT_GONE`, or an exception
    group of nothing else (a streaming response's task group, such as FastAPI's server-sent
    events, wraps what its tasks raise when the client closes the connection under them)."""
    if isinstance(err, BaseExceptionGroup):
        return all(client_gone(inner) for inner in err.exceptions)
    return isinstance(err, CLIENT_GONE)


class ServerErrors(HttpMiddleware):
    """Outermost layer: a crash in a route answers 500 with no traceback, path or address in
    the body, and tells the client to open a new connection instead of resetting this one."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracked = TrackedSend.wrap(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as err:
            if client_gone(err):  # the client closed the connection: nothing to answer
                log.info("%s %s: the client closed the connection (%s)", scope.get("method"),
                         scope.get("path"), type(err).__name__)
                return
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if tracked.started:  # the response is under way: uvicorn closes the connection itself
                raise
            await answer_json(send, 500, BODY, [(b"connection", b"close")])
