"""A crash inside a route answers a plain 500 that closes the connection properly and carries no
traceback, path or address (the server log has them)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

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
