"""A cancel wins whatever moment it arrives, also while the submission is still in flight: the
services in-process against a real embedded Ray head, the driver's submission to Ray Jobs held
at a gate (before or after the real ``submit_job``) while the cancel comes."""

from __future__ import annotations

import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from service.cluster import ensure_local_head, stop_local_head
from service.db import make_engine, make_sessionmaker
from service.services import Services
from service.settings import ServiceSettings
from sweeps.plan import SweepPlan
from sweeps.spec import SweepSpec
from tests.service.specs import spec
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    settings = ServiceSettings(home=tmp_path_factory.mktemp("cancel-home"), local_ray_cpus=1,
                               api_tokens=["t"])
    ensure_local_head(settings)
    yield Services.build(settings, make_sessionmaker(make_engine(settings.database)))
    stop_local_head(settings)


def held_submission(services: Services, name: str, gate_after_submit: bool):
    """Submit a sweep in a thread whose driver submission waits at a gate; returns the thread,
    the gate, and a list that receives the submitted row (or the error)."""
    real_submit = services.drivers.submit
    reached, gate, outcome = threading.Event(), threading.Event(), []

    def gated(plan: SweepPlan) -> None:
        if not gate_after_submit:
            reached.set()
            gate.wait(60)
        real_submit(plan)
        if gate_after_submit:
            reached.set()
            gate.wait(60)

    services.drivers.submit = gated
    body = SweepSpec.model_validate(spec(name, segments=(1, 2), params={"num_tasks": 3, "epochs": 2}))

    def run() -> None:
        try:
            outcome.append(services.submissions.submit(body)[0])
        except Exception as err:  # the test reports it
            outcome.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    assert reached.wait(60), "the submission never reached the driver's start"
    return thread, gate, outcome, lambda: setattr(services.drivers, "submit", real_submit)


@pytest.mark.parametrize("gate_after_submit", [False, True], ids=["before-submit-job", "after-submit-job"])
def test_a_cancel_during_the_submission_ends_the_sweep_cancelled(services, gate_after_submit):
    name = f"inflight-{int(gate_after_submit)}"
    thread, gate, outcome, restore = held_submission(services, name, gate_after_submit)
    try:
        queued = [row for row in services.records.list("queued", 0, 10)[0] if row.name == name]
        assert len(queued) == 1  # visible as queued, as a client polling the listing sees it
        started = time.monotonic()
        answered = services.reconciler.cancel(queued[0].id)
        assert time.monotonic() - started < 5, "the cancel of an in-flight submission must not block"
        assert answered.cancel_requested and answered.status == "queued"
        gate.set()
        thread.join(60)
    finally:
        gate.set()
        restore()
    assert not isinstance(outcome[0], Exception), outcome
    sweep_id = queued[0].id

    def ended():
        services.reconciler.reconcile()
        row = services.reconciler.current(sweep_id)
        return row if not row.active else None

    final = wait_for(ended, 300, f"sweep {sweep_id} to end")
    assert final.status == "cancelled", (final.status, final.error)
    detail = services.records.detail(final, [])
    assert detail.cancel_requested
    if final.driver_submitted:  # the driver started before the cancel was seen: Ray stopped it
        assert services.drivers.state(final.job_id).status == "STOPPED"
    time.sleep(2)  # a driver that was not stopped would go on to record trials
    mlflow = MlflowClient(services.settings.tracking_uri)
    experiments = mlflow.search_experiments()
    finished = [run for exp in experiments for run in mlflow.search_runs([exp.experiment_id])
                if run.data.tags.get("dlab.sweep_id") == sweep_id and run.info.status == "FINISHED"]
    assert not finished
