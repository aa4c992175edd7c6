# Pingtai — the two commands: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The suite runs on every core (pytest-xdist; tests/conftest.py hands out the work units).
# `make test PYTEST_WORKERS=0` (or PYTEST_ARGS=-n0) runs it in one process, as before.
PYTEST_WORKERS ?= auto
PYTEST_ARGS ?=

.PHONY: install run test lint format bench clean lock browser

install: $(STAMP)

# Reinstall only when the project's dependencies change; a no-op otherwise.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing pingtai and its dev tools into $(VENV) (log: $(VENV)/install.log) ..."
	@{ $(BIN)/python -m pip install --upgrade "pip>=24" \
	  && $(BIN)/python -m pip install -c constraints.txt -e ".[dev]"; } \
	  > $(VENV)/install.log 2>&1 || { tail -n 30 $(VENV)/install.log; exit 1; }
	@touch $(STAMP)
	@echo "installed."

run: install
	@$(BIN)/pingtai up --offer-demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install browser lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Debian's Chromium (and CJK fonts for its screenshots) for the portal's browser tests, when
# missing and apt-get is usable (as root).
# Playwright drives it; `playwright install` is never run (it downloads a browser of its own).
browser: install
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's chromium for the browser tests (log: $(VENV)/chromium.log) ..."; \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-noto-cjk; } \
	    > $(VENV)/chromium.log 2>&1 || { tail -n 30 $(VENV)/chromium.log; exit 1; }; \
	fi

bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Regenerate the constraints file from a fresh resolve of pyproject.toml.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet --upgrade "pip>=24"
	.lockenv/bin/python -m pip install --quiet ".[dev]"
	.lockenv/bin/python -m pip freeze --exclude pingtai > constraints.txt
	rm -rf .lockenv

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
