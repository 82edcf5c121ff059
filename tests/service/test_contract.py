"""The API contract as third-party tools see it, against the real service (uvicorn on 127.0.0.1,
the embedded Ray head, MLflow on SQLite) with a bearer token:

- openapi-spec-validator accepts the served ``/openapi.json``;
- schemathesis with every check (no 5xx, only documented statuses, bodies and headers matching
  their schemas, 405 with the right ``Allow``, auth enforced...), a fixed seed and a bounded number
  of examples per operation, through all phases: the body examples (the shipped example specs),
  coverage, fuzzing and stateful sequences following the document's links
  (submit -> get -> trials -> report -> cancel).

Accepted sweeps stay tiny: the service runs with a cost budget just above the ``smoke`` example's,
so the larger examples and most generated specs are refused (422, documented) and the ones that
run finish in seconds on one Ray CPU; the stateful phase submits the smoke spec under generated
names (``contract_hooks.py``) so that its sequences reach accepted sweeps."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from service.local_stack import LocalStack

pytestmark = pytest.mark.integration

HOOKS = Path(__file__).with_name("contract_hooks.py")
SEED = 20261125
MAX_EXAMPLES = 8
"""Generated cases per operation and phase (the coverage phase adds its boundary cases)."""

SERVICE_ENV = {
    "DLAB_POLL_INTERVAL_S": "0.5",
    "DLAB_LOCAL_RAY_CPUS": "1",
    "DLAB_MAX_ACTIVE_SWEEPS": "3",
    "DLAB_MAX_TRIALS_PER_SWEEP": "4",
    "DLAB_MAX_TRIAL_COST": "2e7",  # the smoke example's trials are ~1.6e7, the demo's ~1.4e10
    "DLAB_MAX_SWEEP_COST": "6e7",
}

CONFIG = f"""
seed = {SEED}
workers = 1
request-timeout = 120
max-stream-events = 3
# `--checks all` turns on the response-time check (10 s by default): what it guards here is that
# nothing hangs, not speed, and a report built with figures on a loaded 2-core machine can take
# tens of seconds (bench/bench_service.py measures speed)
checks.max_response_time = 300

[generation]
max-examples = {MAX_EXAMPLES}

[phases.stateful]
max-steps = 6
generation.max-examples = 4

# A schema-valid spec can still be refused, for reasons no JSON schema can say: the benchmark's
# own config model (parameter names and ranges, fixed vs searched), the cluster's resources, the
# cost budget, the number of active sweeps. Those refusals are documented (409/413/422/429).
[[operations]]
include-operation-id = "submit_sweep"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "409", "413", "422", "429"]
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    home = tmp_path_factory.mktemp("contract-home")
    with LocalStack(home, env=SERVICE_ENV) as stack:
        yield stack.api


def schemathesis(api, workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    """``st run`` with every check against the served document; its output, for the failure message."""
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG)
    st = Path(sys.executable).with_name("st")
    command = [str(st), "--config-file", str(config), "run", f"{api.url}/openapi.json", "--checks", "all",
               "-H", f"Authorization: Bearer {api.token()}", "--report-dir", str(workdir / "report"), *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=workdir,
                          env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": str(HOOKS)})


def test_the_served_document_passes_openapi_spec_validator(api):
    validate(httpx.get(f"{api.url}/openapi.json", timeout=30).json())


def test_schemathesis_with_every_check_finds_nothing(api, tmp_path):
    run = schemathesis(api, tmp_path)
    print(run.stdout[-2500:])  # the summary, shown with `pytest -rP`
    assert run.returncode == 0, run.stdout[-15000:] + run.stderr[-3000:]
    links = re.search(r"API Links:\s+(\d+) covered", run.stdout)
    assert links and int(links.group(1)) > 0, run.stdout[-5000:]  # accepted sweeps were followed
