# The two quick-start commands (see README.md): `make example` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: example test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Set up, then run the example pipeline in notebooks/ end to end.
example: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[example]"
	$(BIN)/nbflow graph notebooks
	$(BIN)/nbflow run notebooks
	@echo "The report is in notebooks/reports/; executed notebooks are under notebooks/.nbflow/runs/."

# Set up, then run the linters and the whole test suite.
test: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest

# ruff (lint and format), mypy (strict on the core), eslint and prettier on the JupyterLab extension's sources.
lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd labextension && PATH="$(abspath $(BIN)):$$PATH" jlpm lint:check

bench: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	$(BIN)/python bench/resolve.py

clean:
	rm -rf $(VENV) notebooks/.nbflow notebooks/data notebooks/reports
