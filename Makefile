# dendrite-lab: `make demo` and `make test` are the two set-up commands (see README).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench lock clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dlab demo

test: $(STAMP)
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

lock: $(STAMP)
	$(PY) docker/lock.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
