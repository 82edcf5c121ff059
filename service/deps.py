"""FastAPI dependencies: settings, the service's components and bearer-token auth.

They are ``async def`` on purpose: none of them blocks, and FastAPI runs a plain ``def``
dependency in its thread pool, a thread hand-off (and a wait for the GIL behind the reconciler's
thread) on every request."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.services import Services
from service.settings import ServiceSettings

bearer = HTTPBearer(auto_error=False, description="a token from DLAB_API_TOKENS (or DLAB_HOME/api-token)")


async def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


async def get_services(request: Request) -> Services:
    return request.app.state.services


def token_is_valid(given: str, tokens: list[str]) -> bool:
    """Whether ``given`` is one of the service's tokens (compared in constant time)."""
    return any(secrets.compare_digest(given.encode(), token.encode()) for token in tokens)


async def require_token(request: Request,
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    """401 unless the request carries one of the service's bearer tokens."""
    if not token_is_valid(credentials.credentials if credentials else "", request.app.state.tokens):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token",
                            headers={"WWW-Authenticate": "Bearer"})


ServicesDep = Annotated[Services, Depends(get_services)]
Settings = Annotated[ServiceSettings, Depends(get_settings)]
