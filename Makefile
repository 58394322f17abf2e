# The two commands a newcomer runs: `make run` and `make test`.
#
# Three locked sets of dependencies, each with every package's hashes:
#   requirements.txt        runtime: what the services, the gateway and the worker import
#                           (the only set the image installs)
#   requirements-local.txt  runtime + what `make run` adds (honcho, a bundled redis-server)
#   requirements-dev.txt    runtime + local + tests, linters, type checking, locking
# Each is compiled from its .in file, constrained by the lock below it so that the versions
# agree; `make lock` recompiles them (`make lock LOCK_ARGS=--upgrade` moves to newer releases).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCAL_STAMP := $(VENV)/.local-installed
DEV_STAMP := $(VENV)/.dev-installed
COMPOSE_SCHEMA := $(VENV)/share/compose_spec.json
PIP_INSTALL := $(BIN)/python -m pip install --quiet --require-hashes
LOCK := $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock"
PYTEST_ARGS ?=
LOCK_ARGS ?=

.PHONY: run test lint format install lock bench-gateway bench-media clean chromium promtool

run: $(LOCAL_STAMP)
	$(BIN)/python -m devstack run

test: $(DEV_STAMP) $(COMPOSE_SCHEMA) chromium promtool
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Two tests drive real pages (the API docs, the scheduler's staff page) in Debian's Chromium.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
	  echo "Chromium is missing: install it (apt-get install chromium) for the browser tests"

# The monitoring tests check the alert rules with promtool, from Debian's prometheus package.
promtool:
	@command -v promtool >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends prometheus; } || \
	  echo "promtool is missing: install it (apt-get install prometheus) for the monitoring tests"

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(DEV_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

install: $(DEV_STAMP)

# Runs in this order: each set is constrained by the lock of the set below it.
lock: $(DEV_STAMP)
	$(LOCK) $(LOCK_ARGS) requirements.in -o requirements.txt
	$(LOCK) $(LOCK_ARGS) requirements-local.in -o requirements-local.txt
	$(LOCK) $(LOCK_ARGS) requirements-dev.in -o requirements-dev.txt

bench-gateway: $(DEV_STAMP)
	$(BIN)/python bench/gateway.py

bench-media: $(DEV_STAMP)
	$(BIN)/python bench/media.py

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(LOCAL_STAMP): requirements.txt requirements-local.txt | $(BIN)/python
	$(PIP_INSTALL) -r requirements-local.txt
	@touch $@

$(DEV_STAMP): requirements.txt requirements-local.txt requirements-dev.txt | $(BIN)/python
	$(PIP_INSTALL) -r requirements-dev.txt
	@touch $@

$(COMPOSE_SCHEMA): | $(DEV_STAMP)
	$(BIN)/python -m tests.support.compose_schema $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
