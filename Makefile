# twostep — `make serve` starts the service on SQLite; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Where `make test-postgres` (and `make test` in CI) finds PostgreSQL.
PG_URL ?= postgres://postgres@127.0.0.1:5432/twostep
HOST ?= 127.0.0.1
PORT ?= 8000
# axe-core for the accessibility checks of the browser journeys (from the npm registry).
AXE := .cache/npm/node_modules/axe-core/axe.min.js

.PHONY: install messages serve test test-sqlite test-postgres test-browser lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed messages $(AXE)

$(AXE):
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --silent --no-audit --no-fund --prefix .cache/npm axe-core@4 >/dev/null; \
	else echo "npm not found: browser accessibility checks will be left out"; fi

messages: $(VENV)/.installed
	$(BIN)/python -m twostep.messages

serve: install
	$(BIN)/twostep serve --host $(HOST) --port $(PORT)

test: install
	bash scripts/test-all

test-sqlite: install
	$(BIN)/pytest -n 2 $(ARGS)

test-postgres: install
	TWOSTEP_DATABASE_URL=$(PG_URL) $(BIN)/pytest -n 2 $(ARGS)

test-browser: install
	$(BIN)/pytest -m browser $(ARGS)

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/http_signin.py
	$(BIN)/python bench/reset_timing.py
	BENCH_USERS=100000 $(BIN)/python bench/admin_paging.py

clean:
	rm -rf $(VENV) .test-data
