# twostep — `make serve` starts the service on SQLite; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Where `make test-postgres` (and `make test` in CI) finds PostgreSQL.
PG_URL ?= postgres://postgres@127.0.0.1:5432/twostep
HOST ?= 127.0.0.1
PORT ?= 8000
# axe-core for the accessibility checks of the browser journeys, at this exact version (npm registry).
AXE_VERSION := 4.14.1
AXE_DIR := .cache/npm
AXE_STAMP := $(AXE_DIR)/axe-core-$(AXE_VERSION).installed
# openid-client v6 for the OpenID Connect tests from Node, at the versions of its committed lock.
OIDC_NODE := tests/oidc/node
OIDC_NODE_STAMP := $(OIDC_NODE)/node_modules/.installed
# The example application (examples/django-rp) in a venv of its own: not a dependency of twostep.
EXAMPLE_VENV := .cache/example-venv
EXAMPLE_STAMP := $(EXAMPLE_VENV)/.installed

.PHONY: install install-serve example-venv messages serve test test-sqlite test-postgres test-browser lint bench bench-quick bench-micro bench-pairs bench-profile bench-memory bench-allauth-venv bench-oidc clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# What serving needs: twostep and its dependencies, nothing more.
$(VENV)/.installed-serve: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

# What the tests need besides: pytest, Playwright, ruff, an SMTP server for the mail tests.
$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-serve
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install-serve: $(VENV)/.installed-serve messages

# Everything for development and the tests.
install: install-serve $(VENV)/.installed-test $(AXE_STAMP) $(OIDC_NODE_STAMP) $(EXAMPLE_STAMP)

$(AXE_STAMP):
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --silent --no-audit --no-fund --no-save --prefix $(AXE_DIR) axe-core@$(AXE_VERSION) >/dev/null \
	  && rm -f $(AXE_DIR)/axe-core-*.installed && touch $@; \
	else echo "npm not found: browser accessibility checks will be left out"; fi

$(OIDC_NODE_STAMP): $(OIDC_NODE)/package.json $(OIDC_NODE)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --silent --no-audit --no-fund --prefix $(OIDC_NODE) >/dev/null && touch $@; \
	else echo "npm not found: the openid-client tests will be left out"; fi

$(EXAMPLE_STAMP): examples/django-rp/requirements.txt
	$(PYTHON) -m venv $(EXAMPLE_VENV)
	$(EXAMPLE_VENV)/bin/pip install --quiet -r examples/django-rp/requirements.txt
	touch $@

# The example application's own venv (make install makes it too; the browser journey runs it).
example-venv: $(EXAMPLE_STAMP)

messages: $(VENV)/.installed-serve
	$(BIN)/python -m twostep.messages

serve: install-serve
	$(BIN)/twostep serve --host $(HOST) --port $(PORT)

test: install
	bash scripts/test-all

test-sqlite: install
	$(BIN)/pytest -n 2 -m "not multiprocess" $(ARGS)

# The two-process suite in one pytest process, so its servers start once (exit 5: none selected).
test-postgres: install
	TWOSTEP_DATABASE_URL=$(PG_URL) $(BIN)/pytest -n 2 -m "not multiprocess" $(ARGS)
	TWOSTEP_DATABASE_URL=$(PG_URL) $(BIN)/pytest -p no:xdist -m multiprocess $(ARGS) || [ $$? -eq 5 ]

test-browser: install
	$(BIN)/pytest -m browser $(ARGS)

# ruff, and the import contracts that hold the layers (pyproject.toml [tool.importlinter]).
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-logo

# The django-allauth site the benchmark compares with: its own venv from PyPI, never a twostep
# dependency (bench/allauth_site/requirements.txt pins it).
ALLAUTH_VENV := .cache/bench-allauth-venv
$(ALLAUTH_VENV)/.installed: bench/allauth_site/requirements.txt
	$(PYTHON) -m venv $(ALLAUTH_VENV)
	$(ALLAUTH_VENV)/bin/pip install --quiet -r bench/allauth_site/requirements.txt
	touch $@

bench-allauth-venv: $(ALLAUTH_VENV)/.installed

# twostep against django-allauth, the hash-only ceiling, the API sign-in, PostgreSQL and the flood
# (docs/performance.md): about 10 minutes; figures also in .cache/bench/<time>.jsonl. ARGS=--json …
bench: install-serve bench-allauth-venv
	$(BIN)/python bench/load.py $(ARGS)

# The same, one run of each main figure: about 2 minutes.
bench-quick: install-serve bench-allauth-venv
	$(BIN)/python bench/load.py --quick $(ARGS)

# A change against what it replaces: twostep against itself in alternating pairs, B/A ratios
# (bench/pairs.py; default A = HEAD, B = the working tree). ARGS="--a main~1 --pairs 6 …"
bench-pairs: install-serve
	$(BIN)/python bench/pairs.py $(ARGS)

# Where a sign-in's CPU goes, in-process: SQL per request and time per phase (docs/performance.md).
bench-profile: install-serve
	$(BIN)/python bench/profile_flow.py $(ARGS)

# RSS and PSS of each server process, twostep's and allauth's, at rest and after MD5 sign-ins
# (docs/performance.md, "Memory"): about two minutes. ARGS="--twostep-only --env MALLOC_ARENA_MAX=4" …
bench-memory: install-serve bench-allauth-venv
	$(BIN)/python bench/memory.py $(ARGS)

# The older micro-benchmarks: TOTP and backup-code checks, API sign-ins, reset timing, admin paging.
bench-micro: install-serve
	$(BIN)/python bench/run.py
	$(BIN)/python bench/http_signin.py
	$(BIN)/python bench/reset_timing.py
	BENCH_USERS=100000 $(BIN)/python bench/admin_paging.py

# The OpenID Connect token endpoint: tokens/s at 16 clients, public (no hasher) and confidential.
bench-oidc: install-serve
	$(BIN)/python bench/oidc_token.py --clients 16 --confidential

clean:
	rm -rf $(VENV) .test-data
