# Two commands do all the set-up: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PY_DIRS := functions agentlobby_cli local_emulator tests bench stress

.PHONY: install prereqs demo test test-fast lint bench stress stress-short up clean

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
	$(BIN)/mypy functions/agentlobby agentlobby_cli local_emulator stress
	$(BIN)/shellcheck -x infra/*.sh

bench: install
	$(BIN)/python bench/run_all.py

# The local stack under load, crashes, poison, fuzzing, a paused Firestore and agent loops
# (docs/stress.md). Exits 1 on anything lost or duplicated. stress-short is the CI size.
stress: prereqs install
	$(BIN)/python -m stress

stress-short: prereqs install
	$(BIN)/python -m stress --short

up: prereqs install
	$(BIN)/agentlobby up

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
