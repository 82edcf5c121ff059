"""Sweep drivers as Ray jobs: each runs ``python -m sweeps.driver`` with its plan in the job's
runtime environment, submitted with the job id = sweep id, so a restarted service finds it again;
the cluster, not the API process, owns it."""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass

from service.cluster import ClusterUnavailable, jobs_client, ray_token_path, running_local_head
from service.settings import ServiceSettings
from sweeps.plan import PLAN_ENV, SweepPlan

DRIVER_MODULE = "sweeps.driver"
AGENT_WAIT_S = 60.0
"""How long a submission waits for the head's job agent: Ray Jobs answers "no available agent,
try again later" for a while after a head starts (its dashboard and job list answer before the
agent has registered, and Ray's own wait for it is 10 s, too short on a loaded machine)."""
AGENT_NOT_READY = ("No available agent", "Timed out waiting for an available job agent")


@dataclass
class DriverState:
    """A sweep driver as Ray Jobs reports it."""

    status: str  # PENDING | RUNNING | STOPPED | SUCCEEDED | FAILED
    message: str
    start_time: float | None
    end_time: float | None


class SweepDrivers:
    """Starts, follows and stops sweep drivers through Ray Jobs."""

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
            token_path = ray_token_path(self.settings) if self.settings.embedded_ray else None
            self._client = jobs_client(self.dashboard_url, token_path)
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
            raise ClusterUnavailable(f"Ray Jobs request {method} failed: {err}") from err
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

    def submit(self, plan: SweepPlan) -> None:
        """Start the sweep's driver on the cluster, its plan in the job's environment."""
        self.submit_plan(plan.sweep_id, plan.to_json())

    def submit_plan(self, sweep_id: str, plan_json: str, job_id: str | None = None,
                    resume: bool = False) -> None:
        """Start a driver job ``job_id`` (default: the sweep id) for a plan; ``resume`` continues
        the sweep from Tune's saved state (a driver restarted after its predecessor died)."""
        entrypoint = f"{shlex.quote(self.settings.driver_python)} -m {DRIVER_MODULE}"
        if resume:
            entrypoint += " --resume"
        env = {**self.driver_env(), PLAN_ENV: plan_json}
        deadline = time.monotonic() + AGENT_WAIT_S
        while True:
            try:
                self._call("submit_job", entrypoint=entrypoint, submission_id=job_id or sweep_id,
                           runtime_env={"env_vars": env}, metadata={"dlab.sweep_id": sweep_id})
                return
            except ClusterUnavailable as err:  # no job was created: the same id can be sent again
                if not any(text in str(err) for text in AGENT_NOT_READY) or time.monotonic() > deadline:
                    raise
            time.sleep(1.0)

    def state(self, job_id: str) -> DriverState | None:
        """The driver job's state, or None if the cluster does not know the job."""
        try:
            info = self._call("get_job_info", job_id)
        except KeyError:
            return None
        as_s = lambda ms: ms / 1000 if ms else None  # noqa: E731
        return DriverState(status=str(info.status.value), message=info.message or "",
                           start_time=as_s(info.start_time), end_time=as_s(info.end_time))

    def stop(self, job_id: str) -> bool:
        """Ask Ray to stop the driver job (SIGTERM, then SIGKILL); its trials die with it."""
        try:
            return bool(self._call("stop_job", job_id))
        except KeyError:
            return False

    def ping(self) -> None:
        self._call("get_version")

    def node_resources(self) -> list[dict[str, float]]:
        """Each alive node's total resources (``CPU``, ``GPU``, ...), from Ray's state API."""
        client = self.client
        try:
            response = client._do_request("GET", "/api/v0/nodes?detail=1")  # the SDK's own request
            nodes = response.json()["data"]["result"]["result"]
        except Exception as err:  # transport errors, an older Ray, an unexpected body
            raise ClusterUnavailable(f"Ray state API request failed: {err}") from err
        return [node.get("resources_total", {}) for node in nodes if node.get("state") == "ALIVE"]
