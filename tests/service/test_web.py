"""The security headers on every answer and the web page's static routes (the app in process,
without its lifespan: these routes need neither Ray nor MLflow)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.security_headers import CONTENT_SECURITY_POLICY
from service.settings import ServiceSettings

TOKEN = "web-test-token"
EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(ServiceSettings(home=tmp_path_factory.mktemp("web-unit"), max_body_bytes=1024))
    app.state.tokens = [TOKEN]  # what the lifespan sets; no services, so an authorised API read fails
    return TestClient(app, raise_server_exceptions=False)  # not entered: no lifespan, no Ray


def policy(response) -> dict[str, str]:
    directives = (d.strip().split(None, 1) for d in response.headers["content-security-policy"].split(";"))
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


class References(HTMLParser):
    """Every src/href of an HTML page, and whether it has an inline script or handler."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_script = False
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        self.inline_script |= any(name.startswith("on") for name in attributes)
        self._in_script = tag == "script" and "src" not in attributes

    def handle_data(self, data):
        self.inline_script |= self._in_script and bool(data.strip())

    def handle_endtag(self, tag):
        self._in_script = False


def references(html: str) -> References:
    parser = References()
    parser.feed(html)
    return parser


@pytest.mark.parametrize(("method", "path", "headers", "body", "status"), [
    ("GET", "/", {}, None, 200),
    ("GET", "/docs", {}, None, 200),
    ("GET", "/ui/app.js", {}, None, 200),
    ("GET", "/openapi.json", {}, None, 200),
    ("GET", "/healthz", {}, None, 200),
    ("GET", "/api/v1/sweeps", {}, None, 401),  # the app's own error answer
    ("GET", "/ui/no-such-file.js", {}, None, 404),
    ("POST", "/api/v1/sweeps", {"Authorization": f"Bearer {TOKEN}"}, b"x" * 5000, 413),  # a middleware's
    ("GET", "/api/v1/sweeps", {"Authorization": f"Bearer {TOKEN}"}, None, 500),  # ServerErrors' own 500
])
def test_every_answer_carries_the_security_headers(client, method, path, headers, body, status):
    response = client.request(method, path, headers=headers, content=body)
    assert response.status_code == status, response.text
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for name, value in EXPECTED.items():
        assert response.headers[name] == value, name
    assert len(response.headers.get_list("content-security-policy")) == 1


def test_the_policy_allows_only_the_services_own_scripts(client):
    directives = policy(client.get("/"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval', no host
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert set(directives["img-src"].split()) == {"'self'", "blob:", "data:"}


@pytest.mark.parametrize("page", ["/", "/docs"])
def test_pages_reference_only_their_own_assets_and_those_answer(client, page):
    """Nothing on another host, no inline script (the policy would block it), and every file the
    page loads, ES module imports included, answers 200 with its media type."""
    response = client.get(page)
    assert response.headers["content-type"].startswith("text/html")
    parsed = references(response.text)
    assert not parsed.inline_script
    pending, seen = [urljoin(page, url) for url in parsed.urls if not url.startswith("#")], set()
    assert pending
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        assert url.startswith("/") and not url.startswith("//"), url  # this origin only
        asset = client.get(url)
        if url.startswith("/ui/"):
            assert asset.status_code == 200, url
            assert asset.headers["x-content-type-options"] == "nosniff"
        if url.endswith(".js"):
            assert asset.headers["content-type"].startswith("text/javascript"), url
            imports = re.findall(r"""^import .* from "(\.[^"]+)";""", asset.text, re.MULTILINE)
            pending += [urljoin(url, module) for module in imports]
        elif url.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css"), url
    assert any(url.endswith("/api.js") for url in seen) or page == "/docs"  # imports were followed


def test_docs_serve_swagger_ui_from_the_installed_package(client):
    html = client.get("/docs").text
    assert "cdn" not in html.lower() and "http" not in html
    bundle = client.get("/ui/swagger/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text[:2000]
    init = client.get("/ui/docs.js").text
    assert '"/openapi.json"' in init and "validatorUrl: null" in init  # no validator badge from the web
    assert client.get("/redoc").status_code == 404  # its CDN page is gone, not left blank


def test_static_files_need_no_token_but_the_api_still_does(client):
    assert client.get("/ui/style.css").status_code == 200
    assert client.get("/api/v1/sweeps").status_code == 401
    assert client.get("/ui/../app.py").status_code == 404
    assert client.get("/ui/%2e%2e/app.py").status_code == 404
