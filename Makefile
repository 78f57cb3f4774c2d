# twinops — two commands on a fresh machine: `make demo` and `make test`.
# Everything installs from uv.lock into .venv (uv itself comes from PyPI if missing).

SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-unit test-integration lint audit clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

demo: install
	$(BIN)/twinops --profile demo run

test: install
	$(BIN)/python -m pytest tests

test-unit: install
	$(BIN)/python -m pytest tests/unit

test-integration: install
	$(BIN)/python -m pytest tests/integration

lint: install
	$(BIN)/ruff check .

# pip-audit over uv.lock's pinned packages; fails on a vulnerability AND on any package it
# could not check (no reachable service). Not part of `make test`: it needs a vulnerability
# service (docs/operations.md "Dependency audit"). AUDIT_ARGS="--osv-url URL" for a mirror.
AUDIT_ARGS ?=
audit: install
	$(UV) export --frozen --no-hashes --no-emit-project --quiet -o $(VENV)/requirements.lock.txt
	$(BIN)/twinops check deps --requirements $(VENV)/requirements.lock.txt $(AUDIT_ARGS)

clean:
	rm -rf .twinops data $(VENV)
