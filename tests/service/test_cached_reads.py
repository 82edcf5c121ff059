"""The ASGI layer in front of the app answers a kept sweep detail or listing page itself (the app's
routes never run), with the same bytes the route would send, and passes every other request on:
no token or a wrong one (401), a query it does not know (422 or the route's answer), a body not
kept yet, an unknown sweep (404)."""

from __future__ import annotations

import pytest

from service.deps import get_services
from tests.service.test_reads import AUTH, served, trial, write  # noqa: F401 (fixture)


@pytest.fixture
def routed(served):  # noqa: F811
    """The served app, counting the requests its routes resolve (any route needs the services)."""
    client, services = served
    calls = []

    async def counted():
        calls.append(1)
        return services

    client.app.dependency_overrides[get_services] = counted
    return client, services, calls


def test_a_kept_detail_is_answered_before_routing_with_the_routes_bytes(routed):
    client, services, calls = routed
    response = client.get("/api/v1/sweeps/s-1", headers=AUTH)
    assert response.status_code == 200 and calls == []
    assert response.content == services.records.cached_detail("s-1")
    assert response.headers["content-type"] == "application/json"
    assert response.json()["status"] == "running"
    write(services, status="succeeded", trials=[trial(0, "done", 0.7), trial(1, "done", 0.9)])
    assert client.get("/api/v1/sweeps/s-1", headers=AUTH).json()["best"]["trial_id"] == "t1"
    assert calls == []


def test_a_listing_page_is_answered_here_once_the_route_has_rendered_it(routed):
    client, services, calls = routed
    first = client.get("/api/v1/sweeps", params={"status": "running", "limit": 5}, headers=AUTH)
    assert first.status_code == 200 and len(calls) == 1  # not kept yet: the route renders it
    again = client.get("/api/v1/sweeps", params={"status": "running", "limit": 5}, headers=AUTH)
    assert again.content == first.content and len(calls) == 1
    write(services, status="failed", error="boom")
    assert client.get("/api/v1/sweeps", params={"status": "running", "limit": 5},
                      headers=AUTH).json()["total"] == 0
    assert len(calls) == 1


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic t"},
                                     {"Authorization": "t"}])
def test_no_token_or_a_wrong_one_is_refused_by_the_app(routed, headers):
    client, _services, _calls = routed
    client.get("/api/v1/sweeps", headers=AUTH)  # the default page is kept
    for path in ("/api/v1/sweeps/s-1", "/api/v1/sweeps"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401 and "s-1" not in response.text


@pytest.mark.parametrize("query, status", [
    ("limit=0", 422), ("limit=abc", 422), ("offset=-1", 422), ("status=bogus", 422),
    ("offset=99999999999999999999", 422), ("limit=5&limit=6", 200), ("unknown=1", 200),
    ("status=running&offset=0&limit=50&", 200), ("limit=%FF", 422),
])
def test_queries_it_does_not_know_go_to_the_route(routed, query, status):
    client, _services, calls = routed
    client.get("/api/v1/sweeps", headers=AUTH)
    client.get("/api/v1/sweeps", params={"status": "running"}, headers=AUTH)
    before = len(calls)
    assert client.get(f"/api/v1/sweeps?{query}", headers=AUTH).status_code == status
    assert len(calls) == before + 1


def test_unknown_sweeps_and_other_routes_go_to_the_app(routed):
    client, _services, calls = routed
    assert client.get("/api/v1/sweeps/nope", headers=AUTH).status_code == 404
    assert len(calls) == 1
    trials = client.get("/api/v1/sweeps/s-1/trials", headers=AUTH)
    assert trials.status_code == 200 and len(trials.json()) == 2 and len(calls) == 2
    assert client.get("/api/v1/sweeps/s-1?verbose=1", headers=AUTH).status_code == 200
    assert len(calls) == 3
