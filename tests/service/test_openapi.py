"""The OpenAPI document: valid for third-party tools (every reference resolves, all schemas under
components), every status each operation can return documented with its body schema, enums for
closed vocabularies, the shipped example specs as examples, and the httpx client in agreement."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from service.app import create_app
from service.client import OPERATIONS, DlabClient
from service.openapi import EXAMPLES_DIR
from service.settings import ServiceSettings
from sweeps.benchmarks import BENCHMARKS
from sweeps.spec import SweepSpec
from sweeps.status import SWEEP_STATUSES, TRIAL_STATUSES

API = "/api/v1/sweeps"
PER_SWEEP = [f"{API}/{{sweep_id}}", f"{API}/{{sweep_id}}/trials", f"{API}/{{sweep_id}}/events",
             f"{API}/{{sweep_id}}/report", f"{API}/{{sweep_id}}/report/{{figure}}.png",
             f"{API}/{{sweep_id}}/report/files/{{name}}",
             f"{API}/{{sweep_id}}/cancel"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    home = tmp_path_factory.mktemp("openapi")
    return create_app(ServiceSettings(home=home, ray_dashboard_url="http://127.0.0.1:9"))


@pytest.fixture(scope="module")
def doc(app) -> dict[str, Any]:
    return json.loads(json.dumps(app.openapi()))  # as served: JSON keys are strings


def operations(doc: dict[str, Any]):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def refs(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" or (isinstance(value, str) and value.startswith("#/")):
                yield value
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    node = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def body_schema(doc: dict[str, Any], operation: dict[str, Any], status: str) -> dict[str, Any]:
    return operation["responses"][status]["content"]["application/json"]["schema"]


def test_openapi_documents_every_route_and_both_body_types(doc):
    assert {*PER_SWEEP, API, "/healthz", "/readyz"} == set(doc["paths"])
    body = doc["paths"][API]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "application/yaml"}
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/SweepSpec"}
    events = doc["paths"][f"{API}/{{sweep_id}}/events"]["get"]["responses"]["200"]["content"]
    assert events == {"text/event-stream": {"schema": {"$ref": "#/components/schemas/SweepEvent"}}}


def test_the_document_passes_openapi_spec_validator_and_every_reference_resolves(doc):
    validate(doc)
    text = json.dumps(doc)
    assert "$defs" not in text and "itemSchema" not in text
    assert not [name for name in doc["components"]["schemas"] if "__" in name]  # readable, unique names
    found = set(refs(doc))
    assert "#/components/schemas/GridDimension" in found  # the body's nested models are components
    for ref in found:
        assert ref.startswith("#/components/schemas/"), ref
        resolve(doc, ref)


def test_every_status_an_operation_can_return_is_documented_with_its_error_body(doc):
    error = {"$ref": "#/components/schemas/ErrorMessage"}
    invalid = {"$ref": "#/components/schemas/ValidationErrors"}
    expected = {("post", API): {"200", "201", "401", "409", "413", "415", "422", "429", "503"},
                ("get", API): {"200", "401", "422"}}
    for path in PER_SWEEP:
        method = "post" if path.endswith("cancel") else "get"
        codes = {"200", "401", "404", "422", "503"}
        if path.endswith(("report", ".png", "{name}", "cancel")):
            codes.add("409")
        expected[(method, path)] = codes
    for path, method, operation in operations(doc):
        if not path.startswith("/api/v1"):
            continue
        assert set(operation["responses"]) == expected[(method, path)], (method, path)
        assert operation["security"] == [{"HTTPBearer": []}]
        for status in operation["responses"]:
            if int(status) >= 400:
                assert body_schema(doc, operation, status) == (invalid if status == "422" else error)
    assert "Retry-After" in doc["paths"][API]["post"]["responses"]["429"]["headers"]
    assert set(doc["paths"]["/readyz"]["get"]["responses"]) == {"200", "503"}


def test_closed_vocabularies_are_enums(doc):
    schemas = doc["components"]["schemas"]
    assert schemas["SweepSpec"]["properties"]["benchmark"]["enum"] == sorted(BENCHMARKS)
    assert schemas["SweepSummary"]["properties"]["benchmark"]["enum"] == sorted(BENCHMARKS)
    assert schemas["SweepSummary"]["properties"]["status"]["enum"] == list(SWEEP_STATUSES)
    assert schemas["SweepCreated"]["properties"]["status"]["enum"] == list(SWEEP_STATUSES)
    assert schemas["TrialInfo"]["properties"]["status"]["enum"] == list(TRIAL_STATUSES)
    assert schemas["SweepDetail"]["properties"]["mode"]["enum"] == ["max", "min"]
    dimension = schemas["SweepSpec"]["properties"]["search_space"]["additionalProperties"]
    mapping = dimension["discriminator"]["mapping"]
    assert set(mapping) == {"grid", "choice", "cases", "uniform", "loguniform", "randint"}
    for kind, ref in mapping.items():
        assert resolve(doc, ref)["properties"]["type"]["const"] == kind
    status_query = next(p for p in doc["paths"][API]["get"]["parameters"] if p["name"] == "status")
    assert status_query["schema"]["anyOf"][0]["enum"] == list(SWEEP_STATUSES)


def test_the_shipped_example_specs_are_the_body_examples_and_match_the_body_schema(doc):
    shipped = {path.stem: yaml.safe_load(path.read_text()) for path in EXAMPLES_DIR.glob("*.yaml")}
    assert "demo" in shipped
    schema = {**resolve(doc, "#/components/schemas/SweepSpec"), "components": doc["components"]}
    for media in doc["paths"][API]["post"]["requestBody"]["content"].values():
        examples = {name: example["value"] for name, example in media["examples"].items()}
        assert examples == shipped
        for value in examples.values():
            jsonschema.Draft202012Validator(schema).validate(value)
            SweepSpec.model_validate(value)


def test_unsupported_methods_answer_405_listing_every_allowed_method(app):
    client = TestClient(app)  # no lifespan: routing alone answers 405
    for method in ("DELETE", "OPTIONS", "PUT", "PATCH"):
        response = client.request(method, API)
        assert response.status_code == 405
        assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}
    assert client.delete(f"{API}/some-id/cancel").headers["allow"] == "POST"


def test_the_client_and_the_document_agree_on_every_operation_and_model(doc):
    documented = {op["operationId"]: (method.upper(), path) for path, method, op in operations(doc)}
    assert {op.operation_id for op in OPERATIONS.values()} == set(documented)
    for operation in OPERATIONS.values():
        assert documented[operation.operation_id] == (operation.method, operation.path)
        if operation.model is None:
            continue
        op = doc["paths"][operation.path][operation.method.lower()]
        success = str(operation.status or next(code for code in op["responses"] if code.startswith("2")))
        module, name = operation.model.split(":")
        ref = {"$ref": f"#/components/schemas/{name}"}
        documented_body = body_schema(doc, op, success)
        if operation.status:  # one of the bodies that status may carry (200: a replay or a dry run)
            assert ref in documented_body["anyOf"], operation
        else:
            assert documented_body == ({"type": "array", "items": ref, "title": ANY}
                                       if operation.many else ref)
        model = getattr(__import__(module, fromlist=[name]), name)
        own = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
        for nested, schema in {**own.pop("$defs", {}), name: own}.items():
            # FastAPI leaves out the defaults of response models
            assert without_defaults(doc["components"]["schemas"][nested]) == without_defaults(schema), nested


def without_defaults(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [without_defaults(v) for v in node]
    return node


class _Any:
    def __eq__(self, other: object) -> bool:
        return True


ANY = _Any()


def test_each_client_method_calls_its_documented_path(tmp_path):
    seen: list[tuple[str, str]] = []
    sweep = {"id": "s-1", "status": "queued", "links": dict.fromkeys(
        ("self", "trials", "events", "report", "cancel"), "/x")}

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        return httpx.Response(418, json={"detail": "teapot"})

    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\n")
    calls = {"submit": lambda c: c.submit(spec), "dry_run": lambda c: c.dry_run(spec),
             "list": lambda c: c.list(),
             "status": lambda c: c.status("s-1"), "trials": lambda c: c.trials("s-1"),
             "events": lambda c: list(c.events("s-1")), "report": lambda c: c.report("s-1"),
             "figure": lambda c: c.figure("/api/v1/sweeps/s-1/report/f.png"),
             "report_file": lambda c: c.report_file("s-1", "f"),
             "cancel": lambda c: c.cancel("s-1"), "healthz": lambda c: c.healthz(),
             "readyz": lambda c: c.readyz()}
    assert set(calls) == set(OPERATIONS)
    with DlabClient("http://dlab.test", "t", transport=httpx.MockTransport(answer)) as client:
        for name, call in calls.items():
            seen.clear()
            with pytest.raises(Exception, match="teapot"):
                call(client)
            operation = OPERATIONS[name]
            path = operation.path.format(sweep_id="s-1", figure="f", name="f")
            assert seen == [(operation.method, path)], name
    assert sweep  # the success shapes are checked against the models in the contract test
