# dendrite-lab: `make demo` and `make test` are the two set-up commands (see README).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench lock clean fashion-mnist browser
.PHONY: docker-engine docker-base docker-wheels docker-env docker-build docker-up docker-down docker-test
.PHONY: docs docs-serve

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dlab demo

test: $(STAMP) browser
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	python3 ../shared/tools/check_layers.py

bench: $(STAMP)
	$(PY) bench/bench_dendrites.py
	$(PY) bench/bench_sweeps.py
	$(PY) bench/bench_service.py
	$(PY) bench/bench_mt10.py

browser:  # as root, if missing: Debian's chromium, which tests/web drives with Playwright (never `playwright install`)
	command -v chromium >/dev/null || { apt-get update && apt-get install -y --no-install-recommends chromium; }

fashion-mnist:  # as root: full Fashion-MNIST (IDX) into /usr/share/datasets/fashion-mnist
	apt-get update && apt-get install -y dataset-fashion-mnist

docs: $(STAMP)  # the docs site into build/site/ (reference pages generated from the code)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

docs-serve: $(STAMP)  # the same, served with live reload on 127.0.0.1:8001
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve --dev-addr 127.0.0.1:8001

lock: $(STAMP)
	$(PY) docker/lock.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# --- Docker (README "Deploy on a cluster"). No registry or package index here: docker-base and
# docker-wheels make what the build needs locally, docker-env LOCAL=1 points the build at them.
# GPU=1: the workers reserve NVIDIA GPUs and run CUDA torch (leaves out compose.cpu.yaml).
DOCKER_ENV ?= docker/.env
WORKERS ?= 2
COMPOSE = docker compose -f docker/compose.yaml $(if $(GPU),,-f docker/compose.cpu.yaml) --env-file $(DOCKER_ENV)

docker-engine:  # as root: install docker.io + Compose v2 if missing, start dockerd if none runs
	docker/scripts/engine.sh start

docker-base:  # as root: the Python and PostgreSQL base images (debootstrap), once
	docker/scripts/base-images.sh

docker-wheels:  # docker/wheelhouse from docker/requirements.lock, with this machine's pip
	docker/scripts/wheelhouse.sh

docker-env:  # docker/.env with generated secrets (LOCAL=1: local base images and wheelhouse)
	docker/scripts/make-env.sh $(if $(LOCAL),--local) $(DOCKER_ENV)

docker-build:
	$(COMPOSE) build api $(if $(GPU),ray-gpu-worker)

docker-up:
	$(COMPOSE) up --detach --wait --scale ray-gpu-worker=$(WORKERS)

docker-down:  # add V=1 to delete the volumes (databases, artifacts, checkpoints) too
	$(COMPOSE) down $(if $(V),--volumes)

docker-test: $(STAMP)  # the compose stack end to end (also part of `make test`)
	$(PY) -m pytest -v -p no:cacheprovider tests/deploy/test_compose_stack.py
