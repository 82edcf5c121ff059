"""The embedded Ray head is locked down: Ray's token auth on (a token under DLAB_HOME, mode
600) and every listener of the head's processes on the loopback interface."""

from __future__ import annotations

import ipaddress
import stat
import sys

import httpx
import psutil
import pytest

from service import cluster
from service.cluster import (
    HEAD_START_ATTEMPTS,
    HeadExited,
    ensure_local_head,
    jobs_client,
    ray_token_path,
    running_local_head,
    stop_local_head,
)
from service.settings import ServiceSettings
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    settings = ServiceSettings(home=tmp_path_factory.mktemp("head-home"), local_ray_cpus=1)
    yield settings, ensure_local_head(settings)
    stop_local_head(settings)


def head_processes(temp_dir: str, pid: int) -> list[psutil.Process]:
    """The head's process tree plus every process of its Ray session (the raylet re-parents)."""
    found: dict[int, psutil.Process] = {}
    roots = [psutil.Process(pid)]
    for process in psutil.process_iter(["cmdline"]):
        if any(temp_dir in part for part in process.info["cmdline"] or ()):
            roots.append(process)
    for root in roots:
        try:
            for process in [root, *root.children(recursive=True)]:
                found[process.pid] = process
        except psutil.NoSuchProcess:
            continue
    return list(found.values())


def listeners(processes: list[psutil.Process]) -> list[tuple[str, str, int]]:
    out = []
    for process in processes:
        try:
            for conn in process.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    out.append((process.name(), conn.laddr.ip, conn.laddr.port))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def test_every_listener_of_the_embedded_head_is_on_loopback(head):
    _settings, info = head

    def servers_up():  # the raylet and its agents come up after the Jobs endpoint answers
        assert psutil.pid_exists(info.pid), f"the embedded head (pid {info.pid}) exited; see ray-head.log"
        bound = listeners(head_processes(info.temp_dir, info.pid))
        names = {name for name, _, _ in bound}
        return bound if {"gcs_server", "raylet"} <= names and len(bound) >= 8 else None

    bound = wait_for(servers_up, 300, "the head's servers to listen")
    assert all(is_loopback(ip) for _, ip, _ in bound), [b for b in bound if not is_loopback(b[1])]


def test_ray_token_auth_is_on_and_the_token_file_is_private(head):
    settings, info = head
    token_path = ray_token_path(settings)
    assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
    assert httpx.get(f"{info.dashboard_url}/api/jobs/", timeout=30).status_code == 401
    wrong = httpx.get(f"{info.dashboard_url}/api/jobs/", headers={"Authorization": "Bearer wrong"},
                      timeout=30)
    assert wrong.status_code in (401, 403)
    assert jobs_client(info.dashboard_url, token_path).list_jobs() == []


EXITS_AT_ONCE = [sys.executable, "-c", "raise SystemExit(1)"]
"""What `ray start` does when a port it was given is taken by the time it binds it."""


def test_a_ray_start_that_exits_is_retried_a_bounded_number_of_times(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(cluster, "head_command", lambda *args: calls.append(args) or EXITS_AT_ONCE)
    settings = ServiceSettings(home=tmp_path, local_ray_cpus=1)
    with pytest.raises(HeadExited):
        ensure_local_head(settings)
    assert len(calls) == HEAD_START_ATTEMPTS
    assert len({args[:2] for args in calls}) == HEAD_START_ATTEMPTS, "each attempt takes new ports"
    assert running_local_head(settings) is None


def test_a_head_whose_first_ray_start_exits_comes_up_on_new_ports(tmp_path, monkeypatch):
    real_command, calls = cluster.head_command, []

    def first_exits(*args):
        calls.append(args)
        return EXITS_AT_ONCE if len(calls) == 1 else real_command(*args)

    monkeypatch.setattr(cluster, "head_command", first_exits)
    settings = ServiceSettings(home=tmp_path, local_ray_cpus=1)
    try:
        info = ensure_local_head(settings)
        assert len(calls) == 2
        assert info.gcs_address == f"127.0.0.1:{calls[1][0]}"
        assert jobs_client(info.dashboard_url, ray_token_path(settings)).list_jobs() == []
    finally:
        stop_local_head(settings)
