"""FastAPI dependencies: settings, the service's components and bearer-token auth."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.services import Services
from service.settings import ServiceSettings

bearer = HTTPBearer(auto_error=False, description="a token from DLAB_API_TOKENS (or DLAB_HOME/api-token)")


def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


def get_services(request: Request) -> Services:
    return request.app.state.services


def require_token(request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    """401 unless the request carries one of the service's bearer tokens."""
    tokens: list[str] = request.app.state.tokens
    given = credentials.credentials if credentials else ""
    if not any(secrets.compare_digest(given.encode(), token.encode()) for token in tokens):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token",
                            headers={"WWW-Authenticate": "Bearer"})


ServicesDep = Annotated[Services, Depends(get_services)]
Settings = Annotated[ServiceSettings, Depends(get_settings)]
