# The whole set-up is two commands: `make run` and `make test` (see README.md).
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: help install run test test-fast test-browser reliability-quick lint format requirements stop services

help:
	@echo "make run    - install, start the embedded services, migrate, serve on http://127.0.0.1:8000"
	@echo "make test   - install, then run the whole test suite against real PostgreSQL and Redis"
	@echo "make test-browser - only the browser tests (Chromium); screenshots in test-artifacts/"
	@echo "make reliability-quick - a short load run on a whole stack; fails on any failed request"
	@echo "make install / lint / format / requirements / stop"

install:
	@requirements/bootstrap.sh dev

run: install
	@$(PY) -m artefact_site.stack

test: install
	@$(PY) -m pytest

test-fast: install
	@$(PY) -m pytest -m "not slow"

# Only the browser tests (also part of `make test`); screenshots land in test-artifacts/.
test-browser: install
	@$(PY) -m pytest -m browser tests/browser

# The quick form of docs/reliability.md's load rows (the faults and hostile input are tests).
reliability-quick: install
	@$(PY) bench/load.py --quick

lint: install
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

format: install
	@$(VENV)/bin/ruff check --fix .
	@$(VENV)/bin/ruff format .

# Re-pin after editing requirements/*.in.
requirements: install
	@$(VENV)/bin/uv pip compile --universal --python-version 3.12 -q requirements/base.in -o requirements/base.txt
	@$(VENV)/bin/uv pip compile --universal --python-version 3.12 -q requirements/dev.in -o requirements/dev.txt

# Stop the embedded PostgreSQL and Redis of this checkout, whoever started them.
stop:
	@$(PY) -m artefact_site.embedded stop

services:
	@$(PY) -m artefact_site.embedded status
