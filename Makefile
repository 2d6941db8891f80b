# The two commands: `make run` and `make test`. Both create .venv and install the pinned
# dependencies when needed; once installed, the install step is skipped (a stamp file).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip

# llama-cpp-python compiles llama.cpp from source. LLAMA_CPU picks the instruction sets:
# auto (the highest level this CPU has, AMX never), avx512, avx2, avx, generic, or native
# (GGML_NATIVE=ON, opt-in; see docs/inference.md). The stamp names a hash of the flags, so
# changing LLAMA_CPU, or the CPU under an old .venv, rebuilds it.
LLAMA_CPU   ?= auto
LLAMA_ARGS  := $(shell $(PYTHON) scripts/llama_cmake_args.py $(LLAMA_CPU))
LLAMA_PIN   := $(shell grep -i '^llama.cpp.python==' requirements.lock)
LLAMA_STAMP := $(VENV)/.llama-$(shell echo '$(LLAMA_PIN) $(LLAMA_ARGS)' | cksum | cut -d' ' -f1)

.PHONY: run test lint fuzz install lock clean browser ui-vendor ui-screenshots

run: $(STAMP)
	$(BIN)/agentmill up

test: $(STAMP) browser
	$(MAKE) lint
	$(BIN)/pytest

# Debian's Chromium, which the dashboard's browser tests (tests/api/ui) drive with Playwright:
# installed once (as root, or through sudo). AGENTMILL_CHROMIUM names another browser instead.
browser:
	@command -v chromium >/dev/null 2>&1 || [ -n "$$AGENTMILL_CHROMIUM" ] || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "installing Debian's chromium for the browser tests"; \
	  $$sudo apt-get install -y -q --no-install-recommends chromium >/dev/null || \
	  { $$sudo apt-get update -q >/dev/null && \
	    $$sudo apt-get install -y -q --no-install-recommends chromium >/dev/null; } || \
	  echo "make: could not install chromium: the browser tests skip (and fail in CI)"; }

# The dashboard's vendored libraries (api/ui/static/vendor, committed) from ui/package-lock.json.
ui-vendor:
	cd ui && npm ci --ignore-scripts --no-audit --no-fund
	scripts/vendor_ui.sh

# The screenshots in docs/ui.md, taken by the browser tests on the live stack.
ui-screenshots: $(STAMP) browser
	AGENTMILL_UI_SCREENSHOTS=docs/ui $(BIN)/pytest tests/api/ui

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The thorough schema fuzz: tests/api/test_fuzz.py with FUZZ_EXAMPLES generated cases per
# operation (`make test` runs it bounded, at 20). Deterministic: the same cases every run.
FUZZ_EXAMPLES ?= 200
fuzz: $(STAMP)
	AGENTMILL_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -s tests/api/test_fuzz.py

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Always a fresh source build with the explicit flags: --no-binary refuses any wheel (a find-links
# directory's or pip's cache, whose key ignores CMAKE_ARGS) and --no-cache-dir keeps this build
# out of the cache.
$(LLAMA_STAMP): $(BIN)/python scripts/llama_cmake_args.py
	@test -n "$(LLAMA_ARGS)" || { echo "make: no llama.cpp build flags (LLAMA_CPU=$(LLAMA_CPU))"; exit 1; }
	$(PIP) install --quiet --upgrade pip==26.3
	@echo "building $(LLAMA_PIN) with CMAKE_ARGS=$(LLAMA_ARGS) (about 3 minutes on 2 cores)"
	CMAKE_ARGS="$(LLAMA_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PIP) install --quiet \
	  --no-cache-dir --no-binary llama-cpp-python --force-reinstall --no-deps '$(LLAMA_PIN)'
	rm -f $(VENV)/.llama-* && echo '$(LLAMA_ARGS)' > $@

# Both distributions, editable, constrained to the exact versions in requirements.lock.
$(STAMP): $(LLAMA_STAMP) pyproject.toml sdk/pyproject.toml requirements.lock
	$(PIP) install --quiet -c requirements.lock -e '.[dev]' -e ./sdk
	touch $(STAMP)

# Re-resolve the transitive pins after changing a pin in a pyproject.toml.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip==26.3
	CMAKE_ARGS="$(LLAMA_ARGS)" .venv-lock/bin/python -m pip install --quiet --no-cache-dir \
	  --no-binary llama-cpp-python -e '.[dev]' -e ./sdk
	.venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^-e ' > requirements.lock
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
