# One command installs everything and runs the main job; one installs everything and runs all tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run emulator test test-fast lint typecheck pytest bench clean web web-check install lock docker-test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m bots $(ARGS)

emulator: $(STAMP)
	$(PY) -m emulator --port 8765

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(VENV)/bin/pytest -p no:cacheprovider

# The unit and emulator tiers: no listening models (emulator answers in AUDIO still use Piper),
# no processes, browser or Docker.
test-fast: $(STAMP) lint typecheck
	$(VENV)/bin/pytest -p no:cacheprovider -m "not (postgres or speech or e2e or browser or docker)"

bench: $(STAMP)
	$(PY) -m bench.emulator_bench

lock: $(STAMP)
	$(PY) tests/docker_harness.py lock requirements.lock

docker-test: $(STAMP)
	$(VENV)/bin/pytest -p no:cacheprovider tests/test_docker_compose.py

clean:
	rm -rf $(VENV) .cache/docker-test

web:
	cd bots/web && npm ci && npm run build

web-check:
	cd bots/web && npm ci && npm run check
