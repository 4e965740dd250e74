# Two commands do all the set-up: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PY_DIRS := functions agentlobby_cli local_emulator tests bench

.PHONY: install prereqs demo test test-fast lint bench up clean

install: $(STAMP)

$(STAMP): pyproject.toml functions/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

prereqs:
	@$(PYTHON) local_emulator/prereqs.py

demo: prereqs install
	$(BIN)/agentlobby demo

test: prereqs install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest tests/unit

lint: install
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy functions/agentlobby agentlobby_cli local_emulator
	$(BIN)/shellcheck -x infra/*.sh

bench: install
	$(BIN)/python bench/run_all.py

up: prereqs install
	$(BIN)/agentlobby up

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
