"""The Ray cluster the service talks to: the embedded local Ray head (started once, outliving API
restarts) and the authenticated client of a cluster's Job Submission API."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from service.settings import ServiceSettings

HEAD_FILE = "ray-head.json"
HEAD_START_TIMEOUT_S = 90.0


class ClusterUnavailable(RuntimeError):
    """Ray (its Jobs endpoint) cannot be reached."""


class LocalHead(BaseModel):
    """A Ray head this service started on this machine (``ray start --head --block``)."""

    pid: int
    gcs_address: str
    dashboard_url: str
    temp_dir: str


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _head_file(settings: ServiceSettings) -> Path:
    return settings.root / HEAD_FILE


def ray_auth_headers() -> dict[str, str]:
    """The bearer header for Ray's token auth (on by default for new heads since Ray 2.5x), read
    the way Ray reads it: ``RAY_AUTH_TOKEN``, else ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``."""
    token = os.environ.get("RAY_AUTH_TOKEN")
    if not token:
        path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
        token = path.read_text().strip() if path.is_file() else None
    return {"Authorization": f"Bearer {token}"} if token else {}


def jobs_client(dashboard_url: str):
    """A Ray Jobs client, or :class:`ClusterUnavailable` naming the address."""
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(dashboard_url, headers=ray_auth_headers())
    except Exception as err:  # the SDK raises ConnectionError, RuntimeError or its own types
        raise ClusterUnavailable(f"Ray Jobs endpoint {dashboard_url} is unreachable: {err}") from err


def running_local_head(settings: ServiceSettings) -> LocalHead | None:
    """The embedded head recorded under ``DLAB_HOME`` if its process is still alive."""
    path = _head_file(settings)
    if not path.exists():
        return None
    head = LocalHead.model_validate_json(path.read_text())
    return head if _alive(head.pid) else None


def head_command(gcs_port: int, dashboard_port: int, temp_dir: str | Path, num_cpus: int,
                 *extra: str) -> list[str]:
    """``ray start --head --block`` with its ports on this machine chosen up front (so several
    heads can share it) and Ray Jobs on the loopback interface."""
    return [
        str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
        "--port", str(gcs_port), "--include-dashboard", "true",
        "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
        "--ray-client-server-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
        "--temp-dir", str(temp_dir), "--disable-usage-stats", "--num-cpus", str(num_cpus), *extra,
    ]


def ensure_local_head(settings: ServiceSettings) -> LocalHead:
    """Reuse the embedded Ray head, or start one that outlives this process (own session)."""
    head = running_local_head(settings)
    if head is not None:
        wait_for_jobs_endpoint(head.dashboard_url, HEAD_START_TIMEOUT_S)
        return head
    home_hash = hashlib.sha1(str(settings.root).encode()).hexdigest()[:8]
    temp_dir = Path(tempfile.gettempdir()) / f"dlab-ray-{home_hash}"  # short: Unix socket paths
    gcs_port, dashboard_port = free_port(), free_port()
    command = head_command(gcs_port, dashboard_port, temp_dir, settings.local_ray_cpus or os.cpu_count() or 1)
    log = (settings.root / "ray-head.log").open("ab")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                               start_new_session=True, cwd=settings.root)
    head = LocalHead(pid=process.pid, gcs_address=f"127.0.0.1:{gcs_port}",
                     dashboard_url=f"http://127.0.0.1:{dashboard_port}", temp_dir=str(temp_dir))
    _head_file(settings).write_text(head.model_dump_json(indent=2))
    try:
        wait_for_jobs_endpoint(head.dashboard_url, HEAD_START_TIMEOUT_S, process)
    except ClusterUnavailable:
        stop_local_head(settings)
        raise
    return head


def wait_for_jobs_endpoint(url: str, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    """Block until Ray Jobs answers at ``url``; fail early if ``process`` (the head) exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            jobs_client(url)
            return
        except ClusterUnavailable as err:
            if process is not None and process.poll() is not None:
                raise ClusterUnavailable(f"ray start exited with code {process.returncode}; "
                                         "see ray-head.log under DLAB_HOME") from err
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def stop_local_head(settings: ServiceSettings, timeout_s: float = 60.0) -> bool:
    """Stop the embedded head (SIGTERM drains and stops every Ray process it started)."""
    head = running_local_head(settings)
    _head_file(settings).unlink(missing_ok=True)
    if head is None:
        return False
    os.kill(head.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(head.pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(head.pid, os.WNOHANG)  # reap it if this process started it
        time.sleep(0.2)
    if _alive(head.pid):
        os.killpg(head.pid, signal.SIGKILL)
    return True
