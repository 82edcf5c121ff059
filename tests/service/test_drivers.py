"""Sweep drivers through Ray Jobs: a submission waits out the moments after a head starts when
Ray Jobs answers but its job agent has not registered yet (Ray says "try again later"), and
fails at once on any other error. Ray's client is replaced by a script of its answers: the
agent's start-up race cannot be provoked on demand."""

from __future__ import annotations

import pytest

from service.cluster import ClusterUnavailable
from service.drivers import SweepDrivers
from service.settings import ServiceSettings

AGENT_NOT_READY = ("Request failed with status code 500: No available agent to submit job, "
                   "please try again later..")


class ScriptedJobs:
    """A Ray Jobs client whose ``submit_job`` raises the scripted errors, then succeeds."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        self.submissions: list[str] = []

    def submit_job(self, *, submission_id: str, **_job) -> str:
        self.submissions.append(submission_id)
        if self.errors:
            raise RuntimeError(self.errors.pop(0))
        return submission_id


class ScriptedDrivers(SweepDrivers):
    """The service's drivers, talking to the scripted client (also after an error, where the
    real one would connect again)."""

    def __init__(self, settings: ServiceSettings, jobs: ScriptedJobs) -> None:
        super().__init__(settings)
        self.jobs = jobs

    @property
    def client(self) -> ScriptedJobs:
        return self.jobs


def _drivers(tmp_path, jobs: ScriptedJobs) -> SweepDrivers:
    return ScriptedDrivers(ServiceSettings(home=tmp_path, ray_dashboard_url="http://127.0.0.1:9"), jobs)


def test_a_submission_waits_for_the_job_agent_then_starts_the_driver_once(tmp_path):
    jobs = ScriptedJobs([AGENT_NOT_READY, AGENT_NOT_READY])
    drivers = _drivers(tmp_path, jobs)
    drivers.submit_plan("s-1", "{}")
    assert jobs.submissions == ["s-1", "s-1", "s-1"]


def test_any_other_ray_error_fails_the_submission_at_once(tmp_path):
    jobs = ScriptedJobs(["Request failed with status code 500: the runtime env is invalid"])
    drivers = _drivers(tmp_path, jobs)
    with pytest.raises(ClusterUnavailable):
        drivers.submit_plan("s-1", "{}")
    assert jobs.submissions == ["s-1"]
