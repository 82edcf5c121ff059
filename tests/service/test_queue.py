"""Sweeps one at a time (``DLAB_MAX_RUNNING_SWEEPS=1``): a sweep submitted while another runs
waits queued with no driver, starts when the running one ends, in submission order, and a
waiting one cancelled never starts. Real uvicorn, Ray head and MLflow store."""

from __future__ import annotations

import pytest

from service.client import DlabClient
from service.db import SweepRow
from service.settings import ServiceSettings
from sweeps.spec import SweepSpec
from tests.service.served import app_without_lifespan, served_stack
from tests.service.specs import spec
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    env = {"DLAB_POLL_INTERVAL_S": "0.5", "DLAB_MAX_RUNNING_SWEEPS": "1"}
    with served_stack(tmp_path_factory.mktemp("queue-home"), env) as process:
        yield process


def test_sweeps_run_one_after_another_in_submission_order(api):
    with DlabClient(api.url, api.token()) as client:
        first = client.submit(spec("first", segments=(1, 2), params={"epochs": 2}))
        second = client.submit(spec("second", segments=(1,)))
        third = client.submit(spec("third", segments=(1,)))
        waiting = client.status(second["id"])
        assert waiting["status"] == "queued" and waiting["waiting_for_slot"]
        assert waiting["mlflow_parent_run_id"] is None  # no driver: nothing recorded yet
        cancelled = client.cancel(third["id"])
        assert cancelled["status"] == "cancelled" and not cancelled["waiting_for_slot"]

        def ended(sweep_id: str):
            detail = client.status(sweep_id)
            return detail if detail["status"] in ("succeeded", "failed", "cancelled") else None

        done = [wait_for(lambda s=s: ended(s["id"]), 300, f"sweep {s['id']} to end", watch=[api.watched])
                for s in (first, second)]
        assert [d["status"] for d in done] == ["succeeded", "succeeded"], [d["error"] for d in done]
        assert done[1]["started_at"] >= done[0]["finished_at"]  # it waited for the first to end
        assert not done[1]["waiting_for_slot"]
        never = client.status(third["id"])
        assert never["status"] == "cancelled" and never["started_at"] is None
        assert never["mlflow_parent_run_id"] is None and never["trials"]["done"] == 0


def test_a_waiting_sweep_that_ray_cannot_take_stays_waiting(tmp_path):
    """Its slot is free but Ray is unreachable: the sweep waits on (queued, held), not failed,
    and the next round tries again."""
    settings = ServiceSettings(home=tmp_path, ray_dashboard_url="http://127.0.0.1:9", api_tokens=["t"],
                               max_running_sweeps=1)
    _, services = app_without_lifespan(settings)
    with services.sessions() as session:
        session.add(SweepRow(id="w-1", name="w", benchmark="permuted_digits", status="queued",
                             spec=SweepSpec.model_validate(spec("w")).model_dump(mode="json"),
                             spec_hash="h", expected_trials=2, metric="mean_accuracy", mode="max",
                             held=True))
        session.commit()
    assert services.submissions.start_held() == []
    with services.sessions() as session:
        row = session.get(SweepRow, "w-1")
        assert (row.status, row.held, row.error, row.driver_submitted) == ("queued", True, None, False)


def test_a_waiting_sweep_whose_spec_this_version_refuses_fails_naming_the_field(tmp_path):
    """Held across an upgrade that added a rule its spec breaks: it fails with the field named
    instead of blocking the queue; the sweep behind it is tried (here Ray is unreachable, so it
    waits on)."""
    settings = ServiceSettings(home=tmp_path, ray_dashboard_url="http://127.0.0.1:9", api_tokens=["t"],
                               max_running_sweeps=1)
    _, services = app_without_lifespan(settings)
    refused = {**spec("old"), "search_alg": "optuna", "num_samples": 2, "scheduler": "asha",
               "objectives": [{"metric": "forgetting", "mode": "min"}],
               "search_space": {"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}}
    with services.sessions() as session:
        valid = SweepSpec.model_validate(spec("w")).model_dump(mode="json")
        for name, body in (("w-old", refused), ("w-new", valid)):
            session.add(SweepRow(id=name, name=name, benchmark="permuted_digits", status="queued",
                                 spec=body, spec_hash=name, expected_trials=2, metric="mean_accuracy",
                                 mode="max", held=True))
            session.commit()
    assert services.submissions.start_held() == []
    with services.sessions() as session:
        old, new = session.get(SweepRow, "w-old"), session.get(SweepRow, "w-new")
        assert (old.status, old.held, old.driver_submitted) == ("failed", False, False)
        assert old.error.startswith("its spec no longer passes this version's checks")
        assert "objectives: Optuna's multi-objective TPE" in old.error
        assert (new.status, new.held) == ("queued", True)
