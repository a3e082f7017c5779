# The one task file: the README and .ci/run use these targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PODIUM := $(BIN)/podium
PYTEST_ARGS ?= -q
SOURCES := podium manifests topics actors policy_service ledger scheduler tests bench

.PHONY: help install stack-up stack-down stack-status test test-busy test-unit lint format typecheck schemas demo

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# The stamp is newer than pyproject.toml once the project is installed: a second run is instant.
$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed ## create .venv with the project (editable) and its dev tools

stack-up: install ## start the local Kafka + PostgreSQL (idempotent)
	$(PODIUM) stack up

stack-down: ## stop the local Kafka + PostgreSQL
	$(PODIUM) stack down

stack-status: ## show what the local stack runs
	$(PODIUM) stack status

test: stack-up ## run the test suite against the real stack (no tests collected is a failure)
	@$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi; exit $$status

# A busy machine on demand: BUSY_LOAD CPU-bound processes run beside the suite and end with it,
# however it ends (failure, Ctrl-C, SIGTERM). PYTEST_ARGS selects, as for `make test`.
BUSY_LOAD ?= 6

test-busy: stack-up ## `make test` with BUSY_LOAD (default 6) CPU-bound processes running beside it
	@pids=""; \
	trap 'kill $$pids 2>/dev/null; wait $$pids 2>/dev/null' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; \
	for i in $$(seq 1 $(BUSY_LOAD)); do \
		$(BIN)/python -c 'while True: pass' & pids="$$pids $$!"; \
	done; \
	echo "test-busy: $(BUSY_LOAD) CPU-bound processes ($$pids ); load $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	start=$$SECONDS; $(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi; \
	echo "test-busy: exit $$status after $$((SECONDS - start)) s with BUSY_LOAD=$(BUSY_LOAD);" \
		"load $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	exit $$status

test-unit: install ## the tests that need no Kafka or PostgreSQL (no stack is started)
	@$(BIN)/pytest -m "not integration" $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no unit tests: failing" >&2; fi; exit $$status

lint: install ## ruff check, format check, and the layer contracts (import-linter)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/lint-imports

format: install ## apply ruff's formatting and fixes
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

typecheck: install ## mypy --strict on the packages
	$(BIN)/mypy

schemas: install ## regenerate topics/schemas/ and manifests/schema/ from their models
	$(BIN)/python -m topics.schema_export
	$(BIN)/python -m manifests.schema_export

# --- Targets of the runtime ---------------------------------------------------------------------
EXAMPLE := manifests/examples/research-pipeline
DEMO_INPUT ?= Analyze the current state of AI agent governance in enterprise. What are the main approaches and what's missing?

demo: stack-up ## run the research pipeline end to end, offline (mock model): report, audit trail, spend
	@mkdir -p .podium
	$(PODIUM) apply -f $(EXAMPLE)/agents.yaml -f $(EXAMPLE)/system.yaml \
		-f $(EXAMPLE)/governance.yaml -f manifests/demo/research-pipeline-offline-endpoint.yaml
	@$(PODIUM) dev > .podium/dev.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null' EXIT; \
	echo "podium dev started (pid $$pid, logs in .podium/dev.log)"; \
	task=demo-$$(date +%Y%m%d-%H%M%S); \
	$(PODIUM) run research-pipeline --task-id $$task --timeout 120 --wait \
		--input "$(DEMO_INPUT)" || exit $$?; \
	test -s .podium/api-token || $(PODIUM) token create --name demo \
		--scope audit:read --scope spend:read --save > /dev/null || exit $$?; \
	echo; echo "--- audit trail of $$task (podium logs $$task)"; \
	for i in $$(seq 1 50); do \
		$(PODIUM) logs $$task -o json 2>/dev/null | grep -q '"task.completed"' && break; sleep 0.2; \
	done; \
	$(PODIUM) logs $$task; \
	echo; echo "--- spend of $$task by agent (podium spend --by agent --task $$task)"; \
	$(PODIUM) spend --by agent --task $$task
.PHONY: faults bench

faults: stack-up ## fault scenarios: kill -9 of replicas, policy, dispatcher, ledger; PostgreSQL outage
	@$(BIN)/pytest -m faults $(PYTEST_ARGS) -s; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no fault scenarios: failing" >&2; fi; exit $$status

bench: stack-up ## every benchmark of bench/, one table of figures against targets (BENCH_ARGS=--quick)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)
