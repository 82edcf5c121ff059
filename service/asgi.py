"""ASGI plumbing shared by the service's pure ASGI middlewares (:mod:`service.server_errors`,
:mod:`service.limits`, :mod:`service.security_headers`, :mod:`service.cached_reads`): a base
that handles HTTP and passes other scopes through, whether a response has started, and a JSON
answer of their own."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HttpMiddleware:
    """A pure ASGI middleware: :meth:`handle` sees each HTTP request; every other scope
    (lifespan, websockets) goes to the app unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class TrackedSend:
    """An ASGI ``send`` that records whether the response has started (past that, a middleware
    can no longer answer with a status of its own). :meth:`wrap` reuses a tracker an outer
    middleware already put in place, so a request pays for one wrapper however many layers ask."""

    __slots__ = ("send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    @classmethod
    def wrap(cls, send: Send) -> TrackedSend:
        return send if isinstance(send, TrackedSend) else cls(send)

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


async def answer_json(send: Send, status: int, body: bytes,
                      headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Send a whole JSON response (``body`` already encoded) from a middleware."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})
