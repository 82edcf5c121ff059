"""The OpenAPI document covers every route and both request body types."""

from __future__ import annotations

from service.app import create_app
from service.settings import ServiceSettings


def test_openapi_documents_every_route_and_both_body_types(tmp_path):
    app = create_app(ServiceSettings(home=tmp_path, ray_dashboard_url="http://127.0.0.1:9"))
    schema = app.openapi()
    assert {"/api/v1/sweeps", "/api/v1/sweeps/{sweep_id}", "/api/v1/sweeps/{sweep_id}/trials",
            "/api/v1/sweeps/{sweep_id}/events", "/api/v1/sweeps/{sweep_id}/report",
            "/api/v1/sweeps/{sweep_id}/report/{figure}.png", "/api/v1/sweeps/{sweep_id}/cancel",
            "/healthz", "/readyz"} == set(schema["paths"])
    body = schema["paths"]["/api/v1/sweeps"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "application/yaml"}
    assert "benchmark" in body["application/json"]["schema"]["properties"]
    events = schema["paths"]["/api/v1/sweeps/{sweep_id}/events"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in events
