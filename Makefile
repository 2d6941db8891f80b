# The two commands: `make run` and `make test`. Both create .venv and install the pinned
# dependencies when needed; once installed, the install step is skipped (a stamp file).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip

.PHONY: run test lint fuzz install lock clean

run: $(STAMP)
	$(BIN)/agentmill up

test: $(STAMP)
	$(MAKE) lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The thorough schema fuzz: tests/api/test_fuzz.py with FUZZ_EXAMPLES generated cases per
# operation (`make test` runs it bounded, at 20). Deterministic: the same cases every run.
FUZZ_EXAMPLES ?= 200
fuzz: $(STAMP)
	AGENTMILL_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -s tests/api/test_fuzz.py

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Both distributions, editable, constrained to the exact versions in requirements.lock.
$(STAMP): $(BIN)/python pyproject.toml sdk/pyproject.toml requirements.lock
	$(PIP) install --quiet --upgrade pip==26.3
	$(PIP) install --quiet -c requirements.lock -e '.[dev]' -e ./sdk
	touch $(STAMP)

# Re-resolve the transitive pins after changing a pin in a pyproject.toml.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip==26.3
	.venv-lock/bin/python -m pip install --quiet -e '.[dev]' -e ./sdk
	.venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^-e ' > requirements.lock
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
