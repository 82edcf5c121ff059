"""The Ray side of the service: the embedded local Ray head (started once, outliving API
restarts) and sweep drivers submitted to the cluster through Ray's Job Submission API."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


@dataclass
class DriverState:
    """A sweep driver as Ray Jobs reports it."""

    status: str  # PENDING | RUNNING | STOPPED | SUCCEEDED | FAILED
    message: str
    start_time: float | None
    end_time: float | None


class SweepDrivers:
    """Sweep drivers as Ray jobs: submitted with the job id = sweep id, so a restarted service
    finds them again; the cluster, not the API process, owns them."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._client = None

    @property
    def dashboard_url(self) -> str:
        if self.settings.ray_dashboard_url:
            return self.settings.ray_dashboard_url
        head = running_local_head(self.settings)
        if head is None:
            raise ClusterUnavailable("the embedded Ray head is not running (start it with `dlab serve`)")
        return head.dashboard_url

    @property
    def client(self):
        if self._client is None:
            self._client = jobs_client(self.dashboard_url)
        return self._client

    def _call(self, method: str, *args, **kwargs):
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except ClusterUnavailable:
            raise
        except RuntimeError as err:
            if "status code 404" in str(err) or "does not exist" in str(err):
                raise KeyError(args[0] if args else "") from err
            self._client = None
            raise ClusterUnavailable(f"Ray Jobs request failed: {err}") from err
        except (ConnectionError, OSError) as err:
            self._client = None
            raise ClusterUnavailable(f"Ray Jobs endpoint is unreachable: {err}") from err

    def driver_env(self) -> dict[str, str]:
        """Environment of a driver: the same MLflow store and (embedded) the same home."""
        env = {"MLFLOW_TRACKING_URI": self.settings.tracking_uri, "RAY_USAGE_STATS_ENABLED": "0",
               "TQDM_DISABLE": "1"}
        home = self.settings.driver_home or (str(self.settings.root) if self.settings.embedded_ray else None)
        if home:
            env["DLAB_HOME"] = home
        if os.environ.get("DLAB_DATA_DIR"):
            env["DLAB_DATA_DIR"] = os.environ["DLAB_DATA_DIR"]
        return env

    def submit(self, sweep_id: str, spec: dict) -> None:
        """Start a driver running ``dlab sweep run`` for this spec on the cluster."""
        entrypoint = " ".join([
            shlex.quote(self.settings.driver_python), "-m", "dlab.cli", "sweep", "run", "--quiet",
            "--sweep-id", shlex.quote(sweep_id), "--spec-json", shlex.quote(json.dumps(spec)),
        ])
        self._call("submit_job", entrypoint=entrypoint, submission_id=sweep_id,
                   runtime_env={"env_vars": self.driver_env()}, metadata={"dlab.sweep_id": sweep_id})

    def state(self, sweep_id: str) -> DriverState | None:
        """The driver's state, or None if the cluster does not know the job."""
        try:
            info = self._call("get_job_info", sweep_id)
        except KeyError:
            return None
        as_s = lambda ms: ms / 1000 if ms else None  # noqa: E731
        return DriverState(status=str(info.status.value), message=info.message or "",
                           start_time=as_s(info.start_time), end_time=as_s(info.end_time))

    def stop(self, sweep_id: str) -> bool:
        """Ask Ray to stop the driver (SIGTERM, then SIGKILL); its trials die with it."""
        try:
            return bool(self._call("stop_job", sweep_id))
        except KeyError:
            return False

    def ping(self) -> None:
        self._call("get_version")
