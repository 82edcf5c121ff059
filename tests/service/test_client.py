"""Every ``dlab`` client command fails politely: an unreachable service, a timeout, a refused token
and an answer that is not the API's JSON each give one line naming the URL and a distinct exit
code (the codes ``dlab --help`` lists)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dlab import service_commands
from dlab.cli import build_parser, main
from service.cluster import free_port

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "sweeps" / "examples" / "demo.yaml"
COMMANDS = {"submit": [str(DEMO)], "list": [], "status": ["s-1"], "watch": ["s-1"], "cancel": ["s-1"],
            "report": ["s-1"]}


def serve(answer: tuple[int, str, bytes], delay_s: float = 0.0) -> Iterator[str]:
    """A dummy HTTP server on 127.0.0.1 answering every request with ``answer`` after ``delay_s``."""
    status, media, body = answer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            time.sleep(delay_s)
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False  # do not wait for a handler still sleeping
    server.handle_error = lambda *_args: None  # a client that gave up is no error here
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def refused_token():
    body = json.dumps({"detail": "missing or invalid bearer token"}).encode()
    yield from serve((401, "application/json", body))


@pytest.fixture
def html_page():
    yield from serve((200, "text/html", b"<html><body>It works!</body></html>"))


@pytest.fixture
def proxy_error():
    yield from serve((502, "text/html", b"<html>502 Bad Gateway</html>"))


@pytest.fixture
def other_json_api():
    yield from serve((200, "application/json", b'{"hello": "world"}'))


@pytest.fixture
def silent():
    yield from serve((200, "application/json", b"{}"), delay_s=3.0)


def run(capsys, command: str, url: str, *extra: str) -> tuple[int, str]:
    code = main([command, *COMMANDS[command], "--url", url, "--token", "t", *extra])
    captured = capsys.readouterr()
    return code, captured.err


def one_line(err: str, url: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert url in lines[0], err
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_unreachable_service(command, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code, err = run(capsys, command, url)
    assert code == service_commands.EXIT_UNREACHABLE
    assert "cannot reach the service" in one_line(err, url) and "dlab serve" in err


@pytest.mark.parametrize("command", COMMANDS)
def test_timeout(command, capsys, silent):
    code, err = run(capsys, command, silent, "--timeout", "0.3")
    assert code == service_commands.EXIT_TIMEOUT
    assert "did not answer within 0.3 s" in one_line(err, silent)


@pytest.mark.parametrize("command", COMMANDS)
def test_refused_token(command, capsys, refused_token):
    code, err = run(capsys, command, refused_token)
    assert code == service_commands.EXIT_TOKEN
    assert "HTTP 401" in one_line(err, refused_token) and "--token" in err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("server", ["html_page", "proxy_error", "other_json_api"])
def test_an_answer_that_is_not_the_apis_json(command, server, capsys, request):
    url = request.getfixturevalue(server)
    code, err = run(capsys, command, url)
    assert code == service_commands.EXIT_BAD_ANSWER
    assert "dendrite-lab service" in one_line(err, url)


def test_the_exit_codes_are_distinct_and_in_dlab_help():
    codes = [service_commands.EXIT_UNREACHABLE, service_commands.EXIT_TIMEOUT, service_commands.EXIT_TOKEN,
             service_commands.EXIT_BAD_ANSWER, service_commands.EXIT_API, service_commands.EXIT_BAD_INPUT,
             service_commands.EXIT_FAILED]
    assert len(set(codes)) == len(codes)
    text = build_parser().format_help()
    for code in codes:
        assert f"\n  {code}  " in text


def test_dlab_submit_with_no_service_prints_one_line_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "DLAB_URL": url, "COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-m", "dlab.cli", "submit", "sweeps/examples/demo.yaml"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == service_commands.EXIT_UNREACHABLE
    assert done.stdout == ""
    assert f"cannot reach the service at {url}/api/v1/sweeps" in one_line(done.stderr, url)
