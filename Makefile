# The two front-door commands (see README.md):
#   make example   install, then run the bundled example end to end (no accounts needed)
#   make test      install everything, then run lint, type checks and the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: example test lint typecheck pytest pds clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the package definition changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

example: $(VENV)/.installed
	$(BIN)/watcher check --config config.example.toml
	@tmp=$$(mktemp -d) && echo "--- running the example feed (database in $$tmp) ---" && \
	  $(BIN)/watcher run --once --config config.example.toml --database $$tmp/example.db

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pds:
	bash scripts/install-pds.sh

pytest: $(VENV)/.installed-dev pds
	$(BIN)/pytest -q

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
