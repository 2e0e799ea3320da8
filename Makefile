# The two README commands: `make run` (gateway on embedded SQLite) and `make test` (install test needs, run tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run demo test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed-run

tools/fhir-validator/node_modules/.package-lock.json: tools/fhir-validator/package-lock.json
	npm ci --prefix tools/fhir-validator --no-audit --no-fund --loglevel=error

tools/peers/node_modules/.package-lock.json: tools/peers/package-lock.json
	npm ci --prefix tools/peers --no-audit --no-fund --loglevel=error

tools/smart-client/node_modules/.package-lock.json: tools/smart-client/package-lock.json
	npm ci --prefix tools/smart-client --no-audit --no-fund --loglevel=error

run: $(VENV)/.installed-run  ## serve on http://127.0.0.1:8000 with SQLite under ./data/
	$(BIN)/kap-gateway serve

demo: $(VENV)/.installed-run  ## load the synthetic demo clinic and print a client's credentials
	$(BIN)/kap-gateway demo

test: $(VENV)/.installed-test tools/fhir-validator/node_modules/.package-lock.json tools/smart-client/node_modules/.package-lock.json tools/peers/node_modules/.package-lock.json
	$(BIN)/pytest -n auto $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check gateway mappings fixtures tests bench
	$(BIN)/ruff format --check gateway mappings fixtures tests bench
	$(BIN)/mypy gateway mappings

format: $(VENV)/.installed-test
	$(BIN)/ruff format gateway mappings fixtures tests bench
	$(BIN)/ruff check --fix gateway mappings fixtures tests bench

bench: $(VENV)/.installed-test
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/mapping.py
	$(BIN)/python bench/concurrency.py

clean:
	rm -rf $(VENV) tools/fhir-validator/node_modules tools/smart-client/node_modules tools/peers/node_modules data .pytest_cache
