# Two commands do all the set-up: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PY_DIRS := functions agentlobby_cli agentlobby_testing local_emulator tests bench stress

.PHONY: install prereqs demo test test-fast lint bench stress stress-short up clean chromium page-vendor

install: $(STAMP)

$(STAMP): pyproject.toml functions/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

prereqs:
	@$(PYTHON) local_emulator/prereqs.py

demo: prereqs install
	$(BIN)/agentlobby demo

test: prereqs chromium install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest tests/unit

lint: install
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy functions/agentlobby agentlobby_cli agentlobby_testing local_emulator stress
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

# The browser the page's end-to-end test drives (tests/browser): Debian's Chromium, installed
# once when it is missing (CI runs as root; elsewhere run this target with sudo).
chromium:
	@test -x /usr/bin/chromium || { apt-get update && apt-get install -y chromium chromium-driver; }

# The page's front-end libraries, vendored in functions/agentlobby/api/page/vendor at the
# versions below (VERSIONS.txt there says the same): `make page-vendor` fetches them again.
HTM_VERSION := 3.1.1
HLJS_VERSION := 11.11.1
PREACT_LICENSE_VERSION := 10.29.8
PAGE_VENDOR := functions/agentlobby/api/page/vendor
page-vendor:
	@set -e; out=$$(pwd)/$(PAGE_VENDOR); tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cd "$$tmp"; \
	npm pack --silent htm@$(HTM_VERSION) preact@$(PREACT_LICENSE_VERSION) \
		@highlightjs/cdn-assets@$(HLJS_VERSION) >/dev/null; \
	for f in *.tgz; do mkdir "$${f%.tgz}"; tar xzf "$$f" -C "$${f%.tgz}"; done; \
	rm -rf "$$out"; mkdir -p "$$out"; \
	cp htm-*/package/preact/standalone.module.js "$$out/htm-preact.js"; \
	cp htm-*/package/LICENSE "$$out/htm-LICENSE.txt"; \
	cp preact-*/package/LICENSE "$$out/preact-LICENSE.txt"; \
	cp highlightjs-*/package/es/core.min.js "$$out/highlight-core.js"; \
	cp highlightjs-*/package/es/languages/python.min.js "$$out/highlight-python.js"; \
	cp highlightjs-*/package/styles/github.min.css "$$out/highlight-github.css"; \
	cp highlightjs-*/package/LICENSE "$$out/highlight-LICENSE.txt"; \
	printf '%s\n' \
		"htm $(HTM_VERSION): preact/standalone.module.js -> htm-preact.js (htm, Apache-2.0: htm-LICENSE.txt; with Preact 10 and its hooks bundled, MIT: preact-LICENSE.txt, from preact $(PREACT_LICENSE_VERSION))" \
		"@highlightjs/cdn-assets $(HLJS_VERSION): es/core.min.js -> highlight-core.js, es/languages/python.min.js -> highlight-python.js, styles/github.min.css -> highlight-github.css (BSD-3-Clause: highlight-LICENSE.txt)" \
		"Fetched with npm pack by 'make page-vendor'; change the versions in the Makefile." \
		> "$$out/VERSIONS.txt"; \
	echo "vendored into $(PAGE_VENDOR):"; ls "$$out"
