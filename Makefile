# The two front-door commands (see README.md):
#   make example   install, then run the bundled example end to end (no accounts needed)
#   make test      install everything, then run lint, type checks and the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: example test lint typecheck audit pytest pds dovecot chromium lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the package definition changes.
# Installs take the exact versions in requirements.lock (the ones tested and audited).
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c requirements.lock -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml requirements.lock $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

# The example runs on a fresh database in a temporary folder; `check` is told which, so the
# "Database:" line it prints is the one really used.
example: $(VENV)/.installed
	@tmp=$$(mktemp -d) && \
	  $(BIN)/watcher check --config config.example.toml --database $$tmp/example.db && \
	  echo "--- running the example feed ---" && \
	  $(BIN)/watcher run --once --config config.example.toml --database $$tmp/example.db

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# Known vulnerabilities in the locked versions (PyPI's advisories; see the script).
audit: $(VENV)/.installed-dev
	$(BIN)/python scripts/audit_deps.py requirements.lock

pds:
	bash scripts/install-pds.sh

# Dovecot from Debian's packages, for the IMAP tests (apt-get as root; see the script).
dovecot:
	bash scripts/install-dovecot.sh

# Debian's Chromium, for the contacts' page browser tests (apt-get as root; see the script).
chromium:
	bash scripts/install-chromium.sh

pytest: $(VENV)/.installed-dev pds dovecot chromium
	$(BIN)/pytest -q

test: lint typecheck audit pytest

# Re-resolve the newest versions pyproject.toml allows into requirements.lock.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	{ echo "# Exact versions CI and 'make' install (pip -c). Regenerate with: make lock"; \
	  echo "# Audited by scripts/audit_deps.py in 'make test'."; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^duress'; \
	  } > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
