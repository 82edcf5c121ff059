"""A pure ASGI middleware that turns any unhandled exception into a plain 500 that closes the
connection properly (``Connection: close``), logging the traceback on the server only."""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("dlab.service")
BODY = json.dumps({"detail": "internal error; the server log has the details"}).encode()


class ServerErrors:
    """Outermost layer: a crash in a route answers 500 with no traceback, path or address in
    the body, and tells the client to open a new connection instead of resetting this one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:  # the response is under way: uvicorn closes the connection itself
                raise
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(BODY)).encode()),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": BODY})
