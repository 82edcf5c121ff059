"""The app under a real uvicorn on 127.0.0.1 in a thread, as :func:`service.server.serve`
configures it (no Ray: the settings point at a cluster that is not there)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from service.cluster import free_port, stop_local_head
from service.local_stack import ApiProcess
from service.server import server_config
from service.settings import ServiceSettings
from tests.waiting import wait_for


@contextlib.contextmanager
def uvicorn_in_thread(settings: ServiceSettings) -> Iterator[str]:
    """Serve the app; yields its URL. ``log_config=None``: uvicorn's records reach pytest."""
    config = server_config(settings, port=free_port(), log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), 60, "uvicorn to start")
        assert thread.is_alive(), "uvicorn exited at start"
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(30)


def settings_without_ray(home, **values) -> ServiceSettings:
    """Settings for an API whose Ray cluster is not there (its Ray calls fail and are logged)."""
    return ServiceSettings(home=home, api_tokens=["t"], ray_dashboard_url=f"http://127.0.0.1:{free_port()}",
                           **values)


def app_without_lifespan(settings: ServiceSettings):
    """The app in-process with its services built by hand (no lifespan: no Ray head, no
    reconciler loop), for tests that write records themselves; returns (TestClient, Services)."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.db import make_engine, make_sessionmaker
    from service.services import Services

    services = Services.build(settings, make_sessionmaker(make_engine(settings.database)))
    app = create_app(settings)
    app.state.settings, app.state.tokens, app.state.services = settings, settings.tokens(), services
    return TestClient(app), services


@contextlib.contextmanager
def served_stack(home: Path, env: dict[str, str]) -> Iterator[ApiProcess]:
    """``dlab serve`` as a real process on ``home`` with ``env``, and its embedded Ray head,
    both stopped at the end."""
    process = ApiProcess(home, env=env).start()
    try:
        yield process
    finally:
        process.stop()
        stop_local_head(ServiceSettings(home=home))
