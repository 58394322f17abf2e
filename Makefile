# The two commands a newcomer runs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
COMPOSE_SCHEMA := $(VENV)/share/compose_spec.json
PYTEST_ARGS ?=

.PHONY: run test lint format install bench-gateway bench-media clean chromium

run: $(RUNTIME_STAMP)
	$(BIN)/python -m devstack run

test: $(DEV_STAMP) $(COMPOSE_SCHEMA) chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Two tests drive real pages (the API docs, the scheduler's staff page) in Debian's Chromium.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
	  echo "Chromium is missing: install it (apt-get install chromium) for the browser tests"

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

install: $(DEV_STAMP)

bench-gateway: $(DEV_STAMP)
	$(BIN)/python bench/gateway.py

bench-media: $(DEV_STAMP)
	$(BIN)/python bench/media.py

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

$(COMPOSE_SCHEMA): | $(DEV_STAMP)
	$(BIN)/python -m tests.support.compose_schema $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
