"""Bounds on what one connection can hold the server to, for uvicorn's httptools protocol (whose
parser has no limits of its own): the request line plus headers in bytes and in count (431), and
time: headers must arrive within ``header_timeout_s`` of the request's first byte (or of the
connection opening), a body within ``body_timeout_s`` of its headers (408). An idle keep-alive
connection is closed by uvicorn's own ``timeout_keep_alive``; the number of connections by its
``limit_concurrency`` (503)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True)
class ConnectionLimits:
    """What one request may take (see the module's docstring)."""

    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`ConnectionLimits` enforced; a refused request is
    answered with a JSON error and the connection closed, before the app sees it."""

    limits = ConnectionLimits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = self._header_count = 0
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s, "the request's headers did not arrive in time")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    # -- parser callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = self._header_count = 0
        self._arm(self.limits.header_timeout_s, "the request's headers did not arrive in time")

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count_header_bytes(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        super().on_header(name, value)
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                         f"more than {self.limits.max_headers} request headers")
            return
        self._count_header_bytes(len(name) + len(value))

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._arm(self.limits.body_timeout_s, "the request's body did not arrive in time")
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        if not self._refused:
            super().on_message_complete()

    # -- limits ---------------------------------------------------------------------------------
    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.limits.max_header_bytes and not self._refused:
            self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                         f"request line and headers larger than {self.limits.max_header_bytes} bytes")

    def _arm(self, seconds: float, reason: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._refuse, HTTPStatus.REQUEST_TIMEOUT, reason)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _refuse(self, status: HTTPStatus, reason: str) -> None:
        """Answer ``status`` (unless a response is already under way) and close the connection."""
        self._refused = True
        self._disarm()
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            body = json.dumps({"detail": reason}).encode()
            head = (f"HTTP/1.1 {status.value} {status.phrase}\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
            self.transport.write(head + body)
        self.logger.info("%s:%d - refused: %s", *(self.client or ("?", 0)), reason)
        self.transport.close()


def bounded_protocol(limits: ConnectionLimits) -> type[BoundedHttpToolsProtocol]:
    """The protocol class for uvicorn's ``http=`` with these limits."""
    return type("BoundedHttpTools", (BoundedHttpToolsProtocol,), {"limits": limits})
