# Two entry points for a fresh machine: `make run` and `make test` (see README.md).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint env clean

$(STAMP): requirements.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -e .
	touch $(STAMP)

env: $(STAMP)

# The main job on the bundled sample with the embedded store, then the API and pages.
run: $(STAMP)
	$(BIN)/riskgraph pipeline --data data_samples --out out
	$(BIN)/riskgraph serve

# Linters: style, types (strict on riskgraph/ and scoring/) and the layers contract.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The ports first (Neo4j 7687, PostgreSQL 5433, or free ones when those are taken: tests/ports.py), then the
# linters, the browser set-up, and the whole test suite against a real Neo4j and a real PostgreSQL started
# (and stopped) here on those ports; the tests find them through RISKGRAPH_TEST_NEO4J_URL / _POSTGRES_URL.
TEST_PORTS := $(VENV)/test-ports.env

test: $(STAMP)
	$(BIN)/python -m tests.ports > $(TEST_PORTS)
	@cat $(TEST_PORTS)
	$(MAKE) --no-print-directory lint
	bash tests/pages/setup.sh $(BIN)/python
	set -a; . ./$(TEST_PORTS); set +a; \
	$(BIN)/riskgraph neo4j start --port $$RISKGRAPH_TEST_NEO4J_PORT || exit $$?; \
	$(BIN)/riskgraph postgres start --port $$RISKGRAPH_TEST_POSTGRES_PORT || { $(BIN)/riskgraph neo4j stop; exit 1; }; \
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=25; status=$$?; \
	$(BIN)/riskgraph postgres stop; $(BIN)/riskgraph neo4j stop; exit $$status

clean:
	rm -rf $(VENV) out .riskgraph
