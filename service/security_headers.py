"""A pure ASGI middleware that puts the service's security headers on every HTTP response (the
API's answers, the web page and its assets, Swagger UI at /docs, and the answers other
middlewares send themselves)."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from service.asgi import HttpMiddleware

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",  # no inline script, no eval, nothing from another origin
    "style-src 'self'",
    "img-src 'self' blob: data:",  # figures are fetched with the bearer header, shown as blob: URLs
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


class SecurityHeaders(HttpMiddleware):
    """Outermost layer: adds :data:`SECURITY_HEADERS` to each response start (replacing any
    the app set itself, so there is one policy)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(name, value) for name, value in message.get("headers", ())
                        if name.lower() not in NAMES]
                message = {**message, "headers": [*kept, *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
