"""The Ray cluster the service talks to: the embedded local Ray head (started once, outliving API
restarts) and the authenticated client of a cluster's Job Submission API."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from service.processes import ProcessExited, Watched
from service.settings import ServiceSettings

log = logging.getLogger("dlab.service")

HEAD_FILE = "ray-head.json"
RAY_TOKEN_FILE = "ray-auth-token"
HEAD_START_TIMEOUT_S = 300.0  # generous: a loaded 2-core machine starts a head in minutes
HEAD_START_ATTEMPTS = 3  # `ray start` exiting early (a picked port taken meanwhile) is retried
LOOPBACK = "127.0.0.1"
SINGLE_NODE_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
"""Ray's single-machine mode (its default on macOS/Windows): every Ray process of the head, the
drivers and trials it spawns included, takes 127.0.0.1 as the node address instead of the
machine's routable one, so the GCS, raylet, workers and agents bind to loopback only (no other
node can join: the embedded head is one machine by design)."""


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


def ray_token_path(settings: ServiceSettings) -> Path:
    """The embedded head's Ray auth token (generated once under ``DLAB_HOME``, mode 600)."""
    path = settings.root / RAY_TOKEN_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path


def ray_auth_token(token_path: Path | None = None) -> str | None:
    """Ray's auth token: the embedded head's file when given, else read the way Ray reads it
    (``RAY_AUTH_TOKEN``, else ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``)."""
    if token_path is None:
        token = os.environ.get("RAY_AUTH_TOKEN")
        if token:
            return token.strip()
        token_path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    return token_path.read_text().strip() if token_path.is_file() else None


def ray_auth_headers(token_path: Path | None = None) -> dict[str, str]:
    """The bearer header for Ray's token auth (see :func:`ray_auth_token`)."""
    token = ray_auth_token(token_path)
    return {"Authorization": f"Bearer {token}"} if token else {}


def ray_auth_env(token_path: Path) -> dict[str, str]:
    """Environment that turns Ray's token auth on for a process using the token in ``token_path``
    (``ray start`` and every process it spawns, drivers and trials included, inherit it)."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path)}


def jobs_client(dashboard_url: str, token_path: Path | None = None):
    """A Ray Jobs client, or :class:`ClusterUnavailable` (the address goes to the log only)."""
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(dashboard_url, headers=ray_auth_headers(token_path))
    except Exception as err:  # the SDK raises ConnectionError, RuntimeError or its own types
        log.warning("Ray Jobs endpoint %s is unreachable: %s", dashboard_url, err)
        raise ClusterUnavailable("the Ray cluster's Jobs endpoint is unreachable") from err


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
    heads can share it) and the dashboard / Ray Jobs on the loopback interface."""
    return [
        str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
        "--port", str(gcs_port), "--include-dashboard", "true",
        "--dashboard-host", LOOPBACK, "--dashboard-port", str(dashboard_port),
        "--ray-client-server-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
        "--temp-dir", str(temp_dir), "--disable-usage-stats", "--num-cpus", str(num_cpus), *extra,
    ]


def ensure_local_head(settings: ServiceSettings) -> LocalHead:
    """Reuse the embedded Ray head, or start one that outlives this process (own session)."""
    head = running_local_head(settings)
    token_path = ray_token_path(settings)
    if head is not None:
        wait_for_jobs_endpoint(head.dashboard_url, HEAD_START_TIMEOUT_S, token_path=token_path)
        return head
    home_hash = hashlib.sha1(str(settings.root).encode()).hexdigest()[:8]
    temp_dir = Path(tempfile.gettempdir()) / f"dlab-ray-{home_hash}"  # short: Unix socket paths
    cpus = settings.local_ray_cpus or os.cpu_count() or 1
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **ray_auth_env(token_path), **SINGLE_NODE_ENV}
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN"):  # the embedded head uses its own token file
        env.pop(name, None)
    for attempt in range(1, HEAD_START_ATTEMPTS + 1):
        # ports are picked free, then bound by Ray a moment later: on a busy machine another
        # process can take one in between, and `ray start` exits; new ports, bounded retries
        gcs_port, dashboard_port = free_port(), free_port()
        command = head_command(gcs_port, dashboard_port, temp_dir, cpus, "--node-ip-address", LOOPBACK)
        log_path = settings.root / "ray-head.log"
        with log_path.open("ab") as head_log:
            process = subprocess.Popen(command, stdout=head_log, stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True, cwd=settings.root)
        head = LocalHead(pid=process.pid, gcs_address=f"127.0.0.1:{gcs_port}",
                         dashboard_url=f"http://127.0.0.1:{dashboard_port}", temp_dir=str(temp_dir))
        _head_file(settings).write_text(head.model_dump_json(indent=2))
        try:
            watched = Watched("the embedded Ray head (ray start)", process, log_path)
            wait_for_jobs_endpoint(head.dashboard_url, HEAD_START_TIMEOUT_S, watched, token_path)
            return head
        except ClusterUnavailable as err:
            stop_local_head(settings)
            if not isinstance(err, HeadExited) or attempt == HEAD_START_ATTEMPTS:
                raise
            log.warning("ray start exited (attempt %d of %d); retrying with new ports",
                        attempt, HEAD_START_ATTEMPTS)
    raise AssertionError("unreachable: the last attempt returns or raises")


class HeadExited(ClusterUnavailable):
    """The embedded head's ``ray start`` exited before Ray Jobs answered."""


def wait_for_jobs_endpoint(url: str, timeout_s: float, process: Watched | None = None,
                           token_path: Path | None = None) -> None:
    """Block until Ray Jobs answers at ``url`` (its job list, which the dashboard serves from the
    GCS; the job agent that starts drivers may register a little later: a submission waits for
    it, see :data:`service.drivers.AGENT_WAIT_S`); fail at once (:class:`HeadExited`, with the
    exit code and the last lines of its log) if ``process`` (the head) exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            try:
                jobs_client(url, token_path).list_jobs()
            except ClusterUnavailable:
                raise
            except Exception as err:  # the job agent is not answering yet
                raise ClusterUnavailable(f"Ray Jobs is not ready: {err}") from err
            return
        except ClusterUnavailable as err:
            if process is not None:
                try:
                    process.check()
                except ProcessExited as exited:
                    raise HeadExited(str(exited)) from err
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
