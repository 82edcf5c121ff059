"""The images and the compose stack, checked as far as a machine without a Docker engine allows:
the compose file against the Compose Specification schema, the Dockerfile with hadolint, and the
wiring (health checks, GPU reservations, settings the services read) against the code."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from service.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
BIN = Path(sys.executable).parent
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_file_matches_the_compose_spec():
    result = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                             str(DOCKER / "compose.yaml")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_passes_hadolint():
    result = subprocess.run([str(BIN / "hadolint"), "--config", str(DOCKER / ".hadolint.yaml"),
                             str(DOCKER / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_has_a_health_check_and_a_restart_policy():
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "mlflow", "ray-head", "ray-gpu-worker", "api"}
    for name, service in services.items():
        assert "healthcheck" in service, name
        assert service.get("restart") == "unless-stopped", name


def test_gpu_workers_reserve_nvidia_gpus_and_share_storage_with_the_head():
    worker, head = COMPOSE["services"]["ray-gpu-worker"], COMPOSE["services"]["ray-head"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert "replicas" not in worker.get("deploy", {}), "scale workers with --scale, not a fixed count"
    assert "cu" in worker["build"]["args"]["TORCH_INDEX"]
    assert "dlab-data:/data" in worker["volumes"] and "dlab-data:/data" in head["volumes"]
    assert worker["environment"]["DLAB_HOME"] == "/data"  # Tune storage on the shared volume


def test_api_points_at_the_cluster_and_uses_only_real_settings():
    api = COMPOSE["services"]["api"]
    env = api["environment"]
    assert env["DLAB_RAY_DASHBOARD_URL"] == "http://ray-head:8265"
    assert env["DLAB_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    known = {f"DLAB_{name.upper()}" for name in ServiceSettings.model_fields}
    for service in COMPOSE["services"].values():
        for variable in service.get("environment", {}) or {}:
            if variable.startswith("DLAB_"):
                assert variable in known, f"{variable} is not a ServiceSettings field"


def test_dockerfile_runs_as_non_root_and_copies_every_package():
    text = (DOCKER / "Dockerfile").read_text()
    stages = re.findall(r"^FROM .* AS (\w+)$", text, flags=re.MULTILINE)
    assert stages == ["build", "runtime"]
    users = re.findall(r"^USER (\S+)$", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    for pattern in packages["include"]:
        name = pattern.rstrip("*")
        assert re.search(rf"^COPY {name} {name}$", text, flags=re.MULTILINE), name


def test_lock_pins_the_runtime_dependencies():
    pins = dict(line.split("==") for line in (DOCKER / "requirements.lock").read_text().splitlines()
                if line and not line.startswith("#"))
    for required in ("ray", "mlflow", "fastapi", "metaworld", "mujoco", "sqlalchemy", "psycopg", "aiohttp"):
        assert required in pins, required
    assert "torch" not in pins and "pytest" not in pins
