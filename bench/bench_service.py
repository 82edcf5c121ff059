"""Load test of the REST service on loopback (bounded): concurrent status reads and submissions
against ``dlab serve`` with its embedded Ray head, reporting p50/p99 latency and error counts.

    .venv/bin/python bench/bench_service.py [--reads 400] [--submits 24] [--concurrency 32]

Target (issue 16): ``GET /sweeps/{id}`` and ``GET /sweeps`` p99 < 20 ms at 32 concurrent clients
with a sweep running. Both are answered from the service's own records (the background
reconciler copies Ray's and MLflow's state into them), so a read never waits on Ray or MLflow,
and a kept body is sent by an ASGI layer before FastAPI's routing (:mod:`service.cached_reads`);
the "(routed)" lines send the same reads through FastAPI's routing, side by side in one run.

The load comes from aiohttp over one keep-alive connection per client: its client spends about
0.2 ms of CPU per request where httpx spends 2.5 ms (and httpx's pool keeps only 20 connections
alive, so 32 clients reconnected all the time), and on a 2-core machine the load generator's
CPU is taken from the server: with httpx this benchmark measured mostly its own client.

Submissions run into the active-sweep limit (DLAB_MAX_ACTIVE_SWEEPS=2): accepted ones start real
drivers, the rest must be refused with 429 (a policy answer, not an error). Errors are 5xx
answers and transport failures. Every accepted sweep is cancelled at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

from service.client import DlabClient
from service.local_stack import LocalStack

SPEC = {"name": "load", "benchmark": "permuted_digits",
        "params": {"num_tasks": 5, "hidden_sizes": [64, 64], "epochs": 5, "batch_size": 32},
        "search_space": {"num_segments": {"type": "grid", "values": [1, 2, 3, 4]}},
        "max_concurrent_trials": 1}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(http: aiohttp.ClientSession, limit: asyncio.Semaphore, method: str, path: str,
                **kwargs) -> tuple[float, int | str]:
    """One request's latency (ms, the whole body read) and status (or the transport error's name)."""
    async with limit:
        start = time.perf_counter()
        try:
            async with http.request(method, path, **kwargs) as response:
                await response.read()
                status: int | str = response.status
        except (TimeoutError, aiohttp.ClientError) as err:
            status = type(err).__name__
        return (time.perf_counter() - start) * 1000, status


READ_TARGET_P99_MS = 20.0
ROUTED = "GET (routed)"


def summarise(name: str, results: list[tuple[float, int | str]], wall_s: float) -> None:
    latencies = [ms for ms, _ in results]
    target = ""
    if name in ("GET /sweeps/{id}", "GET /sweeps"):
        met = percentile(latencies, 0.99) < READ_TARGET_P99_MS
        target = f"  target p99<{READ_TARGET_P99_MS:g} ms: {'met' if met else 'NOT met'}"
    statuses = Counter(str(status) for _, status in results)
    errors = sum(n for s, n in statuses.items() if not s.isdigit() or int(s) >= 500)
    print(f"{name:<22} n={len(results):<4} p50={percentile(latencies, 0.5):7.1f} ms  "
          f"p99={percentile(latencies, 0.99):7.1f} ms  mean={statistics.fmean(latencies):7.1f} ms  "
          f"{len(results) / wall_s:6.1f} req/s  errors={errors}  statuses={dict(statuses)}{target}")


async def run_load(url: str, token: str, sweep_id: str, reads: int, submits: int, concurrency: int) -> None:
    limit = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(url, headers=headers, timeout=aiohttp.ClientTimeout(total=60),
                                     connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        # not measured: every client's keep-alive connection opened, as with long-lived clients
        await asyncio.gather(*(timed(http, limit, "GET", f"/api/v1/sweeps/{sweep_id}")
                               for _ in range(2 * concurrency)))
        for name, requests in (
            ("GET /sweeps/{id}", [("GET", f"/api/v1/sweeps/{sweep_id}", {})] * reads),
            ("GET /sweeps", [("GET", "/api/v1/sweeps", {})] * reads),
            # the same reads through FastAPI's routing (a query parameter the cached-read layer
            # does not know passes the request on; the route answers the same kept bytes)
            (f"{ROUTED} /sweeps/{{id}}", [("GET", f"/api/v1/sweeps/{sweep_id}?via=routing", {})] * reads),
            (f"{ROUTED} /sweeps", [("GET", "/api/v1/sweeps?via=routing", {})] * reads),
            ("POST /sweeps", [("POST", "/api/v1/sweeps", {"json": {**SPEC, "name": f"load-{i}"}})
                              for i in range(submits)]),
            ("POST /sweeps (replay)", [("POST", "/api/v1/sweeps",
                                        {"json": SPEC, "headers": {"Idempotency-Key": "bench"}})] * submits),
            ("mixed reads+submits", [("GET", f"/api/v1/sweeps/{sweep_id}", {})] * reads
             + [("POST", "/api/v1/sweeps", {"json": {**SPEC, "name": f"mix-{i}"}}) for i in range(submits)]),
        ):
            start = time.perf_counter()
            results = await asyncio.gather(*(timed(http, limit, m, p, **kw) for m, p, kw in requests))
            summarise(name, list(results), time.perf_counter() - start)


def wait_running(client: DlabClient, sweep_id: str, timeout_s: float = 300.0) -> None:
    """Until the sweep's driver runs (the load is measured with a sweep running)."""
    deadline = time.monotonic() + timeout_s
    while client.status(sweep_id)["status"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--reads", type=int, default=400)
    parser.add_argument("--submits", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, \
            LocalStack(Path(home), env={"DLAB_MAX_ACTIVE_SWEEPS": "2"}) as stack:
        token = stack.api.token()
        with DlabClient(stack.api.url, token) as client:
            first = client.submit(SPEC, idempotency_key="bench")
            wait_running(client, first["id"])
            print(f"service {stack.api.url}; one sweep running ({first['id']}); "
                  f"concurrency {args.concurrency}")
            asyncio.run(run_load(stack.api.url, token, first["id"], args.reads, args.submits,
                                 args.concurrency))
            print(f"the sweep was {client.status(first['id'])['status']} at the end of the load")
            for item in client.list(limit=200)["items"]:
                if item["status"] in ("queued", "running"):
                    client.cancel(item["id"])


if __name__ == "__main__":
    main()
