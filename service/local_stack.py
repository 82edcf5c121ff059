"""The embedded stack as child processes: the API server (``python -m service``, which starts or
reuses the local Ray head) on a loopback port. Used by ``dlab demo``, the tests and the load
benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from service.cluster import free_port, running_local_head, stop_local_head
from service.processes import Watched
from service.settings import ServiceSettings

READY_TIMEOUT_S = 600.0  # generous: a head starts slowly on a loaded machine


class ApiProcess:
    """One API server process; ``stop()`` ends it (the Ray head and its sweeps live on)."""

    def __init__(self, home: Path, port: int | None = None, env: dict[str, str] | None = None,
                 log_path: Path | None = None) -> None:
        self.home = Path(home).resolve()
        self.port = port or free_port()
        self.env = {**os.environ, "DLAB_HOME": str(self.home), **(env or {})}
        self.log_path = log_path or self.home / "api.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> ApiProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service"], stdout=log, stderr=subprocess.STDOUT,
            env={**self.env, "DLAB_HOST": "127.0.0.1", "DLAB_PORT": str(self.port)},
        )
        watched = self.watched
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            watched.check()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"the service did not become ready in {timeout_s:.0f} s; see {self.log_path}")

    @property
    def watched(self) -> Watched:
        """The running server, for a wait that must fail at once if it exits."""
        if self.process is None:
            raise RuntimeError("the API server was not started")
        return Watched("the API server (python -m service)", self.process, self.log_path)

    def stop(self, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def token(self) -> str:
        return ServiceSettings(home=self.home).tokens()[0]


class LocalStack:
    """Context manager: the API (and, if none was running, the Ray head it starts) for a block."""

    def __init__(self, home: Path, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.settings = ServiceSettings(home=home)
        self.api = ApiProcess(self.settings.root, port, env)
        self._owns_head = False

    def __enter__(self) -> LocalStack:
        self._owns_head = running_local_head(self.settings) is None
        try:
            self.api.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        self.api.stop()
        if self._owns_head:
            stop_local_head(self.settings)
