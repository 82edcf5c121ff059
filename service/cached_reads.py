"""A pure ASGI layer that answers the two hot reads, a sweep's detail and a listing page, from
the bodies the service already keeps rendered (:class:`service.records.SweepRecords`), before
FastAPI's routing, dependency resolution and response classes run.

Only a request the app would answer with exactly these bytes is taken here: an authorised
``GET`` whose body is kept. A kept listing page exists only for a query the route validated
before, so this layer checks no bounds of its own. Everything else (another method or route, a
missing or wrong token, an unknown, repeated or malformed query parameter, a body not kept yet)
goes on to the app, which answers it as it always does (401, 404, 422, a first render).
Measured by ``bench/bench_service.py`` (issue 16: read p99 at 32 clients)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import Receive, Scope, Send

from service.asgi import HttpMiddleware, answer_json
from service.deps import token_is_valid
from service.links import API_PREFIX
from service.schemas import DEFAULT_PAGE_LIMIT
from service.services import Services

SWEEPS_PATH = f"{API_PREFIX}/sweeps"
LISTING_PARAMETERS = frozenset({"status", "offset", "limit"})


def _bearer(scope: Scope) -> str:
    """The bearer token of the request's first Authorization header, parsed as FastAPI's
    ``HTTPBearer`` parses it."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, credentials = get_authorization_scheme_param(value.decode("latin-1"))
            return credentials if scheme.lower() == "bearer" else ""
    return ""


def _page_key(query: bytes) -> tuple[str | None, int, int] | None:
    """The listing page a query string asks for, or None when it is not a plain one."""
    if not query:
        return None, 0, DEFAULT_PAGE_LIMIT
    try:
        pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    given = dict(pairs)
    if len(given) != len(pairs) or not given.keys() <= LISTING_PARAMETERS:
        return None
    offset, limit = given.get("offset", "0"), given.get("limit", str(DEFAULT_PAGE_LIMIT))
    if not (offset.isdigit() and limit.isdigit() and len(offset) < 12 and len(limit) < 12):
        return None
    return given.get("status"), int(offset), int(limit)


class CachedReads(HttpMiddleware):
    """Answers kept sweep details and listing pages; passes every other request on."""

    def _kept_body(self, scope: Scope) -> bytes | None:
        path, query = scope["path"], scope["query_string"]
        prefix, _, sweep_id = path.rpartition("/")
        listing, detail = path == SWEEPS_PATH, prefix == SWEEPS_PATH and sweep_id and not query
        if not (listing or detail):  # every other route: no token check here, the app does it
            return None
        state = scope["app"].state if "app" in scope else None
        services: Services | None = getattr(state, "services", None)
        if services is None or not token_is_valid(_bearer(scope), state.tokens):
            return None
        if detail:
            return services.records.cached_detail(sweep_id)
        key = _page_key(query)
        return None if key is None else services.records.cached_page(*key)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "GET":
            body = self._kept_body(scope)
            if body is not None:
                await answer_json(send, 200, body)
                return
        await self.app(scope, receive, send)
